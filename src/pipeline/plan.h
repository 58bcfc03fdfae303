// The resolved quantization plan: recipe rules applied to the model's on-disk modules, giving per
// linear its format and weight-scale search, per attention its KV-cache format, and what (if
// anything) needs calibration data. Data, not code: `quantize --dry-run` prints it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "algo/gptq.h"
#include "format/nvfp4.h"
#include "microscale/format.h"
#include "model/layout.h"
#include "recipe/recipe.h"

namespace microscale::pipeline {

struct PlanOptions {
    bool skip_incompatible = false;  // leave layers whose shape a format cannot take in BF16
    bool weights_only = false;       // disable every input and KV quantizer (W4A16-style export)
};

struct LinearPlan {
    int linear = -1;                    // index into ModelLayout::linears
    std::optional<Format> format;       // nullopt: written unchanged
    format::Nvfp4Config nvfp4;          // NVFP4 family: search, four-over-six (shared amax set later)
    std::vector<float> fp8_multipliers; // FP8 weights under an mse sweep: per-tensor candidates
    std::string algorithm;              // "max", "mse 39x[0.25..4]", "fp8 sweep", "4/6 mse [1, 1.5]", "local_hessian fp8 sweep"
    std::string skipped;                // why an enabled weight quantizer was left unquantized
    bool input_calibrated = false;      // the input quantizer needs activation statistics
    std::optional<double> input_constant_amax;  // constant_amax pins input_scale without data
    bool local_hessian = false;         // the scale search's loss is dw^T H dw (needs block Hessians)
    bool gptq = false;                  // GPTQ after the scale search (the block codes stay fixed)
    algo::GptqOptions gptq_options;
};

struct KvPlan {
    int attention = -1;          // index into ModelLayout::attentions
    std::string algo;            // "FP8" or "NVFP4"
    bool constant_amax = false;  // use_constant_amax: no k_scale/v_scale tensors written
};

struct Plan {
    std::string recipe_name;
    std::vector<LinearPlan> linears;  // parallel to ModelLayout::linears
    std::vector<KvPlan> kv;
    std::optional<std::string> kv_cache_quant_algo;
    std::vector<std::string> needs_calibration;  // quantizer names whose statistics we lack
    std::vector<std::string> notes;              // announcements (generic fallback, skips, ...)
};

// Throws microscale::Error naming the module for unsupported combinations and, unless
// skip_incompatible, for layers whose in_features the format's block size does not divide.
Plan build_plan(const recipe::Recipe& recipe, const model::ModelLayout& layout, const PlanOptions& opts);

// The --dry-run table: module -> format, algorithm, effective bits, and totals.
std::string describe_plan(const Plan& plan, const model::ModelLayout& layout);

// Weight-only effective bits per element of the planned linears (spec §8 storage accounting,
// as the Nemotron 3 Ultra report counts BPE); include_lm_head selects the variant.
double planned_effective_bits(const Plan& plan, const model::ModelLayout& layout, bool include_lm_head);

}  // namespace microscale::pipeline
