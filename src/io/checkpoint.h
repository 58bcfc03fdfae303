// A Hugging Face checkpoint directory: `model.safetensors`, or shards listed by
// `model.safetensors.index.json` (`weight_map`), cross-checked against the shards' headers.
// And the writing side: split tensors into HF-style shards plus an index.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/safetensors.h"

namespace microscale::io {

inline constexpr const char* kSingleFileName = "model.safetensors";
inline constexpr const char* kIndexFileName = "model.safetensors.index.json";
inline constexpr uint64_t kDefaultMaxShardBytes = 5'000'000'000ull;  // HF's "5GB"
inline constexpr uint64_t kMaxIndexBytes = 100ull << 20;

struct TensorRef {
    const SafetensorsFile* file = nullptr;
    const TensorInfo* info = nullptr;
};

class Checkpoint {
public:
    // Opens `dir/model.safetensors` when present (as transformers does), else the index.
    static Checkpoint open(const std::filesystem::path& dir);

    const std::filesystem::path& dir() const { return dir_; }
    bool sharded() const { return sharded_; }
    size_t shard_count() const { return shards_.size(); }
    const SafetensorsFile& shard(size_t i) const { return *shards_.at(i); }
    // Every tensor: shards in file-name order, each in data order (the order to stream them).
    const std::vector<TensorRef>& tensors() const { return tensors_; }
    // nullptr when absent.
    const TensorRef* find(std::string_view name) const;
    // Throws naming the checkpoint when absent.
    const TensorRef& at(std::string_view name) const;
    std::span<const uint8_t> bytes(const TensorRef& t) const { return t.file->bytes(*t.info); }

private:
    std::filesystem::path dir_;
    bool sharded_ = false;
    std::vector<std::unique_ptr<SafetensorsFile>> shards_;  // stable addresses for TensorRef
    std::vector<TensorRef> tensors_;
    std::unordered_map<std::string, size_t> index_;  // name -> position in tensors_
};

// Which shard each tensor goes to, HF style: tensors in order, a new shard when the next tensor
// would push the current one past `max_shard_bytes`; a tensor larger than the cap sits alone.
struct ShardPlan {
    std::vector<std::string> files;      // "model.safetensors" or "model-0000k-of-0000N.safetensors"
    std::vector<size_t> shard_of;        // per tensor
    std::vector<uint64_t> shard_bytes;   // data bytes per shard
    uint64_t total_bytes = 0;
};
ShardPlan plan_shards(std::span<const uint64_t> tensor_bytes,
                      uint64_t max_shard_bytes = kDefaultMaxShardBytes);

// Writes a checkpoint's tensors into `dir` as planned by plan_shards, one shard open at a time.
// Shards keep temporary names until commit(), which renames them all and then writes the index
// (when there is more than one shard). Abandoned or failed: every temporary file is removed.
// Directory-level atomicity (no half-written output dir) is the exporter's job.
class ShardedWriter {
public:
    ShardedWriter(std::filesystem::path dir, std::vector<TensorDecl> tensors, Metadata metadata = {},
                  uint64_t max_shard_bytes = kDefaultMaxShardBytes, WriteMode mode = WriteMode::BUFFERED);
    ShardedWriter(const ShardedWriter&) = delete;
    ShardedWriter& operator=(const ShardedWriter&) = delete;
    ~ShardedWriter();

    void write(std::string_view name, std::span<const uint8_t> data);
    void append(std::string_view name, std::span<const uint8_t> chunk);
    void commit();

    const ShardPlan& plan() const { return plan_; }

private:
    SafetensorsWriter& current(std::string_view name);
    void abandon() noexcept;

    std::filesystem::path dir_;
    std::vector<TensorDecl> decls_;
    Metadata metadata_;
    WriteMode mode_;
    ShardPlan plan_;
    std::vector<std::unique_ptr<SafetensorsWriter>> writers_;  // opened so far, in shard order
    bool failed_ = false;
    bool committed_ = false;
};

}  // namespace microscale::io
