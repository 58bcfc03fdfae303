// What a checkpoint contains, in ModelOpt's terms: the modules that carry weight/input quantizers
// (linears, embeddings, lm_head), the attention modules that carry k/v_bmm quantizers, the fused
// groups that share a global scale, and the tensors that are copied unchanged. Names are the
// on-disk names. This describes what exists; it never decides how to quantize (recipes do).
//
// describe_model() reads unquantized checkpoints (F16/BF16/F32/F64 linear weights); with
// accept_quantized it also reads a quantized export (ModelOpt or compressed-tensors names, the
// `eval` path) and records each quantized linear's tensors in LinearModule::quant. Every on-disk
// tensor lands exactly once, as a linear's weight (or one of its scales) or as a passthrough
// tensor; anything missing, misshapen or unexpected for the architecture is a microscale::Error
// naming the tensor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "microscale/format.h"

namespace microscale::model {

enum class Role : uint8_t {
    EMBED,
    LM_HEAD,
    ATTN_Q,
    ATTN_K,
    ATTN_V,
    ATTN_O,
    ATTN_QKV,     // fused q|k|v (phi3-style); not produced by the Llama family
    MLP_GATE,
    MLP_UP,
    MLP_DOWN,
    MLP_GATE_UP,  // fused gate|up; not produced by the Llama family
    LINEAR_OTHER, // generic fallback: a linear whose role the architecture table does not know
};

// The tensors of a linear stored quantized (docs/FORMATS.md): what a loader needs to decode it.
struct QuantizedWeightRef {
    Format format = Format::BF16;  // NVFP4 (W4A16_NVFP4 without an input scale), FP8, MXFP4, MXFP8
    std::string block_scale;       // "<m>.weight_scale": E4M3 (NVFP4) or E8M0 (MX) codes; "" for FP8
    std::string global_scale;      // weight_scale_2 / weight_global_scale / FP8 weight_scale; "" for MX
    bool inverted_global = false;  // compressed-tensors weight_global_scale = 1/weight_scale_2
    std::string input_scale;       // "<m>.input_scale" or "<m>.input_global_scale"; "" when absent
    bool inverted_input = false;   // compressed-tensors input_global_scale = 1/input_scale
};

struct LinearModule {
    std::string name;          // on-disk module name, e.g. "model.layers.3.self_attn.q_proj"
    std::string weight;        // "<name>.weight"; empty when tied and not on disk (lm_head)
    Role role = Role::LINEAR_OTHER;
    std::string module_class;  // what ModelOpt parent_class rules match: "nn.Linear", "nn.Embedding"
    int layer = -1;            // decoder layer index, -1 outside the decoder layers
    // The weight's on-disk [rows, cols]: [out, in] for a linear, [num_embeddings, dim] for an
    // embedding.
    int64_t out_features = 0, in_features = 0;
    int group = -1;            // index into ModelLayout::groups, or -1
    std::string bias;          // "<name>.bias" when on disk (also listed as passthrough), else empty
    // Set when the weight is stored quantized (accept_quantized only); `weight` then names the
    // element tensor ("<name>.weight" or compressed-tensors "<name>.weight_packed").
    std::optional<QuantizedWeightRef> quant;
};

// The RMSNorm weights the forward pass needs (also listed as passthrough tensors).
enum class NormRole : uint8_t {
    INPUT,           // layers.i.input_layernorm
    POST_ATTENTION,  // layers.i.post_attention_layernorm
    ATTN_Q,          // per-head q_norm over head_dim (qwen3)
    ATTN_K,          // per-head k_norm (qwen3)
    FINAL,           // model.norm
};

struct NormTensor {
    std::string tensor;  // on-disk name, e.g. "model.layers.3.input_layernorm.weight"
    NormRole role = NormRole::INPUT;
    int layer = -1;      // -1 for the final norm
    int64_t dim = 0;
};

// A module with k_bmm_quantizer / v_bmm_quantizer (ModelOpt's quantized attention).
struct AttentionModule {
    std::string name;          // "model.layers.3.self_attn"
    std::string module_class;  // the HF class, e.g. "LlamaAttention"
    int layer = -1;
    int k_proj = -1, v_proj = -1;  // indices into ModelLayout::linears, -1 when not separate
    std::string k_scale, v_scale;  // "<k_proj>.k_scale" / "<v_proj>.v_scale" of a quantized export
};

// Linears that share one global amax / weight_scale_2 (ModelOpt SHARED_PATTERNS, per parent).
struct FusedGroup {
    std::string kind;          // "qkv", "gate_up", "w1_w3"
    std::vector<int> members;  // indices into ModelLayout::linears, in order q,k,v / gate,up / w1,w3
};

struct ModelLayout {
    std::string model_type;    // from config.json
    std::string architecture;  // registry entry used ("llama", ..., or "generic")
    bool generic_fallback = false;  // the caller announces it
    std::vector<LinearModule> linears;        // every module with weight/input quantizers
    std::vector<AttentionModule> attentions;  // modules with k_bmm/v_bmm quantizers
    std::vector<FusedGroup> groups;
    std::vector<NormTensor> norms;            // filled by the Llama-family tables; empty for generic
    std::vector<std::string> passthrough;     // on-disk tensors copied unchanged, checkpoint order
};

// Reads and parses `path` (a config.json; size-capped); errors name the file.
nlohmann::json load_config_json(const std::filesystem::path& path);

// The layout of `ckpt` as config.json (`config`, read from `config_path`, used in messages)
// describes it. The architecture is chosen by `model_type`; unknown types use the generic
// fallback (generic_fallback = true), which errors when it finds no linear weights.
ModelLayout describe_model(const nlohmann::json& config, const io::Checkpoint& ckpt,
                           const std::string& config_path, bool accept_quantized = false);

// The model_type values with their own architecture entry, sorted.
std::vector<std::string> supported_model_types();

// "embed", "lm_head", "attn_q", ... (stable; used in reports and JSON).
std::string_view role_name(Role role);

}  // namespace microscale::model
