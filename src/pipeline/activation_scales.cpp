#include "pipeline/activation_scales.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>

#include "calib/runner.h"
#include "calib/tokenizer.h"
#include "format/fp8.h"
#include "format/quantize.h"
#include "microscale/error.h"
#include "model/forward/model_forward.h"

namespace microscale::pipeline {
namespace fs = std::filesystem;

namespace {

float positive_amax(const std::map<std::string, float>& m, const std::string& key, const std::string& what) {
    auto it = m.find(key);
    if (it == m.end()) throw Error(fmt::format("calibration statistics have no {} for {}", what, key));
    if (!(it->second > 0.0f) || !std::isfinite(it->second))
        throw Error(fmt::format("{} of {} is {}: no non-zero activations reached it; use more calibration data or "
                                "exclude it from quantization", what, key, it->second));
    return it->second;
}

// Per linear the calibrated input amax; NVFP4 linears that share an input share one (the max),
// so fused kernels get one input_scale.
std::vector<std::optional<float>> linear_input_amaxes(const calib::CalibStats& stats, const Plan& plan,
                                                      const model::ModelLayout& layout) {
    std::vector<std::optional<float>> amax(layout.linears.size());
    for (size_t i = 0; i < layout.linears.size(); ++i)
        if (plan.linears[i].input_calibrated) amax[i] = positive_amax(stats.input_amax, layout.linears[i].name, "input amax");
    for (const model::FusedGroup& g : layout.groups) {
        float m = 0.0f;
        bool any = false;
        for (int idx : g.members) {
            const LinearPlan& lp = plan.linears[static_cast<size_t>(idx)];
            if (lp.input_calibrated && lp.format == Format::NVFP4) {
                m = std::fmax(m, *amax[static_cast<size_t>(idx)]);
                any = true;
            }
        }
        if (!any) continue;
        for (int idx : g.members)
            if (plan.linears[static_cast<size_t>(idx)].input_calibrated && plan.linears[static_cast<size_t>(idx)].format == Format::NVFP4)
                amax[static_cast<size_t>(idx)] = m;
    }
    return amax;
}

// The static activation statistics the export needs (input or KV amaxes).
bool needs_activation_amax(const Plan& plan) {
    return std::any_of(plan.linears.begin(), plan.linears.end(), [](const LinearPlan& lp) { return lp.input_calibrated; }) ||
           std::any_of(plan.kv.begin(), plan.kv.end(), [](const KvPlan& kv) { return !kv.constant_amax; });
}

// The input quantizers of the deployed model with the scales the export writes (quantize_job's
// input_scale: amax * RN(1/2688) for NVFP4's dynamic inputs, amax * RN(1/448) for FP8's static
// ones; constant_amax pins the amax). Empty when no linear quantizes its input.
std::vector<InputQuantizer> input_quantizers(const Plan& plan, const std::vector<std::optional<float>>& amax) {
    std::vector<InputQuantizer> q(plan.linears.size());
    bool any = false;
    for (size_t i = 0; i < plan.linears.size(); ++i) {
        const LinearPlan& lp = plan.linears[i];
        std::optional<float> a;
        if (lp.input_constant_amax) a = static_cast<float>(*lp.input_constant_amax);
        else if (lp.input_calibrated) a = amax[i];
        if (!a || !lp.format || (*lp.format != Format::NVFP4 && *lp.format != Format::FP8)) continue;
        q[i] = *lp.format == Format::FP8 ? InputQuantizer{Format::FP8, *a * format::kRecip448}
                                         : InputQuantizer{Format::NVFP4, *a * format::kRecip2688};
        any = true;
    }
    if (!any) q.clear();
    return q;
}

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
        if (needs_layerwise_weights(plan))
            throw Error("--calib-stats cannot drive gptq or local_hessian (they need the layer inputs' Hessians): "
                        "pass --calib");
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
    // ModelOpt's gptq and local_hessian begin with max_calibrate over the whole model (spec §5.4
    // step 1, §5.5 Step 1): the input and KV amaxes of the original model, which the export
    // writes and whose scales the input quantizers use in the layerwise pass below.
    const bool layerwise_pass = needs_layerwise_weights(plan);
    std::optional<calib::CalibStats> step1;
    std::vector<InputQuantizer> input_q;
    if (layerwise_pass && needs_activation_amax(plan)) {
        calib::RunnerOptions r1;
        r1.activation_budget_bytes = opts.activation_budget_bytes;
        r1.gpu = opts.gpu;
        r1.gpu_mem_budget_bytes = opts.gpu_mem_budget_bytes;
        calib::RunnerReport rr1;
        step1 = calib::calibrate_max(model, set, r1, &rr1, [&](int l, int n) {
            if (log) log(fmt::format("calibration (max, original weights): layer {}/{}", l, n));
        });
        notes.push_back(fmt::format("calibration: max calibration first on the original weights ({:.2f} s{}), as "
                                    "ModelOpt's gptq / local_hessian do: the exported input_scale, k_scale and "
                                    "v_scale come from it",
                                    rr1.seconds, rr1.gpu ? " on the GPU" : ""));
    }
    if (layerwise_pass) {
        const std::vector<std::optional<float>> amax =
            step1 ? linear_input_amaxes(*step1, plan, layout) : std::vector<std::optional<float>>(layout.linears.size());
        input_q = input_quantizers(plan, amax);
        if (!input_q.empty())
            notes.push_back("calibration: the layerwise pass applies the input quantizers (dynamic NVFP4 per 16 / "
                            "static FP8, scales from the max calibration) in every GEMM; GPTQ Hessians are of the "
                            "quantized inputs, local_hessian's of the unquantized ones (spec §5.4, §5.5)");
    }
    // GPTQ and local_hessian, layer by layer: the layer's input Hessians (previous layers already
    // quantized when they were), then its planned linears are quantized (block codes fixed by the
    // search, GPTQ on that grid). GPTQ (ModelOpt's layerwise mode) and --sequential-quantized rerun
    // the layer with the quantized weights so the next layer sees quantized outputs.
    LayerwiseWeights layerwise(plan, model, opts.gpu, std::move(input_q));
    if (layerwise_pass) {
        const bool any_gptq = std::any_of(plan.linears.begin(), plan.linears.end(), [](const LinearPlan& lp) { return lp.gptq; });
        const bool requantize = any_gptq || opts.sequential_quantized;
        ro.extra_observer = &layerwise;
        ro.rerun_after_layer = requantize;
        ro.after_layer = [&, requantize](model::DecoderLayerWeights& w) {
            layerwise.finish_layer(w, requantize, out.gptq, out.gptq_report);
        };
        if (requantize && !opts.sequential_quantized)
            notes.push_back("gptq: layerwise, each layer calibrated on the quantized outputs of the layers before it");
        if (any_gptq && opts.gpu)
            notes.push_back("gptq: column loop on the GPU (cuSOLVER Cholesky inverse, cuBLAS lazy updates); the "
                            "Hessians are accumulated by the CPU calibration runner and copied over per linear");
    } else if (opts.sequential_quantized) {
        ro.quantize_layer = [&](model::DecoderLayerWeights& w) {
            fake_quantize_layer(w, plan, model.layout(), model.checkpoint(), model.pool());
        };
    }
    ro.gpu = opts.gpu;
    ro.gpu_mem_budget_bytes = opts.gpu_mem_budget_bytes;
    if (opts.gpu && (ro.extra_observer || ro.quantize_layer))
        notes.push_back("calibration: GPTQ, local_hessian and --sequential-quantized run their forward on the CPU "
                        "in this version");
    calib::RunnerReport rr;
    calib::CalibStats stats = calib::calibrate_max(model, set, ro, &rr, [&](int l, int n) {
        if (log) log(fmt::format("calibration: layer {}/{}", l, n));
    });
    if (step1) stats = std::move(*step1);  // the layerwise pass's amaxes are not the export's
    stats.provenance.model = model_dir.string();
    const auto searched = std::count_if(plan.linears.begin(), plan.linears.end(),
                                        [](const LinearPlan& lp) { return lp.local_hessian; });
    if (searched > 0)
        notes.push_back(fmt::format("local_hessian: {} linears' weight scales searched with per-block input Hessians "
                                    "({} calibration tokens, included in the calibration forward time)",
                                    searched, stats.provenance.tokens));
    if (rr.gpu)
        notes.push_back(fmt::format("calibration forward: {:.2f} s on the GPU (bf16 GEMMs, fp32 activations{}), "
                                    "largest layer {:.1f} MiB on the device",
                                    rr.seconds, rr.gpu_streamed ? ", layers streamed" : "",
                                    double(rr.peak_layer_bytes) / 1048576.0));
    else
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
    out.input_amax = linear_input_amaxes(stats, plan, layout);
    for (const KvPlan& kv : plan.kv) {
        if (kv.constant_amax) continue;
        const std::string& name = layout.attentions[static_cast<size_t>(kv.attention)].name;
        out.k_amax[static_cast<size_t>(kv.attention)] = positive_amax(stats.k_amax, name, "key amax");
        out.v_amax[static_cast<size_t>(kv.attention)] = positive_amax(stats.v_amax, name, "value amax");
    }
    return out;
}

}  // namespace microscale::pipeline
