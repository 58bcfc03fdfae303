// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}): vocab, ranked merges, byte
// fallback, unknown token, ignore_merges, and a cache for repeated words.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace microscale::calib {

// Heterogeneous lookup so a string_view finds a std::string key without a copy.
struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using VocabMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

inline constexpr int32_t kMaxTokenId = (1 << 24) - 1;  // far above any real vocabulary

class BpeModel {
public:
    // `model` is the "model" object; `file` names tokenizer.json in errors.
    BpeModel(const nlohmann::json& model, const std::string& file);

    // Appends the ids of one pre-tokenized word.
    void tokenize(std::string_view word, std::vector<int32_t>& out) const;

    const VocabMap& vocab() const { return vocab_; }
    int32_t find(std::string_view token) const;  // -1 when absent
    int32_t unk_id() const { return unk_id_; }

private:
    struct Merge {
        int32_t rank;
        int32_t id;
    };
    void merge_word(std::string_view word, std::vector<int32_t>& out) const;
    const Merge* find_merge(int32_t a, int32_t b) const;

    std::string file_;
    VocabMap vocab_;
    // Open addressing over (left id, right id): the merge loop does one probe per adjacent pair.
    struct Slot {
        uint64_t key = ~0ull;
        Merge merge{};
    };
    std::vector<Slot> merge_table_;
    uint64_t merge_mask_ = 0;
    int32_t ascii_ids_[128];  // vocab id of each single ASCII char, -1 when absent
    std::vector<int32_t> byte_ids_;  // <0xNN> token ids, -1 when absent
    int32_t unk_id_ = -1;
    bool byte_fallback_ = false;
    bool fuse_unk_ = false;
    bool ignore_merges_ = false;

    static constexpr size_t kCacheCapacity = 1 << 16;
    static constexpr size_t kCacheMaxWord = 256;  // bytes; longer words are not cached
    mutable std::mutex cache_mu_;
    mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace microscale::calib
