// Activation and KV fake quantization with the format codecs (the weight export's block rules).
#include "eval/act_quant.h"

#include <algorithm>
#include <cmath>
#include <fmt/core.h>

#include "format/codec/e2m1.h"
#include "format/codec/e4m3.h"
#include "format/nvfp4_block.h"
#include "microscale/error.h"
#include "model/forward/decoder_layer.h"

namespace microscale::eval {

namespace {

// The dynamic-export constants with input_scale in the role of weight_scale_2.
format::Nvfp4Scales activation_scales(float input_scale) {
    format::Nvfp4Scales s{};
    s.global_amax = input_scale * 2688.0f;  // informational only
    s.m_fp8 = 448.0f;
    s.wsf2 = input_scale;
    s.six_wsf2 = 6.0f * input_scale;
    s.static_denom = 0.0f;  // unused on the dynamic path
    s.all_zero = false;     // scales are checked positive by the caller
    return s;
}

float checked_scale(const io::Checkpoint& ckpt, const std::string& name, bool inverted) {
    const float raw = model::load_scalar_f32(ckpt, name);
    const float s = inverted ? 1.0f / raw : raw;
    if (!(s > 0.0f) || !std::isfinite(s))
        throw Error(fmt::format("{}: {} = {} is not a positive finite scale", ckpt.dir().string(), name, raw));
    return s;
}

}  // namespace

void fake_quant_nvfp4(const float* x, int64_t rows, int64_t cols, int64_t ld, float input_scale, float* out) {
    if (!(input_scale > 0.0f) || !std::isfinite(input_scale))
        throw Error(fmt::format("NVFP4 activation fake quant: input_scale {} is not positive and finite", input_scale));
    const format::Nvfp4Scales s = activation_scales(input_scale);
    constexpr int64_t B = format::kNvfp4Block;
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * ld;
        float* yr = out + r * ld;
        for (int64_t b0 = 0; b0 < cols; b0 += B) {
            const int64_t n = std::min(B, cols - b0);
            float amax = 0.0f;
            for (int64_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(xr[b0 + j]));
            const float d = format::nvfp4_block_divisor(format::nvfp4_code_dynamic(amax, s), s);
            for (int64_t j = 0; j < n; ++j)
                yr[b0 + j] = codec::e2m1_to_float(codec::e2m1_from_float(xr[b0 + j] / d)) * d;
        }
    }
}

float fake_quant_fp8_value(float x, float scale) {
    const float y = std::clamp(x / scale, -codec::kE4M3Max, codec::kE4M3Max);  // saturating (satfinite)
    return codec::e4m3_to_float(codec::e4m3_from_float(y)) * scale;
}

void fake_quant_fp8(const float* x, int64_t rows, int64_t cols, int64_t ld, float scale, float* out) {
    if (!(scale > 0.0f) || !std::isfinite(scale))
        throw Error(fmt::format("FP8 fake quant: scale {} is not positive and finite", scale));
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) out[r * ld + c] = fake_quant_fp8_value(x[r * ld + c], scale);
}

DeployedQuantization::DeployedQuantization(const model::ModelLayout& layout, const io::Checkpoint& ckpt,
                                           const DeployOptions& opts) {
    inputs_.resize(layout.linears.size());
    int layers = 0;
    for (size_t i = 0; i < layout.linears.size(); ++i) {
        const model::LinearModule& m = layout.linears[i];
        layers = std::max(layers, m.layer + 1);
        if (!m.quant) continue;
        ++counts_.quantized_weights;
        const model::QuantizedWeightRef& q = *m.quant;
        if (!opts.act_quant || q.input_scale.empty()) continue;
        // NVFP4 W4A4 -> dynamic NVFP4 inputs; FP8 W8A8 -> static FP8 inputs. W4A16 and MX
        // checkpoints carry no input scale (ModelOpt's MX presets are weight-only here).
        if (q.format == Format::NVFP4) {
            inputs_[i] = {Format::NVFP4, checked_scale(ckpt, q.input_scale, q.inverted_input)};
            ++counts_.nvfp4_inputs;
        } else if (q.format == Format::FP8) {
            inputs_[i] = {Format::FP8, checked_scale(ckpt, q.input_scale, q.inverted_input)};
            ++counts_.fp8_inputs;
        }
    }
    kv_.resize(static_cast<size_t>(layers));
    if (!opts.kv_quant) return;
    for (const model::AttentionModule& a : layout.attentions) {
        if (a.layer < 0 || (a.k_scale.empty() && a.v_scale.empty())) continue;
        if (static_cast<size_t>(a.layer) >= kv_.size()) kv_.resize(static_cast<size_t>(a.layer) + 1);
        KvQuant& kv = kv_[static_cast<size_t>(a.layer)];
        if (!a.k_scale.empty()) kv.k_scale = checked_scale(ckpt, a.k_scale, false);
        if (!a.v_scale.empty()) kv.v_scale = checked_scale(ckpt, a.v_scale, false);
        ++counts_.kv_layers;
    }
}

const float* DeployedQuantization::transform_linear_input(const model::LinearWeights& linear, const float* x,
                                                          int64_t rows, int64_t ld, std::vector<float>& scratch) {
    if (linear.linear < 0 || static_cast<size_t>(linear.linear) >= inputs_.size()) return x;
    const InputQuant& q = inputs_[static_cast<size_t>(linear.linear)];
    if (q.format == Format::BF16) return x;
    scratch.resize(static_cast<size_t>(rows * ld));
    if (q.format == Format::NVFP4) fake_quant_nvfp4(x, rows, linear.in, ld, q.scale, scratch.data());
    else fake_quant_fp8(x, rows, linear.in, ld, q.scale, scratch.data());
    return scratch.data();
}

void DeployedQuantization::transform_key_values(int layer, float* k, float* v, int64_t rows, int64_t cols,
                                                int64_t ld) {
    if (layer < 0 || static_cast<size_t>(layer) >= kv_.size()) return;
    const KvQuant& kv = kv_[static_cast<size_t>(layer)];
    if (kv.k_scale > 0.0f) fake_quant_fp8(k, rows, cols, ld, kv.k_scale, k);
    if (kv.v_scale > 0.0f) fake_quant_fp8(v, rows, cols, ld, kv.v_scale, v);
}

std::string DeployedQuantization::describe() const {
    return fmt::format("{} quantized linear weights, {} NVFP4 and {} FP8 fake-quantized inputs, {} FP8 KV layers",
                       counts_.quantized_weights, counts_.nvfp4_inputs, counts_.fp8_inputs, counts_.kv_layers);
}

}  // namespace microscale::eval
