// Deterministic synthetic Llama-family checkpoints for tests, the demo and benchmarks.
//
// Weights look like trained LLM weights where quantization cares: heavy tails (Student-t, 4
// degrees of freedom), per-output-channel scale variation, a few per-input-channel outlier
// columns (the same hidden channels in every layer, as real models have), norms near 1.
// Streaming: tensors are generated in row chunks and written as they are made, so memory stays
// at a few MiB whatever the model size. Same spec and seed -> same bytes for any thread count.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "io/checkpoint.h"
#include "microscale/dtype.h"

namespace microscale::model {

struct SyntheticSpec {
    // llama | mistral | qwen2 (adds q/k/v biases) | qwen3 (adds q_norm/k_norm): the tensor set
    // and config.json of that family.
    std::string model_type = "llama";
    int64_t hidden = 256, layers = 2, heads = 8, kv_heads = 4;
    int64_t head_dim = 0;  // 0: hidden / heads
    int64_t ffn = 688, vocab = 1024;
    DType dtype = DType::BF16;  // BF16, F16 or F32
    bool tied = false;          // tie_word_embeddings: no lm_head.weight on disk
    uint64_t seed = 0;
    uint64_t max_shard_bytes = io::kDefaultMaxShardBytes;
    // When > 0: choose hidden/heads/kv_heads/head_dim/ffn from a ladder of real model widths and
    // the layer count so that the checkpoint is at least this many bytes (vocab, dtype and tied
    // are kept).
    uint64_t target_bytes = 0;
    unsigned threads = 0;  // generator threads; 0 = all cores (does not change the bytes)
};

// The spec with target_bytes and head_dim applied, validated (errors name the field).
SyntheticSpec resolve_synthetic_spec(const SyntheticSpec& spec);
// Tensor data bytes of a resolved spec.
uint64_t synthetic_bytes(const SyntheticSpec& resolved);

struct SyntheticResult {
    SyntheticSpec spec;  // resolved
    uint64_t data_bytes = 0;
    size_t tensors = 0;
    size_t shards = 0;
};

// Writes config.json, generation_config.json and model.safetensors (or shards + index) into
// `dir`, which must not exist or be empty. config.json is written last, so an interrupted run
// never leaves something that looks like a checkpoint.
SyntheticResult write_synthetic_llama(const std::filesystem::path& dir, const SyntheticSpec& spec);

}  // namespace microscale::model
