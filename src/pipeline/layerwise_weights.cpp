#include "pipeline/layerwise_weights.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"
#include "cuda/gptq_cuda.h"
#include "eval/act_quant.h"
#include "format/fp8.h"
#include "format/nvfp4.h"
#include "microscale/error.h"

namespace microscale::pipeline {
namespace {

format::WeightView view_of(const io::Checkpoint& ckpt, const model::LinearModule& m) {
    const io::TensorRef& t = ckpt.at(m.weight);
    return format::WeightView{ckpt.bytes(t).data(), t.info->dtype, m.out_features, m.in_features, m.weight};
}

bool is_nvfp4(Format f) { return f == Format::NVFP4 || f == Format::W4A16_NVFP4; }

}  // namespace

format::WeightQuantSpec export_spec(const Plan& plan, const model::ModelLayout& layout, const io::Checkpoint& ckpt,
                                    size_t i, core::ThreadPool& pool) {
    const LinearPlan& lp = plan.linears[i];
    const model::LinearModule& m = layout.linears[i];
    format::WeightQuantSpec spec;
    spec.format = *lp.format;
    spec.nvfp4 = lp.nvfp4;
    if (m.group >= 0 && is_nvfp4(*lp.format)) {
        float a = 0.0f;
        for (int member : layout.groups[static_cast<size_t>(m.group)].members)
            a = std::fmax(a, format::tensor_amax(view_of(ckpt, layout.linears[static_cast<size_t>(member)]),
                                                 format::Backend::SIMD, &pool));
        spec.nvfp4.global_amax = a;
    }
    if (*lp.format == Format::FP8 && !lp.fp8_multipliers.empty())
        spec.fp8_amax = format::fp8_search_amax(view_of(ckpt, m), format::tensor_amax(view_of(ckpt, m), format::Backend::SIMD, &pool),
                                                lp.fp8_multipliers);
    return spec;
}

void fake_quantize_layer(model::DecoderLayerWeights& w, const Plan& plan, const model::ModelLayout& layout,
                         const io::Checkpoint& ckpt, core::ThreadPool& pool) {
    for (model::LinearWeights& lw : w.linears) {
        const size_t i = static_cast<size_t>(lw.linear);
        if (!plan.linears[i].format) continue;
        lw.weight = format::dequantize_weight(format::quantize_weight(view_of(ckpt, layout.linears[i]),
                                                                      export_spec(plan, layout, ckpt, i, pool),
                                                                      format::Backend::SIMD, &pool));
    }
}

bool needs_layerwise_weights(const Plan& plan) {
    return std::any_of(plan.linears.begin(), plan.linears.end(),
                       [](const LinearPlan& lp) { return lp.gptq || lp.local_hessian; });
}

LayerwiseWeights::LayerwiseWeights(const Plan& plan, model::ModelForward& model, bool gpu,
                                   std::vector<InputQuantizer> inputs)
    : plan_(plan), model_(model), gpu_(gpu), inputs_(std::move(inputs)) {
    if (!inputs_.empty() && inputs_.size() != model_.layout().linears.size())
        throw Error(fmt::format("calibration: {} input quantizers for {} linears", inputs_.size(),
                                model_.layout().linears.size()));
    for (size_t i = 0; i < inputs_.size(); ++i) {
        const InputQuantizer& q = inputs_[i];
        if (q.format == Format::BF16) continue;
        if ((q.format != Format::NVFP4 && q.format != Format::FP8) || !(q.scale > 0.0f) || !std::isfinite(q.scale))
            throw Error(fmt::format("calibration: {}: input quantizer {} with scale {} (expected NVFP4 or FP8 with a "
                                    "positive finite scale)",
                                    model_.layout().linears[i].name, format_info(q.format).name, q.scale));
    }
}

bool LayerwiseWeights::quantizes_input(int linear) const {
    return linear >= 0 && static_cast<size_t>(linear) < inputs_.size() &&
           inputs_[static_cast<size_t>(linear)].format != Format::BF16;
}

const float* LayerwiseWeights::quantized_input(const model::LinearWeights& l, const float* x, int64_t rows, int64_t ld,
                                               int64_t call) {
    const InputQuantizer& q = inputs_[static_cast<size_t>(l.linear)];
    const int key = key_of(l.linear);
    Cached& c = cached_;
    // Members of a fused group read the same buffer in the same batch under the same scale (the
    // NVFP4 input_scale is shared by the group; FP8 amaxes of one tensor agree): quantize it once.
    if (c.call == call && c.key == key && c.x == x && c.rows == rows && c.ld == ld && c.q.format == q.format &&
        c.q.scale == q.scale)
        return c.data.data();
    c.data.resize(static_cast<size_t>(rows * ld));
    constexpr int64_t kRows = 64;
    model_.pool().parallel_for((rows + kRows - 1) / kRows, [&](int64_t b) {
        const int64_t r0 = b * kRows, n = std::min(kRows, rows - r0);
        if (q.format == Format::NVFP4) eval::fake_quant_nvfp4(x + r0 * ld, n, l.in, ld, q.scale, c.data.data() + r0 * ld);
        else eval::fake_quant_fp8(x + r0 * ld, n, l.in, ld, q.scale, c.data.data() + r0 * ld);
    });
    c.key = key;
    c.call = call;
    c.x = x;
    c.rows = rows;
    c.ld = ld;
    c.q = q;
    return c.data.data();
}

const float* LayerwiseWeights::transform_linear_input(const model::LinearWeights& l, const float* x, int64_t rows,
                                                      int64_t ld, std::vector<float>& scratch) {
    (void)scratch;
    if (!quantizes_input(l.linear)) return x;
    return quantized_input(l, x, rows, ld, ++calls_[l.linear]);
}

int LayerwiseWeights::key_of(int linear) const {
    const int group = model_.layout().linears[static_cast<size_t>(linear)].group;
    return group >= 0 ? group : -1 - linear;
}

const algo::HessianAccumulator* LayerwiseWeights::hessian_of(int linear) const {
    auto it = slots_.find(key_of(linear));
    return it == slots_.end() ? nullptr : it->second.full.get();
}

const algo::BlockHessianAccumulator* LayerwiseWeights::block_hessians_of(int linear) const {
    auto it = slots_.find(key_of(linear));
    return it == slots_.end() ? nullptr : it->second.blocks.get();
}

void LayerwiseWeights::linear_input(const model::LinearWeights& l, const float* x, int64_t rows, int64_t ld) {
    const LinearPlan& lp = plan_.linears[static_cast<size_t>(l.linear)];
    if (!lp.gptq && !lp.local_hessian) return;
    // Each linear is shown once per batch; the first member of a fused group to see a batch adds
    // it for the whole group (the others are shown the same buffer). The recipe's algorithm and
    // the group's shared format give every member the same flags.
    const int64_t batch = seen_[l.linear]++;
    Slot& s = slots_[key_of(l.linear)];
    if (batch < s.batches) {
        if (x != s.last)
            throw Error(fmt::format("calibration: {} and the other members of its fused group saw different inputs",
                                    l.name));
        return;
    }
    if (lp.gptq && !s.full) s.full = std::make_unique<algo::HessianAccumulator>(l.in);
    if (lp.local_hessian && !s.blocks) s.blocks = std::make_unique<algo::BlockHessianAccumulator>(l.in);
    // GPTQ: the Hessian of input_quantizer(x) (spec §5.5 Step 2); local_hessian: of x (§5.4).
    // transform_linear_input follows this call for the same batch and reuses the quantized copy.
    if (s.full)
        s.full->add(quantizes_input(l.linear) ? quantized_input(l, x, rows, ld, calls_[l.linear] + 1) : x, rows, ld);
    if (s.blocks) s.blocks->add(x, rows, ld);
    s.batches = batch + 1;
    s.last = x;
}

void LayerwiseWeights::finish_layer(model::DecoderLayerWeights& w, bool replace_weights,
                                    std::map<int, format::QuantizedWeight>& weights,
                                    std::vector<GptqLayerReport>& report) {
    const model::ModelLayout& layout = model_.layout();
    const io::Checkpoint& ckpt = model_.checkpoint();
    core::ThreadPool& pool = model_.pool();
    for (model::LinearWeights& lw : w.linears) {
        const size_t i = static_cast<size_t>(lw.linear);
        const LinearPlan& lp = plan_.linears[i];
        if (!lp.format) continue;
        const model::LinearModule& m = layout.linears[i];
        const format::WeightView view = view_of(ckpt, m);
        format::WeightQuantSpec spec = export_spec(plan_, layout, ckpt, i, pool);
        const Slot* slot = nullptr;
        if (lp.gptq || lp.local_hessian) {
            auto it = slots_.find(key_of(lw.linear));
            if (it == slots_.end() || it->second.batches == 0)
                throw Error(fmt::format("calibration: no input statistics reached {} (gptq / local_hessian need them)",
                                        m.name));
            slot = &it->second;
        }
        format::QuantizedWeight q;
        if (lp.local_hessian && is_nvfp4(*lp.format)) {
            const float amax = format::tensor_amax(view, format::Backend::SIMD, &pool);
            const format::Nvfp4Plan np = format::nvfp4_plan(spec.nvfp4, amax);
            const std::vector<float> hb = slot->blocks->hessians();
            q.format = *lp.format;
            q.rows = m.out_features;
            q.cols = m.in_features;
            q.amax = amax;
            q.global_scale = np.scales.wsf2;
            q.block_scales = algo::local_hessian_nvfp4_codes(view, np, hb, &pool);
            std::vector<float> w0(static_cast<size_t>(m.out_features * m.in_features));
            for (int64_t r = 0; r < m.out_features; ++r) view.load(r, 0, m.in_features, w0.data() + r * m.in_features);
            q.data = format::encode_nvfp4_with_codes(w0, q.rows, q.cols, q.block_scales, q.global_scale);
        } else {
            if (lp.local_hessian)  // FP8 per tensor: the multiplier search under the Hessian loss
                spec.fp8_amax = algo::local_hessian_fp8_amax(view, format::tensor_amax(view, format::Backend::SIMD, &pool),
                                                             lp.fp8_multipliers, slot->blocks->hessians());
            q = format::quantize_weight(view, spec, format::Backend::SIMD, &pool);
        }
        if (lp.gptq) {
            // GPTQ starts from the checkpoint's weights and keeps the grid just chosen.
            std::vector<float> w0(static_cast<size_t>(m.out_features * m.in_features));
            for (int64_t r = 0; r < m.out_features; ++r) view.load(r, 0, m.in_features, w0.data() + r * m.in_features);
            const bool fp8 = *lp.format == Format::FP8;
            const algo::FixedGrid grid = fp8 ? algo::FixedGrid::fp8(q.global_scale)
                                             : algo::FixedGrid::nvfp4(q.block_scales, q.global_scale);
            const algo::GptqResult r =
                gpu_ ? cuda::gptq(w0, m.out_features, m.in_features, slot->full->hessian(), grid, lp.gptq_options)
                     : algo::gptq(w0, m.out_features, m.in_features, slot->full->hessian(), grid, lp.gptq_options,
                                  &pool);
            q.data = fp8 ? algo::encode_fp8_fixed(r.weight, q.global_scale)
                         : format::encode_nvfp4_with_codes(r.weight, q.rows, q.cols, q.block_scales, q.global_scale);
            report.push_back({m.name, r.objective_rtn, r.objective_gptq});
        }
        if (replace_weights) lw.weight = format::dequantize_weight(q);
        if (lp.gptq || lp.local_hessian) weights[lw.linear] = std::move(q);
    }
    slots_.clear();
    seen_.clear();
    cached_.call = -1;
    cached_.x = nullptr;
}

}  // namespace microscale::pipeline
