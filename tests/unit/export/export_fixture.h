// Small exported checkpoints for the verifier and inspect tests: a one-layer Llama-style model
// whose linears are quantized with the real quantizers (format/quantize.h), written with
// io::SafetensorsWriter plus the JSON of export/modelopt_config.h, or hand-edited JSON.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "export/inspect.h"
#include "export/modelopt_config.h"
#include "format/quantize.h"
#include "io/io_test_util.h"
#include "io/safetensors.h"
#include "support/test_weights.h"

namespace microscale::exporter::testing {

struct FixtureTensor {
    std::string name;
    DType dtype = DType::U8;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
};

// The linears of layer 0: name, [out, in].
struct LinearShape {
    const char* name;
    int64_t out, in;
};
inline const std::vector<LinearShape>& llama_linears() {
    static const std::vector<LinearShape> k = {
        {"model.layers.0.self_attn.q_proj", 64, 64}, {"model.layers.0.self_attn.k_proj", 32, 64},
        {"model.layers.0.self_attn.v_proj", 32, 64}, {"model.layers.0.self_attn.o_proj", 64, 64},
        {"model.layers.0.mlp.gate_proj", 128, 64},   {"model.layers.0.mlp.up_proj", 128, 64},
        {"model.layers.0.mlp.down_proj", 64, 128},
    };
    return k;
}

inline std::vector<uint8_t> f32_bytes(float v) {
    std::vector<uint8_t> b(4);
    std::memcpy(b.data(), &v, 4);
    return b;
}

class ExportFixture {
public:
    std::vector<FixtureTensor> tensors;
    nlohmann::ordered_json hf_quant, config;  // hf_quant null -> no hf_quant_config.json

    void add(std::string name, DType dt, std::vector<int64_t> shape, std::vector<uint8_t> data) {
        tensors.push_back({std::move(name), dt, std::move(shape), std::move(data)});
    }
    void add_scalar(const std::string& name, float v) { add(name, DType::F32, {}, f32_bytes(v)); }

    FixtureTensor* find(const std::string& name) {
        for (auto& t : tensors)
            if (t.name == name) return &t;
        return nullptr;
    }
    FixtureTensor& at(const std::string& name) {
        FixtureTensor* t = find(name);
        if (!t) throw std::runtime_error("fixture has no tensor " + name);
        return *t;
    }
    void remove(const std::string& name) {
        tensors.erase(std::remove_if(tensors.begin(), tensors.end(), [&](const auto& t) { return t.name == name; }),
                      tensors.end());
    }
    void rename(const std::string& from, const std::string& to) { at(from).name = to; }

    static test::TestWeight weight(int64_t rows, int64_t cols, uint32_t seed, const std::string& name) {
        return test::heavy_tailed(rows, cols, seed, DType::BF16, name);
    }

    void add_bf16(const std::string& module, int64_t rows, int64_t cols, uint32_t seed) {
        const auto w = weight(rows, cols, seed, module + ".weight");
        add(module + ".weight", DType::BF16, {rows, cols}, w.bytes);
    }

    // Quantizes a synthetic weight and adds the ModelOpt tensors of `f`; `global_amax` shares
    // the NVFP4 global scale with fused siblings.
    void add_quantized(const std::string& module, Format f, int64_t rows, int64_t cols, uint32_t seed,
                       std::optional<float> global_amax = std::nullopt) {
        const auto w = weight(rows, cols, seed, module + ".weight");
        format::WeightQuantSpec spec;
        spec.format = f;
        spec.nvfp4.global_amax = global_amax;
        const auto q = format::quantize_weight(w.view(), spec, format::Backend::REF, nullptr);
        switch (f) {
            case Format::NVFP4:
            case Format::W4A16_NVFP4:
                add(module + ".weight", DType::U8, {rows, cols / 2}, q.data);
                add(module + ".weight_scale", DType::F8_E4M3, {rows, cols / 16}, q.block_scales);
                add_scalar(module + ".weight_scale_2", q.global_scale);
                if (f == Format::NVFP4) add_scalar(module + ".input_scale", 0.01f);
                break;
            case Format::FP8:
                add(module + ".weight", DType::F8_E4M3, {rows, cols}, q.data);
                add_scalar(module + ".weight_scale", q.global_scale);
                add_scalar(module + ".input_scale", 0.02f);
                break;
            case Format::MXFP4:
                add(module + ".weight", DType::U8, {rows, cols / 2}, q.data);
                add(module + ".weight_scale", DType::U8, {rows, cols / 32}, q.block_scales);
                break;
            case Format::MXFP8:
                add(module + ".weight", DType::F8_E4M3, {rows, cols}, q.data);
                add(module + ".weight_scale", DType::U8, {rows, cols / 32}, q.block_scales);
                break;
            default:
                add_bf16(module, rows, cols, seed);
        }
    }

    // Max |W| of the synthetic weight of (rows, cols, seed): what a fused group shares.
    static float amax(int64_t rows, int64_t cols, uint32_t seed) {
        const auto w = weight(rows, cols, seed, "w");
        return format::tensor_amax(w.view(), format::Backend::REF, nullptr);
    }

