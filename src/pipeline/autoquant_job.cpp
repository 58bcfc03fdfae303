#include "pipeline/autoquant_job.h"

#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>

#include "calib/tokenizer.h"
#include "export/inspect.h"
#include "format/fp8.h"
#include "format/nvfp4_block.h"
#include "microscale/error.h"
#include "model/forward/model_forward.h"
#include "recipe/recipe.h"
#include "search/candidates.h"
#include "search/groups.h"
#include "search/knapsack.h"
#include "search/score_file.h"
#include "search/scores.h"

namespace microscale::pipeline {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The recipe that gives every group `c` where its shape allows (the scoring plans), or the
// chosen plan: one entry per group.
std::string recipe_for(const search::CandidateSet& set, const std::vector<search::SearchGroup>& groups,
                       const model::ModelLayout& layout, const std::vector<const search::CandidateInfo*>& per_group,
                       const std::vector<std::string>& comments, const std::vector<std::string>& header,
                       const std::string& description) {
    std::vector<search::RecipeEntry> entries;
    for (size_t g = 0; g < groups.size(); ++g) {
        search::RecipeEntry e;
        e.candidate = per_group[g];
        e.comment = g < comments.size() ? comments[g] : std::string();
        for (int li : groups[g].linears) e.modules.push_back(layout.linears[static_cast<size_t>(li)].name);
        entries.push_back(std::move(e));
    }
    return search::emit_recipe_yaml(set, entries, header, description);
}

// The calibration samples, tokenized as quantize's calibration does (ids files need no tokenizer).
model::TokenSequences load_samples(const calib::CalibOptions& data, const fs::path& model_dir, int64_t vocab,
                                   std::vector<std::string>& notes) {
    const bool ids = data.format == calib::CalibFormat::IDS || data.file.string().ends_with(".ids") ||
                     data.file.string().ends_with(".ids.txt");
    calib::CalibSet set;
    if (ids) {
        set = calib::load_calibration(data, {}, vocab, -1);
    } else {
        const calib::Tokenizer tok = calib::Tokenizer::load(model_dir);
        set = calib::load_calibration(data, [&](std::string_view t) { return tok.encode(t, true); }, vocab, tok.bos_id());
    }
    for (const std::string& w : set.warnings) notes.push_back("warning: " + w);
    notes.push_back("scores: " + set.summary());
    return set.samples;
}

std::string shell_quote(const std::string& s) {
    if (s.find_first_of(" \t'\"$\\") == std::string::npos && !s.empty()) return s;
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

void write_file_atomically(const fs::path& path, const std::string& text) {
    const fs::path tmp = path.string() + ".tmp-" + std::to_string(getpid());
    {
        std::ofstream f(tmp, std::ios::binary);
        f << text;
        f.flush();
        if (!f) throw Error(fmt::format("--recipe-out {}: cannot write {}", path.string(), tmp.string()));
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
        fs::remove(tmp, ec);
        throw Error(fmt::format("--recipe-out {}: cannot rename the written recipe into place", path.string()));
    }
}

// Runs the forward passes: every scored (group, candidate) gets its kl or mse score.
void score(const AutoquantOptions& opts, const search::CandidateSet& set, const model::ModelLayout& layout,
           const io::Checkpoint& ckpt, const std::vector<search::SearchGroup>& groups, const std::vector<Plan>& plans,
           const std::vector<std::vector<bool>>& scored, search::ScoreMethod method, const JobCallbacks& callbacks,
           AutoquantReport& rep) {
    const auto log = [&](const std::string& s) {
        if (callbacks.on_log) callbacks.on_log(s);
    };
    const size_t K = set.candidates.size();
    model::ModelForward fwd(opts.model_dir, opts.threads);
    if (fwd.layout().linears.size() != layout.linears.size())
        throw Error("autoquant: the forward pass and the quantizer see different linears");
    const model::TokenSequences samples = load_samples(*opts.calibration.data, opts.model_dir, fwd.config().vocab, rep.notes);
    log(rep.notes.back());
    // Exported input scales of the candidates that quantize activations (as quantize computes them).
    std::vector<ActivationScales> act(K);
    for (size_t c = 0; c < K; ++c) {
        if (plans[c].needs_calibration.empty()) continue;
        CalibrationOptions co = opts.calibration;
        if (co.threads == 0) co.threads = opts.threads;
        log(fmt::format("autoquant: input scales for {}", set.candidates[c]->name));
        act[c] = resolve_activation_scales(co, opts.model_dir, plans[c], layout, callbacks.on_log);
    }
    const search::VariantFn variant = [&](int li, size_t c) {
        const size_t i = static_cast<size_t>(li);
        const model::LinearModule& m = layout.linears[i];
        const io::TensorRef& t = ckpt.at(m.weight);
        const format::WeightView view{ckpt.bytes(t).data(), t.info->dtype, m.out_features, m.in_features, m.weight};
        search::LinearVariant v;
        v.weight = format::dequantize_weight(
            format::quantize_weight(view, export_spec(plans[c], layout, ckpt, i, fwd.pool()), format::Backend::SIMD, &fwd.pool()));
        const Format f = *plans[c].linears[i].format;
        if (act[c].input_amax.size() > i && act[c].input_amax[i]) {
            v.input_format = f == Format::FP8 ? Format::FP8 : Format::NVFP4;
            v.input_scale = *act[c].input_amax[i] * (f == Format::FP8 ? format::kRecip448 : format::kRecip2688);
        }
        return v;
    };
    const auto t_score = Clock::now();
    const search::ScoreReport sr = search::score_groups(fwd, samples, groups, scored, method, variant, log);
    rep.score_seconds = since(t_score);
    rep.reference_seconds = sr.reference_seconds;
    rep.score_tokens = sr.tokens;
    for (size_t g = 0; g < groups.size(); ++g) {
        rep.groups[g].seconds = sr.groups[g].seconds;
        for (size_t c = 0; c < K; ++c)
            if (scored[g][c]) rep.groups[g].score[c] = sr.groups[g].score[c];
    }
}

// Scores from --scores-in for the candidates of this search.
void load_saved_scores(const AutoquantOptions& opts, const search::CandidateSet& set, AutoquantReport& rep,
                       const std::vector<std::vector<bool>>& scored, const std::function<void(const std::string&)>& log) {
    const search::SavedScores saved = search::load_scores(opts.scores_in);
    const std::string where = "--scores-in " + opts.scores_in.string();
    if (saved.method != opts.method)
        throw Error(fmt::format("{}: scored with --method {}, this run asks for {}", where, saved.method, opts.method));
    if (saved.w4a4 != set.w4a4)
        throw Error(fmt::format("{}: scored {} --w4a4, this run {}", where, saved.w4a4 ? "with" : "without",
                                set.w4a4 ? "with it" : "without it"));
    if (saved.groups.size() != rep.groups.size())
        throw Error(fmt::format("{}: {} groups, this model has {}", where, saved.groups.size(), rep.groups.size()));
    for (size_t g = 0; g < rep.groups.size(); ++g) {
        const auto& sg = saved.groups[g];
        if (sg.name != rep.groups[g].name)
            throw Error(fmt::format("{}: group {} is {}, this model's is {}", where, g, sg.name, rep.groups[g].name));
        rep.groups[g].seconds = sg.seconds;
        for (size_t c = 0; c < set.candidates.size(); ++c) {
            if (!scored[g][c]) continue;
            const auto it = sg.score.find(std::string(set.candidates[c]->name));
            if (it == sg.score.end())
                throw Error(fmt::format("{}: no {} score for {}; score that format first (without --scores-in)", where,
                                        set.candidates[c]->name, sg.name));
            rep.groups[g].score[c] = it->second;
        }
    }
    rep.score_tokens = saved.tokens;
    const calib::CalibOptions& cd = *opts.calibration.data;
    if (saved.calib_file != cd.file.string() || saved.calib_samples != cd.num_samples || saved.calib_seq_len != cd.seq_len ||
        saved.seed != cd.seed)
        rep.notes.push_back(fmt::format("note: the scores were computed on {} ({} x {}, seed {}); input scales of this "
                                        "export come from --calib {}", saved.calib_file, saved.calib_samples,
                                        saved.calib_seq_len, saved.seed, cd.file.string()));
    log(fmt::format("autoquant: scores of {} groups from {} ({} method, {} tokens)", saved.groups.size(),
                    opts.scores_in.string(), saved.method, saved.tokens));
}

void save_scores_of(const AutoquantOptions& opts, const search::CandidateSet& set, const AutoquantReport& rep,
                    const std::vector<std::vector<bool>>& scored) {
    search::SavedScores s;
    s.model = opts.model_dir.string();
    s.method = opts.method;
    s.w4a4 = set.w4a4;
    const calib::CalibOptions& cd = *opts.calibration.data;
    s.calib_file = cd.file.string();
    s.calib_samples = cd.num_samples;
    s.calib_seq_len = cd.seq_len;
    s.seed = cd.seed;
    s.tokens = rep.score_tokens;
    for (size_t g = 0; g < rep.groups.size(); ++g) {
        search::SavedScores::Group sg{rep.groups[g].name, {}, rep.groups[g].seconds};
        for (size_t c = 0; c < set.candidates.size(); ++c)
            if (scored[g][c]) sg.score[std::string(set.candidates[c]->name)] = rep.groups[g].score[c];
        s.groups.push_back(std::move(sg));
    }
    search::save_scores(opts.scores_out, s);
}

}  // namespace

AutoquantReport run_autoquant(const AutoquantOptions& opts, const JobCallbacks& callbacks) {
    const auto t_start = Clock::now();
    const auto log = [&](const std::string& s) {
        if (callbacks.on_log) callbacks.on_log(s);
    };
    AutoquantReport rep;
    rep.method = opts.method;
    rep.budget_bits = opts.effective_bits;
    search::ScoreMethod method;
    if (opts.method == "kl") method = search::ScoreMethod::KL;
    else if (opts.method == "mse") method = search::ScoreMethod::MSE;
    else throw Error(fmt::format("--method {}: expected kl or mse", opts.method));
    if (!fs::is_directory(opts.model_dir))
        throw Error(fmt::format("--model {}: not a directory", opts.model_dir.string()));
    if (opts.recipe_out.empty()) throw Error("--recipe-out FILE is required: the chosen plan is written there");
    if (fs::exists(opts.recipe_out) && !opts.force)
        throw Error(fmt::format("--recipe-out {} exists; pass --force to replace it", opts.recipe_out.string()));
    if (!opts.output_dir.empty() && fs::exists(opts.output_dir) && !opts.force)
        throw Error(fmt::format("--output {} exists; pass --force to replace it", opts.output_dir.string()));
    if (!opts.calibration.data)
        throw Error("autoquant scores each group on calibration data: pass --calib FILE (.txt, .jsonl or .ids)");
    const search::CandidateSet set = search::parse_candidates(opts.formats, opts.w4a4);
    for (const auto* c : set.candidates) rep.candidates.emplace_back(c->name);
    const size_t K = set.candidates.size();

    // The model as quantize sees it (unquantized input only) and the forward pass for scores.
    const fs::path config_path = opts.model_dir / "config.json";
    const io::Checkpoint ckpt = io::Checkpoint::open(opts.model_dir);
    const model::ModelLayout layout = model::describe_model(model::load_config_json(config_path), ckpt, config_path.string());
    const std::vector<search::SearchGroup> groups = search::search_groups(layout);
    if (groups.empty()) throw Error(fmt::format("--model {}: no linear weights to search over", opts.model_dir.string()));

    // One plan per candidate with every group at it: which groups each format takes (block
    // sizes), and the exact LinearPlan the export would use, for the scores.
    std::vector<Plan> plans;
    for (size_t c = 0; c < K; ++c) {
        const std::vector<const search::CandidateInfo*> all(groups.size(), set.candidates[c]);
        const std::string yaml = recipe_for(set, groups, layout, all, {}, {}, "autoquant scoring plan");
        const recipe::Recipe r = recipe::load_recipe_text(yaml, fmt::format("<autoquant {}>", set.candidates[c]->name));
        PlanOptions po;
        po.skip_incompatible = true;
        plans.push_back(build_plan(r, layout, po));
    }
    rep.groups.resize(groups.size());
    std::vector<std::vector<bool>> scored(groups.size(), std::vector<bool>(K, false));
    uint64_t min_bytes = 0, max_bytes = 0;
    for (size_t g = 0; g < groups.size(); ++g) {
        AutoquantGroup& ag = rep.groups[g];
        ag.name = groups[g].name;
        ag.elements = groups[g].elements;
        for (int li : groups[g].linears) ag.modules.push_back(layout.linears[static_cast<size_t>(li)].name);
        ag.score.assign(K, 0.0);
        ag.bytes.assign(K, 0);
        ag.available.assign(K, true);
        uint64_t lo = std::numeric_limits<uint64_t>::max(), hi = 0;
        for (size_t c = 0; c < K; ++c) {
            const std::optional<Format> f = search::candidate_format(*set.candidates[c], set.w4a4);
            // Available when the format's plan took every member (block sizes divide in_features).
            for (int li : groups[g].linears)
                if (plans[c].linears[static_cast<size_t>(li)].format != f) ag.available[c] = false;
            if (!ag.available[c]) {
                ag.score[c] = std::nan("");
                continue;
            }
            for (int li : groups[g].linears) {
                const model::LinearModule& m = layout.linears[static_cast<size_t>(li)];
                ag.bytes[c] += search::weight_bytes(m, f, ckpt.at(m.weight).info->dtype);
            }
            scored[g][c] = f.has_value();
            lo = std::min(lo, ag.bytes[c]);
            hi = std::max(hi, ag.bytes[c]);
        }
        min_bytes += lo;
        max_bytes += hi;
        rep.elements += groups[g].elements;
    }
    rep.min_bits = search::bits_per_element(min_bytes, rep.elements);
    rep.max_bits = search::bits_per_element(max_bytes, rep.elements);
    rep.budget_bytes = search::budget_bytes(opts.effective_bits, rep.elements);
    if (min_bytes > rep.budget_bytes)
        throw Error(fmt::format("--effective-bits {}: below the minimum achievable {:.4f} bits per element with "
                                "--formats {} (every group at its cheapest format; {} linear weight elements)",
                                opts.effective_bits, rep.min_bits, opts.formats, rep.elements));
    for (const auto& p : plans)
        for (const std::string& n : p.notes) log("note: " + n);

    if (!opts.scores_in.empty()) load_saved_scores(opts, set, rep, scored, log);
    else score(opts, set, layout, ckpt, groups, plans, scored, method, callbacks, rep);
    if (!opts.scores_out.empty()) save_scores_of(opts, set, rep, scored);

    // The budget solve over the available choices.
    const auto t_solve = Clock::now();
    std::vector<std::vector<search::KnapsackChoice>> choices(groups.size());
    std::vector<std::vector<size_t>> choice_candidate(groups.size());
    for (size_t g = 0; g < groups.size(); ++g)
        for (size_t c = 0; c < K; ++c) {
            if (!rep.groups[g].available[c]) continue;
            choices[g].push_back({rep.groups[g].bytes[c], rep.groups[g].score[c]});
            choice_candidate[g].push_back(c);
        }
    const search::KnapsackResult kr = search::solve_knapsack(choices, rep.budget_bytes);
    rep.solve_seconds = since(t_solve);
    if (!kr.feasible) throw Error("autoquant: no plan fits the budget");  // excluded by the min check above
    rep.solver_states = kr.peak_states;
    rep.chosen_bytes = kr.cost;
    rep.total_score = kr.score;
    rep.achieved_bits = search::bits_per_element(kr.cost, rep.elements);
    std::vector<const search::CandidateInfo*> chosen(groups.size());
    std::vector<std::string> comments(groups.size());
    for (size_t g = 0; g < groups.size(); ++g) {
        AutoquantGroup& ag = rep.groups[g];
        ag.choice = static_cast<int>(choice_candidate[g][static_cast<size_t>(kr.pick[g])]);
        chosen[g] = set.candidates[static_cast<size_t>(ag.choice)];
        comments[g] = fmt::format("{}: {} ({} score {:.4e}, {:.3f} bits/elem)", ag.name, chosen[g]->name, opts.method,
                                  ag.score[static_cast<size_t>(ag.choice)],
                                  search::bits_per_element(ag.bytes[static_cast<size_t>(ag.choice)], ag.elements));
    }

    // The recipe, with the command that reruns it.
    const bool needs_calib = [&] {
        for (const auto* c : chosen)
            if (c->fp8_inputs || (c->nvfp4_family && set.w4a4)) return true;
        return false;
    }();
    const calib::CalibOptions& cd = *opts.calibration.data;
    rep.rerun_command = fmt::format("microscale quantize --model {} --recipe {}", shell_quote(opts.model_dir.string()),
                                    shell_quote(opts.recipe_out.string()));
    if (needs_calib)
        rep.rerun_command += fmt::format(" --calib {} --calib-size {} --calib-seq-len {} --seed {}",
                                         shell_quote(cd.file.string()), cd.num_samples, cd.seq_len, cd.seed);
    if (needs_calib && cd.format != calib::CalibFormat::AUTO)
        rep.rerun_command += cd.format == calib::CalibFormat::TEXT    ? " --calib-format text"
                             : cd.format == calib::CalibFormat::JSONL ? " --calib-format jsonl"
                                                                      : " --calib-format ids";
    rep.rerun_command += " --output " + shell_quote(opts.output_dir.empty() ? std::string("DIR") : opts.output_dir.string());
    std::string formats_used;
    for (const auto* c : set.candidates) {
        if (!formats_used.empty()) formats_used += ',';
        formats_used += c->name;
    }
    const std::vector<std::string> header = {
        fmt::format("microscale {} autoquant: formats {}{}, method {}, {} score tokens", MICROSCALE_VERSION, formats_used,
                    set.w4a4 ? " (W4A4 NVFP4)" : "", opts.method, rep.score_tokens),
        fmt::format("effective bits per element (linear weights, as `microscale inspect` counts them): {:.4f} "
                    "<= budget {} (min {:.4f}, max {:.4f})", rep.achieved_bits, opts.effective_bits, rep.min_bits,
                    rep.max_bits),
        "Reproduce the checkpoint:",
        "  " + rep.rerun_command,
    };
    const std::string yaml = recipe_for(set, groups, layout, chosen, comments, header,
                                        fmt::format("AutoQuantize plan: {} at {:.4f} effective bits ({} score)",
                                                    formats_used, rep.achieved_bits, opts.method));
    // What quantize will build from it must be the chosen plan, format for format.
    const Plan check = build_plan(recipe::load_recipe_text(yaml, opts.recipe_out.string()), layout, {});
    for (size_t g = 0; g < groups.size(); ++g)
        for (int li : groups[g].linears)
            if (check.linears[static_cast<size_t>(li)].format != search::candidate_format(*chosen[g], set.w4a4))
                throw Error(fmt::format("autoquant: internal error: the emitted recipe gives {} another format than {}",
                                        layout.linears[static_cast<size_t>(li)].name, chosen[g]->name));
    write_file_atomically(opts.recipe_out, yaml);
    rep.recipe_path = opts.recipe_out;

    if (!opts.output_dir.empty()) {
        QuantizeOptions qo;
        qo.model_dir = opts.model_dir;
        qo.output_dir = opts.output_dir;
        qo.recipe = opts.recipe_out.string();
        qo.force = opts.force;
        qo.threads = opts.threads;
        qo.calibration = opts.calibration;
        if (!needs_calib) qo.calibration.data.reset();
        rep.quantize = run_quantize(qo, callbacks);
        rep.exported = true;
        // The budget holds on what was written, by inspect's own count.
        rep.inspect_bits = exporter::inspect_checkpoint(rep.quantize.output).linear.bits();
        if (rep.inspect_bits != rep.achieved_bits)
            throw Error(fmt::format("autoquant: internal error: inspect counts {:.6f} bits per element in {}, the "
                                    "solver {:.6f}", rep.inspect_bits, rep.quantize.output.string(), rep.achieved_bits));
    }
    rep.seconds = since(t_start);
    return rep;
}

std::string summarize_autoquant(const AutoquantReport& r) {
    std::string out = fmt::format("autoquant: {} groups, method {} on {} tokens\n", r.groups.size(), r.method, r.score_tokens);
    out += fmt::format("  {:<48}", "group");
    for (const std::string& c : r.candidates) out += fmt::format(" {:>11}", c);
    out += fmt::format("  {:<11} {:>9} {:>8}\n", "choice", "bits/elem", "score s");
    for (const AutoquantGroup& g : r.groups) {
        out += fmt::format("  {:<48}", g.name);
        for (size_t c = 0; c < r.candidates.size(); ++c)
            out += g.available[c] ? fmt::format(" {:>11.4e}", g.score[c]) : fmt::format(" {:>11}", "n/a");
        const size_t ch = static_cast<size_t>(g.choice);
        out += fmt::format("  {:<11} {:>9.3f} {:>8.2f}\n", r.candidates[ch], search::bits_per_element(g.bytes[ch], g.elements),
                           g.seconds);
    }
    out += fmt::format("effective bits per element (linear weights, as inspect counts): {:.4f} <= budget {} "
                       "(min {:.4f}, max {:.4f}); {} of {} bytes\n",
                       r.achieved_bits, r.budget_bits, r.min_bits, r.max_bits, r.chosen_bytes, r.budget_bytes);
    out += fmt::format("total score {:.6e}; scoring {:.2f} s (reference pass {:.2f} s), solve {:.3f} s "
                       "(peak Pareto front {} states)\n",
                       r.total_score, r.score_seconds, r.reference_seconds, r.solve_seconds, r.solver_states);
    out += "recipe: " + r.recipe_path.string() + "\n";
    if (r.exported)
        out += fmt::format("checkpoint: {} (inspect: {:.4f} bits per element)\n", r.quantize.output.string(), r.inspect_bits);
    out += "reproduce: " + r.rerun_command + "\n";
    return out;
}

}  // namespace microscale::pipeline
