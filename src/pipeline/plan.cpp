#include "pipeline/plan.h"

#include <fmt/core.h>

#include <set>

#include "microscale/error.h"

namespace microscale::pipeline {
namespace {

using recipe::BlockType;
using recipe::QuantizerAttributes;

struct AlgorithmChoice {
    std::string method = "max";       // max, mse or local_hessian
    bool fp8_scale_sweep = false;
    format::MseSweep sweep;
    bool gptq = false;                // a trailing gptq stage (alone: GPTQ on static max scales)
    algo::GptqOptions gptq_options;
};

AlgorithmChoice choose_algorithm(const recipe::Recipe& r) {
    AlgorithmChoice c;
    std::vector<recipe::Algorithm> stages = r.algorithms;
    if (!stages.empty() && stages.back().method == "gptq") {
        const recipe::Algorithm& g = stages.back();
        c.gptq = true;
        c.gptq_options.perc_damp = g.number("perc_damp", 0.01);
        c.gptq_options.block_size = static_cast<int>(g.integer("block_size", 128));
        c.gptq_options.act_order = g.flag("act_order", false);
        if (c.gptq_options.block_size <= 0 || c.gptq_options.block_size % 16 != 0)
            throw Error(fmt::format("{}: gptq block_size must be a positive multiple of 16, got {}", g.where.str(),
                                    c.gptq_options.block_size));
        stages.pop_back();
    }
    if (stages.empty()) return c;  // null algorithm (MX presets) or gptq alone: max statistics
    if (stages.size() > 1)
        throw Error(fmt::format("recipe {}: {} algorithm stages; microscale runs one scale search, optionally "
                                "followed by gptq", r.name, r.algorithms.size()));
    const recipe::Algorithm& a = stages[0];
    if (a.method == "max") return c;
    if (a.method == "mse" || a.method == "local_hessian") {
        c.method = a.method;
        c.fp8_scale_sweep = a.flag("fp8_scale_sweep", a.method == "local_hessian");  // the two defaults differ
        c.sweep = recipe::mse_sweep_of(a);
        if (a.method == "local_hessian" && a.integer("block_size", 16) != 16)
            throw Error(fmt::format("{}: local_hessian block_size {} is not supported (16, the NVFP4 block)",
                                    a.where.str(), a.integer("block_size", 16)));
        return c;
    }
    throw Error(fmt::format("{}: algorithm '{}' is not available yet; use max, mse, local_hessian or gptq",
                            a.where.str(), a.method));
}

std::string sweep_label(const format::MseSweep& s) {
    return fmt::format("{}x[{:g}..{:g}]", format::mse_multipliers(s).size(), s.start, s.stop);
}

// Fills the weight side of lp from the resolved weight quantizer and the algorithm.
void plan_weight(LinearPlan& lp, const QuantizerAttributes& w, const AlgorithmChoice& algo, const std::string& name,
                 int64_t in_features) {
    const Format f = *lp.format;
    if (f == Format::NVFP4 || f == Format::W4A16_NVFP4) {
        const recipe::BlockSizes& b = *w.block_sizes;
        lp.nvfp4.four_over_six = b.four_over_six;
        const bool dynamic = b.type == BlockType::Dynamic;
        if (dynamic && b.four_over_six)
            throw Error(fmt::format("{}: four_over_six needs block_sizes type static", name));
        if (algo.method == "max") {
            lp.nvfp4.search = dynamic ? format::Nvfp4Search::DYNAMIC_MAX : format::Nvfp4Search::STATIC_MAX;
            lp.algorithm = dynamic ? "max" : "max (static)";
        } else if (dynamic) {
            throw Error(fmt::format("{}: the {} global-amax sweep of dynamic NVFP4 weights is not supported; "
                                    "use block_sizes type static for a per-block search", name, algo.method));
        } else if (algo.fp8_scale_sweep) {
            lp.nvfp4.search = format::Nvfp4Search::FP8_SWEEP;
            lp.algorithm = "fp8 sweep";
        } else {
            lp.nvfp4.search = format::Nvfp4Search::MSE;
            lp.nvfp4.mse = algo.sweep;
            lp.algorithm = (b.four_over_six ? "4/6 mse " : "mse ") + sweep_label(algo.sweep);
        }
        if (algo.method == "local_hessian" && !dynamic) {
            lp.local_hessian = true;
            lp.algorithm = "local_hessian " + lp.algorithm;
        }
        if (b.four_over_six && lp.algorithm.rfind("4/6", 0) != 0) lp.algorithm += " (m=256)";
    } else if (f == Format::FP8) {
        // mse without the FP8 sweep also searches FP8 per-tensor amaxes (spec §5.3 side effect);
        // the FP8 scale sweep skips them.
        if (algo.method == "mse" && !algo.fp8_scale_sweep) {
            lp.fp8_multipliers = format::mse_multipliers(algo.sweep);
            lp.algorithm = "mse " + sweep_label(algo.sweep) + " (per tensor)";
        } else if (algo.method == "local_hessian") {
            // ModelOpt gives every non-NVFP4-static weight the multiplier search with the Hessian
            // loss, whatever fp8_scale_sweep says; inputs not divisible by 16 fall back to plain mse.
            lp.fp8_multipliers = format::mse_multipliers(algo.sweep);
            lp.local_hessian = in_features % 16 == 0;
            lp.algorithm = (lp.local_hessian ? "local_hessian mse " : "mse (local_hessian fallback) ") +
                           sweep_label(algo.sweep) + " (per tensor)";
        } else {
            lp.algorithm = "max";
        }
    } else {
        lp.algorithm = "max";
    }
}

}  // namespace

Plan build_plan(const recipe::Recipe& recipe, const model::ModelLayout& layout, const PlanOptions& opts) {
    Plan plan;
    plan.recipe_name = recipe.name;
    const AlgorithmChoice algo = choose_algorithm(recipe);
    if (layout.generic_fallback)
        plan.notes.push_back(fmt::format("model_type '{}' is not in the architecture table; using the generic "
                                         "fallback (2-D *.weight outside embeddings/norms/lm_head are linears)",
                                         layout.model_type));
    for (size_t i = 0; i < layout.linears.size(); ++i) {
        const model::LinearModule& m = layout.linears[i];
        LinearPlan lp;
        lp.linear = static_cast<int>(i);
        const std::string wq = m.name + ".weight_quantizer", iq = m.name + ".input_quantizer";
        const QuantizerAttributes w = recipe::resolve(recipe, wq, m.module_class);
        QuantizerAttributes in = recipe::resolve(recipe, iq, m.module_class);
        if (opts.weights_only) in.enable = false;
        if (!w.enable) {
            if (in.enable && recipe::quantizes_activations(in))
                throw Error(fmt::format("{}: input quantizer enabled with the weight quantizer disabled is not a "
                                        "format microscale exports", m.name));
            plan.linears.push_back(lp);
            continue;
        }
        lp.format = recipe::linear_format_of(w, in, m.name);
        if (!lp.format) {
            plan.linears.push_back(lp);
            continue;
        }
        if (m.role == model::Role::EMBED || m.module_class == "nn.Embedding")
            throw Error(fmt::format("{}: quantizing embeddings is not supported; add a rule disabling '{}'", m.name, wq));
        if (m.weight.empty())
            throw Error(fmt::format("{}: the weight is tied to the embeddings and not stored; disable '{}'", m.name, wq));
        if (*lp.format == Format::FP8 && !in.enable)
            throw Error(fmt::format("{}: FP8 weights without an FP8 input quantizer (FP8 weight-only) are not a "
                                    "ModelOpt format; enable the input quantizer or pick w4a16_nvfp4", m.name));
        const FormatInfo& info = format_info(*lp.format);
        if (info.block_elems > 0 && m.in_features % info.block_elems != 0) {
            const std::string why = fmt::format("in_features {} is not a multiple of {} ({} block)", m.in_features,
                                                info.block_elems, info.name);
            if (!opts.skip_incompatible)
                throw Error(fmt::format("{}: {}; exclude this layer in the recipe (a rule '{}*' with enable: false) "
                                        "or pass --skip-incompatible to leave it in BF16",
                                        m.name, why, m.name));
            lp.skipped = why;
            lp.format.reset();
            plan.notes.push_back(fmt::format("{} left unquantized: {}", m.name, why));
            plan.linears.push_back(lp);
            continue;
        }
        plan_weight(lp, w, algo, wq, m.in_features);
        const bool nvfp4 = *lp.format == Format::NVFP4 || *lp.format == Format::W4A16_NVFP4;
        if (algo.gptq && (nvfp4 || *lp.format == Format::FP8)) {
            if (nvfp4 && lp.nvfp4.search == format::Nvfp4Search::DYNAMIC_MAX)
                throw Error(fmt::format("{}: gptq needs static NVFP4 weights (block_sizes type static), as in "
                                        "ModelOpt's gptq recipes", wq));
            lp.gptq = true;
            lp.gptq_options = algo.gptq_options;
            lp.algorithm += lp.gptq_options.act_order ? " + gptq act_order" : " + gptq";
        }
        if ((lp.gptq || lp.local_hessian) && m.layer < 0)
            throw Error(fmt::format("{}: gptq / local_hessian run layer by layer inside the decoder; {} is outside "
                                    "it: disable '{}' or give it a rule without these algorithms", wq, m.name, wq));
        if (lp.gptq || lp.local_hessian) plan.needs_calibration.push_back(wq);  // the Hessian of its input
        if (info.quantizes_activations && in.enable && !in.dynamic) {
            if (in.constant_amax) {
                lp.input_constant_amax = *in.constant_amax;
            } else if (!in.use_constant_amax && (*lp.format == Format::NVFP4 || *lp.format == Format::FP8)) {
                lp.input_calibrated = true;
                plan.needs_calibration.push_back(iq);
            }
        }
        plan.linears.push_back(lp);
    }
    // Fused groups share one global scale, so vLLM can fuse them only in one format.
    for (const model::FusedGroup& g : layout.groups) {
        std::set<std::string> formats;
        for (int idx : g.members) {
            const auto& f = plan.linears[static_cast<size_t>(idx)].format;
            formats.insert(f ? std::string(format_info(*f).name) : "bf16");
        }
        if (formats.size() > 1) {
            std::string names;
            for (int idx : g.members) names += (names.empty() ? "" : ", ") + layout.linears[static_cast<size_t>(idx)].name;
            throw Error(fmt::format("fused group {} ({}) mixes formats; serving engines fuse these projections and "
                                    "need one format for all of them", g.kind, names));
        }
    }
    // KV cache quantizers on the attention modules (post-RoPE keys/values).
    for (size_t i = 0; i < layout.attentions.size() && !opts.weights_only; ++i) {
        const model::AttentionModule& a = layout.attentions[i];
        for (const char* which : {"k_bmm_quantizer", "v_bmm_quantizer"}) {
            const std::string qn = a.name + "." + which;
            const QuantizerAttributes q = recipe::resolve(recipe, qn, a.module_class);
            if (!q.enable) continue;
            std::string algo_name;
            if (q.num_bits.is(4, 3) && !q.block_sizes) algo_name = "FP8";
            else if (q.num_bits.is(2, 1) && q.block_sizes) algo_name = "NVFP4";
            else throw Error(fmt::format("{}: KV cache format {} is not supported (FP8 or NVFP4)", qn, recipe::describe(q)));
            if (plan.kv_cache_quant_algo && *plan.kv_cache_quant_algo != algo_name)
                throw Error(fmt::format("{}: mixed KV cache formats ({} and {}) are rejected", qn, *plan.kv_cache_quant_algo, algo_name));
            plan.kv_cache_quant_algo = algo_name;
            if (std::string(which) == "k_bmm_quantizer") plan.kv.push_back({static_cast<int>(i), algo_name, q.use_constant_amax});
            if (!q.use_constant_amax) plan.needs_calibration.push_back(qn);
        }
    }
    return plan;
}

double planned_effective_bits(const Plan& plan, const model::ModelLayout& layout, bool include_lm_head) {
    double bits = 0, elems = 0;
    for (const LinearPlan& lp : plan.linears) {
        const model::LinearModule& m = layout.linears[static_cast<size_t>(lp.linear)];
        if (m.role == model::Role::EMBED || m.weight.empty()) continue;
        if (m.role == model::Role::LM_HEAD && !include_lm_head) continue;
        const double n = static_cast<double>(m.out_features) * static_cast<double>(m.in_features);
        const uint64_t bytes = format_storage_bytes(lp.format.value_or(Format::BF16),
                                                    static_cast<uint64_t>(m.out_features), static_cast<uint64_t>(m.in_features));
        bits += 8.0 * static_cast<double>(bytes);
        elems += n;
    }
    return elems > 0 ? bits / elems : 0.0;
}

std::string describe_plan(const Plan& plan, const model::ModelLayout& layout) {
    std::string out = fmt::format("plan: recipe {}, model_type {} ({} architecture)\n", plan.recipe_name,
                                  layout.model_type, layout.architecture);
    for (const std::string& n : plan.notes) out += "  note: " + n + "\n";
    out += fmt::format("  {:<48} {:<12} {:<26} {:>9} {:>10}\n", "module", "format", "weight algorithm", "bits/elem",
                       "input");
    for (const LinearPlan& lp : plan.linears) {
        const model::LinearModule& m = layout.linears[static_cast<size_t>(lp.linear)];
        const Format f = lp.format.value_or(Format::BF16);
        double bpe = 16.0;
        if (m.out_features > 0 && m.in_features > 0 && !m.weight.empty())
            bpe = 8.0 * static_cast<double>(format_storage_bytes(f, static_cast<uint64_t>(m.out_features),
                                                                 static_cast<uint64_t>(m.in_features))) /
                  (static_cast<double>(m.out_features) * static_cast<double>(m.in_features));
        const std::string input = lp.input_calibrated      ? "calibrated"
                                  : lp.input_constant_amax ? "constant"
                                  : lp.format && format_info(f).quantizes_activations ? "dynamic"
                                                                                      : "-";
        out += fmt::format("  {:<48} {:<12} {:<26} {:>9.3f} {:>10}{}\n", m.name, format_info(f).name,
                           lp.format ? lp.algorithm : (lp.skipped.empty() ? "-" : "skipped"), bpe, input,
                           m.weight.empty() ? "  (tied, not stored)" : "");
    }
    if (plan.kv_cache_quant_algo)
        out += fmt::format("  kv cache: {} on {} attention modules{}\n", *plan.kv_cache_quant_algo, plan.kv.size(),
                           !plan.kv.empty() && plan.kv[0].constant_amax ? " (constant amax, no scales written)" : "");
    out += fmt::format("  effective bits per element (linear weights): {:.3f} without lm_head, {:.3f} with\n",
                       planned_effective_bits(plan, layout, false), planned_effective_bits(plan, layout, true));
    if (!plan.needs_calibration.empty())
        out += fmt::format("  needs calibration data: {} quantizers (e.g. {})\n", plan.needs_calibration.size(),
                           plan.needs_calibration.front());
    return out;
}

}  // namespace microscale::pipeline
