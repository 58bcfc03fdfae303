// `microscale inspect`: what any checkpoint directory holds (original bf16/fp32, ModelOpt unified
// HF export, compressed-tensors), module by module, with effective bits per element computed from
// the bytes actually stored. Also the name-level helpers the verifier shares: which tensor belongs
// to which module under which role, and which layer kind a module is.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "microscale/dtype.h"
#include "microscale/format.h"

namespace microscale::exporter {

// The part a tensor plays in its module, from its name's last component.
enum class TensorRole : uint8_t {
    WEIGHT,               // <m>.weight
    WEIGHT_PACKED,        // <m>.weight_packed (compressed-tensors)
    WEIGHT_SCALE,         // <m>.weight_scale (block codes, or the FP8 per-tensor scale)
    WEIGHT_SCALE_2,       // <m>.weight_scale_2 (ModelOpt NVFP4 global scale)
    WEIGHT_GLOBAL_SCALE,  // <m>.weight_global_scale (compressed-tensors, = 1/weight_scale_2)
    INPUT_SCALE,          // <m>.input_scale
    INPUT_GLOBAL_SCALE,   // <m>.input_global_scale (compressed-tensors)
    WEIGHT_ZERO_POINT,    // <m>.weight_zero_point (compressed-tensors, asymmetric only)
    K_SCALE,              // <attn>.k_proj.k_scale
    V_SCALE,              // <attn>.v_proj.v_scale
    PRE_QUANT_SCALE,      // <m>.pre_quant_scale (AWQ)
    OTHER,                // bias, norm weights of 1-D shape are still WEIGHT; anything else
};

struct TensorName {
    std::string module;  // "" when the tensor has no dot
    TensorRole role = TensorRole::OTHER;
};
TensorName split_tensor_name(std::string_view tensor);

// Layer kinds for grouping and per-kind effective bits. Order = print order.
enum class LayerKind : uint8_t {
    ATTN_Q, ATTN_K, ATTN_V, ATTN_QKV, ATTN_O,
    MLP_GATE, MLP_UP, MLP_GATE_UP, MLP_DOWN,
    EXPERTS,   // routed experts (".experts." in the name)
    OTHER,     // any other linear (routers, mamba in/out_proj, vision, ...)
    LM_HEAD,
    EMBED,
    COUNT
};
std::string_view layer_kind_name(LayerKind k);  // "attn.q", "mlp.down", "experts", ...
LayerKind layer_kind_of(std::string_view module);

// Fused-group key by ModelOpt's SHARED_PATTERNS (full match per parent):
// `(?:(.*)\.)?(?:q_proj|k_proj|v_proj)`, `(?:(.*)\.)?(?:gate_proj|up_proj)`, `(?:(.*)\.)?(?:w1|w3)`.
// Returns "<parent>|qkv" style keys, nullopt for modules in no group.
std::optional<std::string> fused_group_key(std::string_view module);

struct InspectTensor {
    std::string name;
    DType dtype = DType::U8;
    std::vector<int64_t> shape;
    uint64_t bytes = 0;
};

// One module with a weight (a linear, an embedding, lm_head, a 3-D expert parameter).
struct InspectModule {
    std::string name;
    LayerKind kind = LayerKind::OTHER;
    std::string storage;          // "nvfp4", "w4a16_nvfp4", "fp8", "mxfp4", "mxfp8", "bf16", "f32", ...
    std::optional<Format> format; // quantized format when recognised
    std::vector<int64_t> shape;   // logical [out, in] (unpacked)
    uint64_t elements = 0;        // logical weight elements
    uint64_t weight_bytes = 0;    // weight + block scales + per-tensor weight scale, as stored
    uint64_t other_bytes = 0;     // input_scale, k/v_scale, bias, ... (not counted in bits)
    bool has_input_scale = false;
    double bits() const { return elements ? 8.0 * double(weight_bytes) / double(elements) : 0.0; }
};

struct InspectBits {
    std::string label;
    uint64_t modules = 0, elements = 0, weight_bytes = 0;
    double bits() const { return elements ? 8.0 * double(weight_bytes) / double(elements) : 0.0; }
};

struct InspectReport {
    std::filesystem::path dir;
    std::string dialect;            // "unquantized", "modelopt", "compressed-tensors", other quant_method
    std::string quant_algo;         // "NVFP4", "MIXED_PRECISION", CT format string, "" when none
    std::string kv_cache;           // "FP8", "NVFP4", "none", ...
    std::string model_type;         // config.json model_type, "" when absent
    bool tied_lm_head = false;      // tie_word_embeddings and no lm_head tensor
    size_t tensor_count = 0, kv_scale_tensors = 0, shards = 0;
    uint64_t total_bytes = 0;       // every tensor's data
    uint64_t non_module_bytes = 0;  // norms, rotary buffers, ... (tensors of no weight module)
    std::vector<InspectModule> modules;  // sorted by kind, then in checkpoint order
    std::vector<InspectBits> kinds;      // per layer kind present
    InspectBits linear;                  // quantizable linears: no embeddings, no lm_head
    InspectBits linear_lm_head;          // the same plus lm_head
    InspectBits all_weights;             // every weight module, embeddings included
    std::vector<InspectTensor> tensors;  // filled when asked for
};

// Reads `dir` (config.json optional; model.safetensors or an index). Throws microscale::Error.
InspectReport inspect_checkpoint(const std::filesystem::path& dir, bool with_tensors = false);

std::string format_inspect_text(const InspectReport& r, bool with_tensors = false);
nlohmann::ordered_json inspect_to_json(const InspectReport& r, bool with_tensors = false);

// Reads a JSON file (capped in size); nullopt when the file does not exist; throws on bad JSON.
std::optional<nlohmann::json> read_json_file(const std::filesystem::path& path);

}  // namespace microscale::exporter