    // One Llama layer: embed + norms + lm_head in bf16, linears as `format_of` says (nullopt =
    // bf16, excluded). Fused q/k/v and gate/up share the NVFP4 global amax. JSON from the
    // exporter's own builders; kv: "FP8" adds k/v scales.
    void build_llama(const std::function<std::optional<Format>(const std::string&)>& format_of,
                     std::optional<std::string> kv = std::string("FP8")) {
        add_bf16("model.embed_tokens", 128, 64, 1);
        add("model.layers.0.input_layernorm.weight", DType::BF16, {64}, std::vector<uint8_t>(128, 0x3F));
        const auto& lin = llama_linears();
        std::map<std::string, float> group_amax;
        const auto group_of = [](const std::string& n) { return fused_group_key(n).value_or(n); };
        for (size_t i = 0; i < lin.size(); ++i) {
            float& a = group_amax[group_of(lin[i].name)];
            a = std::max(a, amax(lin[i].out, lin[i].in, 10 + uint32_t(i)));
        }
        std::vector<LayerQuant> layers{{"model.embed_tokens", std::nullopt}};
        for (size_t i = 0; i < lin.size(); ++i) {
            const std::string name = lin[i].name;
            const auto f = format_of(name);
            if (f) add_quantized(name, *f, lin[i].out, lin[i].in, 10 + uint32_t(i), group_amax[group_of(name)]);
            else add_bf16(name, lin[i].out, lin[i].in, 10 + uint32_t(i));
            layers.push_back({name, f});
        }
        if (kv) {
            add_scalar("model.layers.0.self_attn.k_proj.k_scale", 0.05f);
            add_scalar("model.layers.0.self_attn.v_proj.v_scale", 0.04f);
        }
        add_bf16("lm_head", 128, 64, 2);
        layers.push_back({"lm_head", std::nullopt});
        hf_quant = build_hf_quant_config(layers, kv);
        config = {{"model_type", "llama"}, {"tie_word_embeddings", false},
                  {"quantization_config", build_quantization_config(hf_quant)}};
    }
    void build_single(Format f, std::optional<std::string> kv = std::string("FP8")) {
        build_llama([f](const std::string&) { return std::optional<Format>(f); }, kv);
    }

    // Renames to the compressed-tensors dialect (ecosystem §1.6): weight_packed, reciprocal
    // global scales, CT config.json.
    void to_compressed_tensors() {
        for (auto& t : tensors) {
            const auto dot = t.name.rfind('.');
            const std::string module = t.name.substr(0, dot), leaf = t.name.substr(dot + 1);
            const auto recip = [&](const char* to) {
                float v;
                std::memcpy(&v, t.data.data(), 4);
                t.data = f32_bytes(1.0f / v);
                t.shape = {1};
                t.name = module + "." + to;
            };
            if (leaf == "weight" && t.dtype == DType::U8) t.name = module + ".weight_packed";
            else if (leaf == "weight_scale_2") recip("weight_global_scale");
        }
        // NVFP4 input scales, once every global scale has its CT name.
        for (auto& t : tensors) {
            const auto dot = t.name.rfind('.');
            const std::string module = t.name.substr(0, dot);
            if (t.name.ends_with(".input_scale") && find(module + ".weight_global_scale")) {
                float v;
                std::memcpy(&v, t.data.data(), 4);
                t.data = f32_bytes(1.0f / v);
                t.shape = {1};
                t.name = module + ".input_global_scale";
            }
        }
        nlohmann::ordered_json args{{"num_bits", 4}, {"type", "float"}, {"strategy", "tensor_group"},
                                    {"group_size", 16}, {"symmetric", true}, {"dynamic", false}};
        config["quantization_config"] = {
            {"quant_method", "compressed-tensors"},
            {"format", "nvfp4-pack-quantized"},
            {"quantization_status", "compressed"},
            {"config_groups", {{"group_0", {{"targets", {"Linear"}}, {"weights", args}, {"input_activations", args}}}}},
            {"ignore", {"lm_head"}},
            {"kv_cache_scheme", nullptr}};
        hf_quant = nullptr;
        remove("model.layers.0.self_attn.k_proj.k_scale");
        remove("model.layers.0.self_attn.v_proj.v_scale");
    }

    void write(const std::filesystem::path& dir) const {
        std::vector<io::TensorDecl> decls;
        for (const auto& t : tensors) decls.push_back({t.name, t.dtype, t.shape});
        io::SafetensorsWriter w(dir / "model.safetensors", decls, {{"format", "pt"}});
        for (const auto& t : tensors) w.write(t.name, t.data);
        w.commit();
        std::ofstream(dir / "config.json") << config.dump(2);
        if (!hf_quant.is_null()) std::ofstream(dir / "hf_quant_config.json") << hf_quant.dump(4);
    }
};

}  // namespace microscale::exporter::testing
