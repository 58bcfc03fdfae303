// The compressed-tensors dialect (what llm-compressor writes and vLLM's `compressed_tensors`
// quantization method loads; spec ecosystem.md §1.6 and §6): the same NVFP4 / FP8 bytes as the
// ModelOpt export under other tensor names, NVFP4 global scales stored as reciprocals with shape
// [1], and config.json["quantization_config"] in compressed-tensors' QuantizationConfig schema.
// docs/FORMATS.md ("compressed-tensors dialect") states the exact rounding of the reciprocal.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "format/nvfp4.h"
#include "io/safetensors.h"
#include "microscale/format.h"

namespace microscale::exporter {

enum class ExportDialect : uint8_t { MODELOPT, COMPRESSED_TENSORS };

// "modelopt" | "compressed-tensors"; nullopt for anything else.
std::optional<ExportDialect> export_dialect_from_name(std::string_view name);
std::string_view export_dialect_name(ExportDialect d);

// The parts of a quantized linear that carry a dialect-specific name or value.
enum class QuantPart : uint8_t {
    WEIGHT,        // packed E2M1 (NVFP4) or E4M3 codes (FP8)
    WEIGHT_SCALE,  // NVFP4 per-block E4M3 codes; FP8 per-tensor fp32 scale
    GLOBAL_SCALE,  // NVFP4 per-tensor fp32 scale
    INPUT_SCALE,   // static activation scale (NVFP4 global, FP8 per-tensor)
};

// Tensor leaf name of a part: ModelOpt weight / weight_scale / weight_scale_2 / input_scale;
// compressed-tensors weight_packed (4-bit) or weight, weight_scale, weight_global_scale,
// input_global_scale (NVFP4) or input_scale (FP8).
std::string_view tensor_leaf(ExportDialect d, Format f, QuantPart p);

// compressed-tensors divides by its NVFP4 global scales, ModelOpt multiplies: the stored value
// is RN(1 / ModelOpt's value) in fp32 (`1.0f / v`), the fp32 nearest to the exact reciprocal.
float ct_reciprocal_scale(float modelopt_scale);

// The per-tensor value a dialect stores for a part, given what ModelOpt would write. Only NVFP4
// GLOBAL_SCALE and INPUT_SCALE change (reciprocal); FP8 scales are the same number in both.
float stored_scale(ExportDialect d, Format f, QuantPart p, float modelopt_value);

// Every tensor a quantized [out, in] linear `module` exports in the dialect, in write order:
// weight, weight_scale, global scale (NVFP4), input scale (when has_input_scale). Per-tensor
// scales are 0-dim in ModelOpt and [1] in compressed-tensors (as llm-compressor writes them).
// Throws microscale::Error for formats the dialect has no mapping for (MX formats in CT).
std::vector<io::TensorDecl> quantized_linear_decls(ExportDialect d, const std::string& module, Format f,
                                                   int64_t out, int64_t in, bool has_input_scale);

// The compressed-tensors "format" string of a layer format: nvfp4-pack-quantized, float-quantized.
std::string_view ct_format_name(Format f);

// One module for the compressed-tensors config: every linear the layout knows, quantized or not.
struct CtLayer {
    std::string module;
    std::optional<Format> format;    // nullopt: left unquantized
    bool is_linear = true;           // false for embeddings (not a Linear: never in `ignore`)
    bool static_input = false;       // an input (global) scale tensor is written
    std::string weight_observer;     // QuantizationArgs.observer of the weights ("" -> memoryless_minmax)
};

// QuantizationArgs.observer naming the weight-scale search (informational for loaders):
// max -> memoryless_minmax, mse / fp8 sweep -> memoryless_mse, four-over-six -> fouroversix
// (compressed-tensors' NVFP4A16_46 preset).
std::string ct_weight_observer(Format f, const format::Nvfp4Config& nvfp4, bool fp8_mse);

// QuantizationArgs as compressed-tensors serialises them (model_dump field order).
nlohmann::ordered_json ct_weight_args(Format f, const std::string& observer);
nlohmann::ordered_json ct_input_args(Format f);  // null for weight-only formats
nlohmann::ordered_json ct_kv_cache_args();       // FP8 per-tensor static

// config.json["quantization_config"]:
//  * one config group per distinct scheme (weights args, input args, format), numbered in
//    first-seen order; a single group targets ["Linear"], several groups target their exact
//    module names (vLLM matches exact names, "re:" regexes and class names; fused shards match
//    when every shard does) and the top-level format is "mixed-precision";
//  * ignore: the exact names of the unquantized Linear modules, in layer order (what
//    compressed-tensors' QuantizationConfig.from_pretrained collects; embeddings are no Linear);
//  * kv_cache_scheme: FP8 per-tensor static args when kv_cache_quant_algo is "FP8", else null.
// Throws microscale::Error when there is no quantized layer or the KV format has no CT form.
nlohmann::ordered_json build_ct_quantization_config(const std::vector<CtLayer>& layers,
                                                    const std::optional<std::string>& kv_cache_quant_algo);

}  // namespace microscale::exporter
