// `microscale autoquant`: per-group sensitivity scores on calibration data, the exact
// multiple-choice knapsack under an effective-bits budget, the plan written as a ModelOpt YAML
// recipe, then the checkpoint produced by the ordinary quantize path from that recipe (so
// `quantize --recipe` reproduces it byte for byte). docs/AUTOQUANT.md describes the cost model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/quantize_job.h"

namespace microscale::pipeline {

struct AutoquantOptions {
    std::filesystem::path model_dir;
    std::filesystem::path output_dir;  // empty: write the recipe only
    std::filesystem::path recipe_out;  // required
    double effective_bits = 0.0;       // budget: bits per element over the linear weights, as inspect counts
    std::string formats = "nvfp4_4o6,fp8,bf16";
    std::string method = "kl";         // kl | mse
    bool w4a4 = false;                 // NVFP4 candidates also quantize inputs (dynamic NVFP4)
    bool force = false;                // replace an existing output / recipe file
    unsigned threads = 0;
    CalibrationOptions calibration;    // .data is required: the scores need samples
    // Scores are independent of the budget: save them (--scores-out) and solve other budgets or
    // a subset of the formats from them (--scores-in) without the forward passes.
    std::filesystem::path scores_out, scores_in;
};

struct AutoquantGroup {
    std::string name;
    std::vector<std::string> modules;
    uint64_t elements = 0;
    std::vector<double> score;      // per candidate (0 for bf16; NaN where unavailable)
    std::vector<uint64_t> bytes;    // per candidate, as stored
    std::vector<bool> available;    // the format takes every member's shape
    int choice = -1;                // candidate index
    double seconds = 0.0;           // scoring time
};

struct AutoquantReport {
    std::vector<std::string> candidates;  // names, bf16 last when added
    std::string method;
    std::vector<AutoquantGroup> groups;
    uint64_t elements = 0, budget_bytes = 0, chosen_bytes = 0;
    double budget_bits = 0.0, achieved_bits = 0.0, min_bits = 0.0, max_bits = 0.0;
    double total_score = 0.0;
    int64_t score_tokens = 0;
    double reference_seconds = 0.0, score_seconds = 0.0, solve_seconds = 0.0, seconds = 0.0;
    uint64_t solver_states = 0;
    std::filesystem::path recipe_path;
    std::string rerun_command;  // the quantize command that reproduces the checkpoint
    std::vector<std::string> notes;
    bool exported = false;
    QuantizeReport quantize;    // when exported
    double inspect_bits = 0.0;  // inspect's linear BPE of the output (equals achieved_bits)
};

AutoquantReport run_autoquant(const AutoquantOptions& opts, const JobCallbacks& callbacks = {});

// Per-group table (scores, bits, choice) and the totals.
std::string summarize_autoquant(const AutoquantReport& r);

}  // namespace microscale::pipeline
