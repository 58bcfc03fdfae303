// The JSON side of the ModelOpt unified HF export (spec nvfp4-modelopt.md §4.2-4.3):
// hf_quant_config.json, config.json["quantization_config"] and the exclude_modules summary.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "microscale/format.h"

namespace microscale::exporter {

using ordered_json = nlohmann::ordered_json;

// One module that carries ModelOpt quantizer attributes (linears, embeddings, lm_head), quantized
// (format set) or not (nullopt: it lands in exclude_modules).
struct LayerQuant {
    std::string module;
    std::optional<Format> format;
};

// `_prefix_wildcard_summarize_exclude_modules`: per unquantized module the first of `prefix*`,
// {prefix, prefix.*} (emitted as both) at each '.', then the exact name, that no quantized
// module's prefix wildcards forbid; already-covered modules add nothing. Sorted.
std::vector<std::string> summarize_exclude_modules(const std::vector<std::string>& unquantized,
                                                   const std::vector<std::string>& quantized);

// The per-layer entry of quantized_layers / the merged single-format block, e.g.
// {"quant_algo": "NVFP4", "group_size": 16}.
ordered_json layer_quant_config(Format f);

// hf_quant_config.json. kv_cache_quant_algo is "FP8" / "NVFP4" or nullopt (null).
ordered_json build_hf_quant_config(const std::vector<LayerQuant>& layers,
                                   const std::optional<std::string>& kv_cache_quant_algo);

// config.json["quantization_config"] derived from hf_quant_config (convert_hf_quant_config_format).
ordered_json build_quantization_config(const ordered_json& hf_quant_config);

// The producer block written into both files.
ordered_json producer_info();

}  // namespace microscale::exporter
