// Text <-> token ids from a Hugging Face tokenizer.json, with no Python: BPE models with the
// ByteLevel pre-tokenizer (GPT-2, Llama 3, Qwen2) and SentencePiece-style BPE with byte fallback
// (Llama 2, Mistral, stories260K); added / special tokens; BOS/EOS from the post-processor or
// tokenizer_config.json. Results match the `tokenizers` library (golden tests in
// tests/unit/calib). Anything the file asks for that is not implemented is an Error naming the
// file and JSON path, never a silently different tokenization.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace microscale::calib {

class Tokenizer {
public:
    // `path` is a model directory (tokenizer.json, optional tokenizer_config.json and
    // special_tokens_map.json) or a tokenizer.json file.
    static Tokenizer load(const std::filesystem::path& path);
    // From JSON text; `config_json` / `special_tokens_map_json` may be empty. `name` is used in
    // error messages.
    static Tokenizer from_json(std::string_view tokenizer_json, std::string_view config_json = {},
                               std::string_view special_tokens_map_json = {},
                               const std::string& name = "tokenizer.json");

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    // `text` must be valid UTF-8 (an Error names the first bad byte). With add_special_tokens the
    // BOS/EOS layout of the post-processor (or tokenizer_config.json's add_bos_token /
    // add_eos_token, which override it as transformers does) is applied.
    std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
    // As tokenizers' decode: ids not in the vocabulary are skipped.
    std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

    int32_t bos_id() const;  // -1 when the tokenizer has none
    int32_t eos_id() const;
    int32_t unk_id() const;
    size_t vocab_size() const;  // 1 + the largest id (model and added tokens)
    int32_t token_to_id(std::string_view token) const;  // -1 when absent
    std::string id_to_token(int32_t id) const;          // empty when absent
    bool is_special(int32_t id) const;
    // The ids encode() puts before / after the text when add_special_tokens is set.
    const std::vector<int32_t>& prefix_ids() const;
    const std::vector<int32_t>& suffix_ids() const;

private:
    struct Impl;
    explicit Tokenizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace microscale::calib
