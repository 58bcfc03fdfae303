// `microscale autoquant`: search per-group formats under an effective-bits budget, write the
// plan as a recipe and the checkpoint.
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "calib/dataset.h"
#include "cli/calib_options.h"
#include "cli/commands.h"
#include "microscale/error.h"
#include "pipeline/autoquant_job.h"
#include "search/candidates.h"

namespace microscale::cli {

void register_autoquant(CLI::App& app) {
    auto opts = std::make_shared<pipeline::AutoquantOptions>();
    auto calib_file = std::make_shared<std::string>();
    auto calib = std::make_shared<calib::CalibOptions>();
    calib->num_samples = 32;  // scoring runs the model once per group and format: smaller than quantize's default
    calib->seq_len = 256;
    auto json = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand(
        "autoquant", "Choose a format per layer group under an effective-bits budget (AutoQuantize) and export");
    std::string formats_help = "Candidate formats, comma-separated (bf16 is always added):";
    for (const auto& c : search::candidate_table())
        formats_help += fmt::format("\n  {:<12} {}", std::string(c.name), std::string(c.description));
    cmd->footer(
        "\nExamples:\n"
        "  microscale autoquant --model ./m --calib ./calib.txt --effective-bits 4.8 \\\n"
        "      --formats nvfp4_4o6,fp8,bf16 --output ./m-aq --recipe-out ./m-aq.yaml\n"
        "  microscale autoquant --model ./m --calib ./calib.ids --effective-bits 6 --formats nvfp4,fp8 --method mse \\\n"
        "      --recipe-out ./plan.yaml                       # the recipe only, no checkpoint\n"
        "  microscale quantize --model ./m --recipe ./m-aq.yaml --calib ./calib.txt --calib-size 32 \\\n"
        "      --calib-seq-len 256 --output ./again          # the same checkpoint, byte for byte\n"
        "  microscale autoquant ... --effective-bits 4.8 --scores-out s.json --recipe-out a.yaml   # score once,\n"
        "  microscale autoquant ... --effective-bits 6.0 --scores-in s.json --recipe-out b.yaml    # solve again\n"
        "Budget: bits per element over the linear weights (no embeddings, no lm_head), counted as stored\n"
        "(weight + block scales + per-tensor scale: NVFP4 4.5, FP8 8, BF16 16), exactly as `microscale\n"
        "inspect` reports it. Groups sharing a format: q/k/v, gate/up, all experts of a layer. Scores:\n"
        "kl = mean next-token KL(bf16 || only this group quantized) of the final logits; mse = squared\n"
        "output error of the group's linears on their calibration inputs. The solver is exact. The\n"
        "printed quantize command (also in the recipe header) reproduces the checkpoint.\n"
        "See docs/AUTOQUANT.md.");
    cmd->add_option("--model", opts->model_dir, "Input checkpoint directory (config.json + safetensors)")->required();
    cmd->add_option("--calib", *calib_file,
                    "Calibration data for the scores (and FP8 / W4A4 input scales): .txt, .jsonl or .ids")
        ->required();
    cmd->add_option("--effective-bits", opts->effective_bits,
                    "Budget in bits per element over the linear weights, as inspect counts them (e.g. 4.8)")
        ->required();
    cmd->add_option("--formats", opts->formats, formats_help)->capture_default_str();
    cmd->add_option("--method", opts->method, "Sensitivity score: kl (final-logit KL) or mse (layer output error)")
        ->check(CLI::IsMember({"kl", "mse"}))
        ->capture_default_str();
    cmd->add_option("--output", opts->output_dir, "Output checkpoint directory (omit: write the recipe only)");
    cmd->add_option("--recipe-out", opts->recipe_out, "Where the chosen plan is written (ModelOpt YAML recipe)")->required();
    cmd->add_flag("--w4a4", opts->w4a4,
                  "NVFP4 candidates also quantize their inputs (W4A4, dynamic NVFP4 with a calibrated input_scale); "
                  "default weight-only (W4A16)");
    cmd->add_flag("--force", opts->force, "Replace an existing output directory and recipe file");
    cmd->add_option("--threads", opts->threads, "Worker threads (0 = all cores)")->capture_default_str();
    cmd->add_flag("--json", *json, "Print the report as JSON on stdout");
    cmd->add_option("--scores-out", opts->scores_out, "Save the scores (JSON) for later budgets")->group("Scores");
    cmd->add_option("--scores-in", opts->scores_in,
                    "Reuse saved scores (same --method and --w4a4; any subset of the scored formats): no forward passes")
        ->group("Scores");
    auto calib_format = add_calib_sampling_options(cmd, *calib);
    cmd->final_callback([opts, calib_file, calib, calib_format, json] {
        calib->file = *calib_file;
        calib->format = calib_format_of(*calib_format);
        opts->calibration.data = *calib;
        pipeline::JobCallbacks cb;
        cb.on_log = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };
        cb.on_tensor = [](size_t i, size_t n, const pipeline::TensorReport& t) {
            fmt::print(stderr, "[{:>4}/{:>4}] {:<52} -> {}\n", i + 1, n, t.name,
                       t.format == "-" ? std::string("copy") : t.format + " " + t.algorithm);
        };
        const pipeline::AutoquantReport r = pipeline::run_autoquant(*opts, cb);
        if (!*json) {
            fmt::print("{}", pipeline::summarize_autoquant(r));
            return;
        }
        nlohmann::ordered_json j;
        j["candidates"] = r.candidates;
        j["method"] = r.method;
        j["budget_bits"] = r.budget_bits;
        j["achieved_bits"] = r.achieved_bits;
        j["min_bits"] = r.min_bits;
        j["max_bits"] = r.max_bits;
        j["elements"] = r.elements;
        j["bytes"] = r.chosen_bytes;
        j["total_score"] = r.total_score;
        j["score_tokens"] = r.score_tokens;
        j["seconds"] = {{"total", r.seconds}, {"scores", r.score_seconds}, {"reference", r.reference_seconds},
                        {"solve", r.solve_seconds}};
        for (const auto& g : r.groups) {
            nlohmann::ordered_json s;
            for (size_t c = 0; c < r.candidates.size(); ++c)
                s[r.candidates[c]] = g.available[c] ? nlohmann::ordered_json(g.score[c]) : nlohmann::ordered_json(nullptr);
            j["groups"].push_back({{"name", g.name}, {"modules", g.modules}, {"elements", g.elements},
                                   {"choice", r.candidates[static_cast<size_t>(g.choice)]}, {"scores", s},
                                   {"seconds", g.seconds}});
        }
        j["recipe"] = r.recipe_path.string();
        if (r.exported) j["output"] = r.quantize.output.string();
        j["reproduce"] = r.rerun_command;
        fmt::print("{}\n", j.dump(2));
    });
}

}  // namespace microscale::cli
