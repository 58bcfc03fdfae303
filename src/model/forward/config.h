// The hyperparameters the CPU forward pass needs, read from a Llama-family config.json
// (architectures.md §1-3): llama, mistral, qwen2, qwen3, phi3. RoPE comes from transformers-5
// `rope_parameters` or from the legacy top-level `rope_theta` + `rope_scaling` (whose type key may
// be "type"); both forms give the same RopeConfig. Errors name the file and the key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace microscale::model {

enum class RopeType : uint8_t { DEFAULT, LINEAR, DYNAMIC, LLAMA3, YARN };

struct RopeConfig {
    RopeType type = RopeType::DEFAULT;
    double theta = 10000.0;
    double factor = 1.0;                  // linear, dynamic, llama3, yarn
    // llama3
    double low_freq_factor = 1.0, high_freq_factor = 4.0;
    int64_t original_max_position_embeddings = 0;  // llama3, yarn (0: absent)
    // yarn
    double beta_fast = 32.0, beta_slow = 1.0;
    std::optional<double> mscale, mscale_all_dim, attention_factor;
    bool truncate = true;
};

struct ForwardConfig {
    std::string model_type;
    int64_t hidden = 0, intermediate = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0;
    int64_t vocab = 0, max_position_embeddings = 0;
    int64_t rotary_dim = 0;            // int(head_dim * partial_rotary_factor), even
    float rms_norm_eps = 1e-6f;
    bool tie_word_embeddings = false;
    bool qk_norm = false;              // qwen3
    bool fused_projections = false;    // phi3
    std::vector<int64_t> sliding_window;  // per layer; 0 = full causal attention
    RopeConfig rope;

    int64_t q_dim() const { return heads * head_dim; }
    int64_t kv_dim() const { return kv_heads * head_dim; }
};

// The model types parse_forward_config accepts, sorted.
std::vector<std::string> forward_model_types();

// `path` is used in messages only. Unknown model_type, hidden_act other than silu, unknown or
// unsupported rope_type (longrope) and inconsistent shapes are errors.
ForwardConfig parse_forward_config(const nlohmann::json& config, const std::string& path);

// RopeConfig from either config form (exposed for tests).
RopeConfig parse_rope_config(const nlohmann::json& config, const std::string& path);

}  // namespace microscale::model
