// Internal to model/: the architecture registry, config readers and the builder that accounts
// for every on-disk tensor. Only files under model/archs/ know tensor names.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/layout.h"

namespace microscale::model {

struct ArchInput {
    const nlohmann::json& config;
    const io::Checkpoint& ckpt;
    const std::string& config_path;
    std::string model_type;
    bool accept_quantized;  // quantized exported weights (describe_model's flag)
};

using ArchBuildFn = ModelLayout (*)(const ArchInput&);

struct ArchEntry {
    std::string_view model_type;    // config.json model_type
    std::string_view architecture;  // our name for the entry
    ArchBuildFn build;
};

// One row per supported model_type (registry.cpp).
std::span<const ArchEntry> arch_registry();
const ArchEntry* find_arch(std::string_view model_type);

ModelLayout build_llama(const ArchInput& in);
ModelLayout build_mistral(const ArchInput& in);
ModelLayout build_qwen2(const ArchInput& in);
ModelLayout build_qwen3(const ArchInput& in);
ModelLayout build_phi3(const ArchInput& in);
ModelLayout build_generic(const ArchInput& in);

// How the Llama-family members differ (architectures.md §2-3); archs/llama.cpp builds all four.
struct LlamaFamilyTraits {
    std::string_view architecture;     // "llama"
    std::string_view attention_class;  // "LlamaAttention"
    bool qkv_bias_always = false;      // qwen2: q/k/v biases hard-coded, o_proj none
    bool reads_attention_bias = true;  // config attention_bias -> q/k/v/o biases
    bool reads_mlp_bias = false;       // config mlp_bias -> gate/up/down biases (llama)
    bool qk_norm = false;              // qwen3: self_attn.q_norm / k_norm [head_dim]
    int64_t default_head_dim = 0;      // when config head_dim is absent/null; 0 = hidden/heads
    bool fused_projections = false;    // phi3: self_attn.qkv_proj [q|k|v] and mlp.gate_up_proj [gate|up]
};
ModelLayout build_llama_family(const ArchInput& in, const LlamaFamilyTraits& traits);

// config.json readers; errors name the file and key. Absent or null -> fallback; no fallback ->
// error. Integers must be in [min_value, 2^31).
int64_t config_int(const ArchInput& in, const char* key, std::optional<int64_t> fallback,
                   int64_t min_value = 1);
bool config_bool(const ArchInput& in, const char* key, bool fallback);

// Collects the layout and claims each on-disk tensor once.
class LayoutBuilder {
public:
    // `dims` (e.g. "hidden_size=64, ...") is appended to shape errors.
    LayoutBuilder(const ArchInput& in, std::string_view architecture, std::string dims);

    // A linear/embedding whose weight "<name>.weight" must exist with shape [out, in] and a
    // float dtype, or (accept_quantized) the tensors of a quantized export, which it claims too.
    // Returns its index.
    int add_linear(const std::string& name, Role role, std::string_view module_class, int layer,
                   int64_t out, int64_t in);
    // A module that exists but whose weight is not on disk (tied lm_head).
    int add_tied_linear(const std::string& name, Role role, std::string_view module_class,
                        int layer, int64_t out, int64_t in);
    // A tensor that must exist with `shape`, copied unchanged.
    void add_passthrough(const std::string& tensor, const std::vector<int64_t>& shape);
    // Any on-disk tensor, unchecked, copied unchanged.
    void add_passthrough_any(const io::TensorInfo& t);
    int add_group(std::string kind, std::vector<int> members);
    void add_attention(std::string name, std::string_view module_class, int layer, int k_proj,
                       int v_proj);
    // A passthrough RMSNorm weight [dim] that the forward pass reads by role.
    void add_norm(const std::string& tensor, NormRole role, int layer, int64_t dim);
    // A passthrough "<linear name>.bias" [linear out] recorded on the linear.
    void add_bias(int linear);

    bool claimed(std::string_view tensor) const;
    ModelLayout& layout() { return layout_; }

    // Unclaimed tensors go to `accept` (return true to make it passthrough); any other is an
    // error naming it. Sorts passthrough into checkpoint order.
    ModelLayout finish(const std::function<bool(const io::TensorInfo&)>& accept);

private:
    // The quantized tensors of `name` when the checkpoint stores it quantized, else nullopt.
    std::optional<QuantizedWeightRef> claim_quantized(const std::string& name, int64_t out, int64_t in,
                                                      std::string& weight);
    // Claims a one-element fp32 tensor (ModelOpt [] or compressed-tensors [1]) when present.
    bool claim_scalar(const std::string& tensor);
    const io::TensorInfo& claim(const std::string& tensor, const std::vector<int64_t>& shape);
    size_t position(const io::TensorRef& ref) const;
    std::string where() const;

    const ArchInput& in_;
    std::string dims_;
    ModelLayout layout_;
    std::vector<bool> claimed_;  // per checkpoint tensor position
};

// "[a, b]".
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace microscale::model
