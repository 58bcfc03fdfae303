#include "pipeline/activation_scales.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "calib/runner.h"
#include "calib/tokenizer.h"
#include "format/fp8.h"
#include "format/quantize.h"
#include "microscale/error.h"
#include "model/forward/model_forward.h"

namespace microscale::pipeline {
namespace fs = std::filesystem;

namespace {
// The quantization spec the export uses for linear i (fused NVFP4 groups share A).
format::WeightQuantSpec export_spec(const Plan& plan, const model::ModelLayout& layout, const io::Checkpoint& ckpt,
                                    size_t i, core::ThreadPool& pool) {
    const LinearPlan& lp = plan.linears[i];
    const model::LinearModule& m = layout.linears[i];
    format::WeightQuantSpec spec;
    spec.format = *lp.format;
    spec.nvfp4 = lp.nvfp4;
    auto view = [&](const model::LinearModule& mm) {
        const io::TensorRef& t = ckpt.at(mm.weight);
        return format::WeightView{ckpt.bytes(t).data(), t.info->dtype, mm.out_features, mm.in_features, mm.weight};
    };
    if (m.group >= 0 && (*lp.format == Format::NVFP4 || *lp.format == Format::W4A16_NVFP4)) {
        float a = 0.0f;
        for (int member : layout.groups[static_cast<size_t>(m.group)].members)
            a = std::fmax(a, format::tensor_amax(view(layout.linears[static_cast<size_t>(member)]), format::Backend::SIMD, &pool));
        spec.nvfp4.global_amax = a;
    }
    if (*lp.format == Format::FP8 && !lp.fp8_multipliers.empty())
        spec.fp8_amax = format::fp8_search_amax(view(m), format::tensor_amax(view(m), format::Backend::SIMD, &pool),
                                                lp.fp8_multipliers);
    return spec;
}

// Quantize-dequantize a loaded layer's planned linears from the checkpoint's own tensors (so the
// dtype-dependent rules hold) with the same specs the export uses.
void fake_quantize_layer(model::DecoderLayerWeights& w, const Plan& plan, const model::ModelLayout& layout,
                         const io::Checkpoint& ckpt, core::ThreadPool& pool) {
    for (model::LinearWeights& lw : w.linears) {
        const size_t i = static_cast<size_t>(lw.linear);
        if (!plan.linears[i].format) continue;
        const model::LinearModule& m = layout.linears[i];
        const io::TensorRef& t = ckpt.at(m.weight);
        const format::WeightView view{ckpt.bytes(t).data(), t.info->dtype, m.out_features, m.in_features, m.weight};
        lw.weight = format::dequantize_weight(
            format::quantize_weight(view, export_spec(plan, layout, ckpt, i, pool), format::Backend::SIMD, &pool));
    }
}

// Hessians of the inputs of the GPTQ linears, one per distinct input buffer (q/k/v share one).
// The runner passes all samples of a layer in one batch, so each buffer is seen once per layer.
class HessianObserver : public model::LayerObserver {
public:
    explicit HessianObserver(const Plan& plan) : plan_(plan) {}
    void linear_input(const model::LinearWeights& l, const float* x, int64_t rows, int64_t ld) override {
        if (!plan_.linears[static_cast<size_t>(l.linear)].gptq) return;
        auto& slot = by_input_[x];
        if (!slot) {
            acc_.emplace_back(std::make_unique<algo::HessianAccumulator>(l.in));
            slot = acc_.back().get();
            slot->add(x, rows, ld);
        }
        of_linear_[l.linear] = slot;
    }
    const algo::HessianAccumulator* hessian_of(int linear) const {
        auto it = of_linear_.find(linear);
        return it == of_linear_.end() ? nullptr : it->second;
    }
    void reset() {
        by_input_.clear();
        of_linear_.clear();
        acc_.clear();
    }

private:
    const Plan& plan_;
    std::map<const float*, algo::HessianAccumulator*> by_input_;
    std::map<int, algo::HessianAccumulator*> of_linear_;
    std::vector<std::unique_ptr<algo::HessianAccumulator>> acc_;
};

calib::CalibStats collect(const CalibrationOptions& opts, const fs::path& model_dir, const Plan& plan,
                          const model::ModelLayout& layout, ActivationScales& out,
                          const std::function<void(const std::string&)>& log) {
    std::vector<std::string>& notes = out.notes;
    if (!opts.stats_in.empty()) {
        calib::CalibStats s = calib::load_stats(opts.stats_in);
        if (!s.provenance.model_type.empty() && s.provenance.model_type != layout.model_type)
            throw Error(fmt::format("--calib-stats {}: collected on a {} model, this is {}", opts.stats_in.string(),
                                    s.provenance.model_type, layout.model_type));
        notes.push_back(fmt::format("calibration statistics from {} ({}: {} samples x {} tokens, seed {})",
                                    opts.stats_in.string(), s.provenance.dataset, s.provenance.samples,
                                    s.provenance.seq_len, s.provenance.seed));
        return s;
    }
    const calib::CalibOptions& data = *opts.data;
    model::ModelForward model(model_dir, opts.threads);
    calib::CalibSet set;
    const bool ids = data.format == calib::CalibFormat::IDS || data.file.string().ends_with(".ids") ||
                     data.file.string().ends_with(".ids.txt");
    if (ids) {
        set = calib::load_calibration(data, {}, model.config().vocab, -1);
    } else {
        const calib::Tokenizer tok = calib::Tokenizer::load(model_dir);
        set = calib::load_calibration(
            data, [&](std::string_view t) { return tok.encode(t, true); }, model.config().vocab, tok.bos_id());
    }
    for (const std::string& w : set.warnings) notes.push_back("warning: " + w);
    notes.push_back(set.summary());
    if (log) log(set.summary());
    calib::RunnerOptions ro;
    ro.activation_budget_bytes = opts.activation_budget_bytes;
    if (opts.sequential_quantized)
        ro.quantize_layer = [&](model::DecoderLayerWeights& w) {
            fake_quantize_layer(w, plan, model.layout(), model.checkpoint(), model.pool());
        };
    // GPTQ, layer by layer: Hessians from this layer's inputs (the previous layers already
    // quantized), then each planned linear is quantized column by column with its block codes
    // fixed from the scale search, and the layer reruns with the result.
    HessianObserver hessians(plan);
    const bool any_gptq = std::any_of(plan.linears.begin(), plan.linears.end(), [](const LinearPlan& lp) { return lp.gptq; });
    if (any_gptq) {
        if (!opts.stats_in.empty()) throw Error("--calib-stats cannot drive GPTQ (it needs Hessians): pass --calib");
        ro.extra_observer = &hessians;
        ro.batch_sequences = std::numeric_limits<int64_t>::max();  // one batch: one input pointer per linear
        ro.after_layer = [&](model::DecoderLayerWeights& w) {
            for (model::LinearWeights& lw : w.linears) {
                const size_t i = static_cast<size_t>(lw.linear);
                if (!plan.linears[i].gptq) continue;
                const algo::HessianAccumulator* h = hessians.hessian_of(lw.linear);
                if (!h) throw Error(fmt::format("gptq: no Hessian was collected for {}", lw.name));
                const model::LinearModule& m = model.layout().linears[i];
                const io::TensorRef& t = model.checkpoint().at(m.weight);
                const format::WeightView view{model.checkpoint().bytes(t).data(), t.info->dtype, m.out_features,
                                              m.in_features, m.weight};
                format::QuantizedWeight q = format::quantize_weight(
                    view, export_spec(plan, model.layout(), model.checkpoint(), i, model.pool()), format::Backend::SIMD,
                    &model.pool());
                const algo::GptqResult r = algo::gptq_nvfp4(lw.weight, lw.out, lw.in, h->hessian(), q.block_scales,
                                                            q.global_scale, plan.linears[i].gptq_options);
                q.data = format::encode_nvfp4_with_codes(r.weight, lw.out, lw.in, q.block_scales, q.global_scale);
                lw.weight = format::dequantize_weight(q);
                out.gptq_report.push_back({lw.name, r.objective_rtn, r.objective_gptq});
                out.gptq.emplace(lw.linear, std::move(q));
            }
            hessians.reset();
        };
    }
    calib::RunnerReport rr;
    calib::CalibStats stats = calib::calibrate_max(model, set, ro, &rr, [&](int l, int n) {
        if (log) log(fmt::format("calibration: layer {}/{}", l, n));
    });
    stats.provenance.model = model_dir.string();
    notes.push_back(fmt::format("calibration forward: {:.2f} s, activations {:.1f} MiB{}, largest layer {:.1f} MiB fp32",
                                rr.seconds, double(rr.activation_bytes) / 1048576.0,
                                rr.spilled ? " (spilled to a temporary file)" : " (in memory)",
                                double(rr.peak_layer_bytes) / 1048576.0));
    if (!opts.stats_out.empty()) {
        calib::save_stats(opts.stats_out, stats);
        notes.push_back("calibration statistics saved to " + opts.stats_out.string());
    }
    return stats;
}

float positive_amax(const std::map<std::string, float>& m, const std::string& key, const std::string& what) {
    auto it = m.find(key);
    if (it == m.end()) throw Error(fmt::format("calibration statistics have no {} for {}", what, key));
    if (!(it->second > 0.0f) || !std::isfinite(it->second))
        throw Error(fmt::format("{} of {} is {}: no non-zero activations reached it; use more calibration data or "
                                "exclude it from quantization", what, key, it->second));
    return it->second;
}

}  // namespace

ActivationScales resolve_activation_scales(const CalibrationOptions& opts, const fs::path& model_dir, const Plan& plan,
                                           const model::ModelLayout& layout,
                                           const std::function<void(const std::string&)>& log) {
    ActivationScales out;
    out.input_amax.resize(layout.linears.size());
    out.k_amax.assign(layout.attentions.size(), 0.0f);
    out.v_amax.assign(layout.attentions.size(), 0.0f);
    if (plan.needs_calibration.empty()) return out;
    if (opts.stats_in.empty() && !opts.data) {
        std::string names;
        for (size_t i = 0; i < plan.needs_calibration.size() && i < 4; ++i) names += "\n  " + plan.needs_calibration[i];
        if (plan.needs_calibration.size() > 4) names += fmt::format("\n  ... and {} more", plan.needs_calibration.size() - 4);
        throw Error(fmt::format("recipe {} enables {} quantizers that need activation statistics:{}\n"
                                "pass calibration data (--calib FILE: .txt, .jsonl or pre-tokenized ids) or saved "
                                "statistics (--calib-stats FILE); or --weights-only for a weight-only (W4A16) export",
                                plan.recipe_name, plan.needs_calibration.size(), names));
    }
    const calib::CalibStats stats = collect(opts, model_dir, plan, layout, out, log);
    for (size_t i = 0; i < layout.linears.size(); ++i)
        if (plan.linears[i].input_calibrated)
            out.input_amax[i] = positive_amax(stats.input_amax, layout.linears[i].name, "input amax");
    // NVFP4 linears that share an input share one input_scale (the max), so fused kernels get one.
    for (const model::FusedGroup& g : layout.groups) {
        float m = 0.0f;
        bool any = false;
        for (int idx : g.members) {
            const LinearPlan& lp = plan.linears[static_cast<size_t>(idx)];
            if (lp.input_calibrated && lp.format == Format::NVFP4) {
                m = std::fmax(m, *out.input_amax[static_cast<size_t>(idx)]);
                any = true;
            }
        }
        if (!any) continue;
        for (int idx : g.members)
            if (plan.linears[static_cast<size_t>(idx)].input_calibrated && plan.linears[static_cast<size_t>(idx)].format == Format::NVFP4)
                out.input_amax[static_cast<size_t>(idx)] = m;
    }
    for (const KvPlan& kv : plan.kv) {
        if (kv.constant_amax) continue;
        const std::string& name = layout.attentions[static_cast<size_t>(kv.attention)].name;
        out.k_amax[static_cast<size_t>(kv.attention)] = positive_amax(stats.k_amax, name, "key amax");
        out.v_amax[static_cast<size_t>(kv.attention)] = positive_amax(stats.v_amax, name, "value amax");
    }
    return out;
}

}  // namespace microscale::pipeline
