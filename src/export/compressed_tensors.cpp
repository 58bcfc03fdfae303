#include "export/compressed_tensors.h"

#include <fmt/core.h>

#include <map>

#include "format/nvfp4_block.h"
#include "microscale/error.h"

namespace microscale::exporter {

using ordered_json = nlohmann::ordered_json;

namespace {

bool is_nvfp4(Format f) { return f == Format::NVFP4 || f == Format::W4A16_NVFP4; }

void require_ct_format(Format f, std::string_view what) {
    if (!is_nvfp4(f) && f != Format::FP8)
        throw Error(fmt::format("{}: format {} has no compressed-tensors export in microscale (nvfp4, w4a16_nvfp4 and "
                                "fp8 do); use --export-format modelopt",
                                what, format_info(f).name));
}

}  // namespace

std::optional<ExportDialect> export_dialect_from_name(std::string_view name) {
    if (name == "modelopt") return ExportDialect::MODELOPT;
    if (name == "compressed-tensors") return ExportDialect::COMPRESSED_TENSORS;
    return std::nullopt;
}

std::string_view export_dialect_name(ExportDialect d) {
    return d == ExportDialect::COMPRESSED_TENSORS ? "compressed-tensors" : "modelopt";
}

std::string_view tensor_leaf(ExportDialect d, Format f, QuantPart p) {
    const bool ct = d == ExportDialect::COMPRESSED_TENSORS;
    switch (p) {
        case QuantPart::WEIGHT: return ct && format_info(f).elem_bits == 4 ? "weight_packed" : "weight";
        case QuantPart::WEIGHT_SCALE: return "weight_scale";
        case QuantPart::GLOBAL_SCALE: return ct ? "weight_global_scale" : "weight_scale_2";
        case QuantPart::INPUT_SCALE: return ct && is_nvfp4(f) ? "input_global_scale" : "input_scale";
    }
    return "";
}

float ct_reciprocal_scale(float modelopt_scale) {
    // One correctly rounded fp32 division. The volatile keeps the compiler from folding or
    // contracting it into anything else.
    volatile float one = 1.0f;
    return one / modelopt_scale;
}

float stored_scale(ExportDialect d, Format f, QuantPart p, float modelopt_value) {
    if (d == ExportDialect::COMPRESSED_TENSORS && is_nvfp4(f) &&
        (p == QuantPart::GLOBAL_SCALE || p == QuantPart::INPUT_SCALE))
        return ct_reciprocal_scale(modelopt_value);
    return modelopt_value;
}

std::vector<io::TensorDecl> quantized_linear_decls(ExportDialect d, const std::string& module, Format f,
                                                   int64_t out, int64_t in, bool has_input_scale) {
    const bool ct = d == ExportDialect::COMPRESSED_TENSORS;
    if (ct) require_ct_format(f, module);
    const std::vector<int64_t> scalar = ct ? std::vector<int64_t>{1} : std::vector<int64_t>{};
    const auto name = [&](QuantPart p) { return module + "." + std::string(tensor_leaf(d, f, p)); };
    std::vector<io::TensorDecl> decls;
    switch (f) {
        case Format::NVFP4: case Format::W4A16_NVFP4:
            decls.push_back({name(QuantPart::WEIGHT), DType::U8, {out, in / 2}});
            decls.push_back({name(QuantPart::WEIGHT_SCALE), DType::F8_E4M3, {out, in / format::kNvfp4Block}});
            decls.push_back({name(QuantPart::GLOBAL_SCALE), DType::F32, scalar});
            break;
        case Format::FP8:
            decls.push_back({name(QuantPart::WEIGHT), DType::F8_E4M3, {out, in}});
            decls.push_back({name(QuantPart::WEIGHT_SCALE), DType::F32, scalar});
            break;
        case Format::MXFP4:
            decls.push_back({name(QuantPart::WEIGHT), DType::U8, {out, in / 2}});
            decls.push_back({name(QuantPart::WEIGHT_SCALE), DType::U8, {out, in / 32}});
            break;
        case Format::MXFP8:
            decls.push_back({name(QuantPart::WEIGHT), DType::F8_E4M3, {out, in}});
            decls.push_back({name(QuantPart::WEIGHT_SCALE), DType::U8, {out, in / 32}});
            break;
        default: break;
    }
    if (has_input_scale) decls.push_back({name(QuantPart::INPUT_SCALE), DType::F32, scalar});
    return decls;
}

std::string_view ct_format_name(Format f) {
    if (is_nvfp4(f)) return "nvfp4-pack-quantized";
    if (f == Format::FP8) return "float-quantized";
    require_ct_format(f, "compressed-tensors format");
    return "";
}

std::string ct_weight_observer(Format f, const format::Nvfp4Config& nvfp4, bool fp8_mse) {
    if (f == Format::FP8) return fp8_mse ? "memoryless_mse" : "memoryless_minmax";
    if (nvfp4.four_over_six) return "fouroversix";
    switch (nvfp4.search) {
        case format::Nvfp4Search::MSE: case format::Nvfp4Search::FP8_SWEEP: return "memoryless_mse";
        default: return "memoryless_minmax";
    }
}

namespace {

// QuantizationArgs fields in compressed-tensors' declaration order (what model_dump emits).
ordered_json quant_args(int bits, std::optional<int> group_size, const char* strategy, ordered_json dynamic,
                        ordered_json scale_dtype, const std::string& observer) {
    ordered_json a;
    a["num_bits"] = bits;
    a["type"] = "float";
    a["symmetric"] = true;
    a["group_size"] = group_size ? ordered_json(*group_size) : ordered_json(nullptr);
    a["strategy"] = strategy;
    a["block_structure"] = nullptr;
    a["dynamic"] = std::move(dynamic);
    a["actorder"] = nullptr;
    a["scale_dtype"] = std::move(scale_dtype);
    a["zp_dtype"] = nullptr;  // serialised as null for symmetric args
    a["observer"] = observer;
    a["observer_kwargs"] = ordered_json::object();
    return a;
}

}  // namespace

ordered_json ct_weight_args(Format f, const std::string& observer) {
    require_ct_format(f, "compressed-tensors weights");
    const std::string obs = observer.empty() ? "memoryless_minmax" : observer;
    if (is_nvfp4(f)) return quant_args(4, format::kNvfp4Block, "tensor_group", false, "torch.float8_e4m3fn", obs);
    return quant_args(8, std::nullopt, "tensor", false, nullptr, obs);
}

ordered_json ct_input_args(Format f) {
    require_ct_format(f, "compressed-tensors input activations");
    // W4A4: a static (calibrated) global scale, per-block scales computed at run time ("local").
    if (f == Format::NVFP4)
        return quant_args(4, format::kNvfp4Block, "tensor_group", "local", "torch.float8_e4m3fn", "static_minmax");
    if (f == Format::FP8) return quant_args(8, std::nullopt, "tensor", false, nullptr, "static_minmax");
    return nullptr;
}

ordered_json ct_kv_cache_args() { return quant_args(8, std::nullopt, "tensor", false, nullptr, "static_minmax"); }

ordered_json build_ct_quantization_config(const std::vector<CtLayer>& layers,
                                          const std::optional<std::string>& kv_cache_quant_algo) {
    struct Group {
        ordered_json scheme;  // without targets
        std::vector<std::string> modules;
    };
    std::vector<Group> groups;
    std::map<std::string, size_t> index;  // scheme dump -> group
    std::vector<std::string> ignore;
    for (const CtLayer& l : layers) {
        if (!l.format) {
            if (l.is_linear) ignore.push_back(l.module);
            continue;
        }
        if (!l.is_linear) throw Error(fmt::format("{}: only Linear modules have a compressed-tensors export", l.module));
        require_ct_format(*l.format, l.module);
        // vLLM's CT W4A4 / W8A8-static schemes register the input scale and read it on load; a
        // weight-only format has none.
        if (l.static_input != format_info(*l.format).quantizes_activations)
            throw Error(fmt::format("{}: {} {}", l.module, format_info(*l.format).name,
                                    l.static_input ? "is weight-only and cannot carry an input scale"
                                                   : "without a stored input scale (dynamic or use_constant_amax input "
                                                     "quantizer) has no compressed-tensors form; use --export-format "
                                                     "modelopt or --weights-only"));
        ordered_json scheme;
        scheme["weights"] = ct_weight_args(*l.format, l.weight_observer);
        scheme["input_activations"] = ct_input_args(*l.format);
        scheme["output_activations"] = nullptr;
        scheme["format"] = ct_format_name(*l.format);
        const std::string key = scheme.dump();
        auto [it, fresh] = index.try_emplace(key, groups.size());
        if (fresh) groups.push_back({std::move(scheme), {}});
        groups[it->second].modules.push_back(l.module);
    }
    if (groups.empty()) throw Error("compressed-tensors export: no layer is quantized");

    ordered_json config_groups = ordered_json::object();
    for (size_t i = 0; i < groups.size(); ++i) {
        ordered_json g;
        g["targets"] = groups.size() == 1 ? ordered_json::array({"Linear"}) : ordered_json(groups[i].modules);
        for (const auto& [k, v] : groups[i].scheme.items()) g[k] = v;
        config_groups["group_" + std::to_string(i)] = std::move(g);
    }

    ordered_json kv = nullptr;
    if (kv_cache_quant_algo) {
        if (*kv_cache_quant_algo != "FP8")
            throw Error(fmt::format("KV cache format {} has no compressed-tensors kv_cache_scheme in microscale (FP8 "
                                    "has); use --export-format modelopt",
                                    *kv_cache_quant_algo));
        kv = ct_kv_cache_args();
    }

    ordered_json q;
    q["config_groups"] = std::move(config_groups);
    q["format"] = groups.size() == 1 ? groups[0].scheme["format"] : ordered_json("mixed-precision");
    q["global_compression_ratio"] = nullptr;
    q["ignore"] = ignore;
    q["kv_cache_scheme"] = std::move(kv);
    q["quant_method"] = "compressed-tensors";
    q["quantization_status"] = "compressed";
    q["sparsity_config"] = ordered_json::object();
    q["transform_config"] = ordered_json::object();
    return q;
}

}  // namespace microscale::exporter
