// AutoQuantize candidate formats and the recipe they become. A candidate is a pair of ModelOpt
// quantizer configs (weight, optional input) plus the calibration algorithm it needs; the plan
// autoquant chooses is written as an ordinary ModelOpt YAML recipe with one exact-name rule per
// quantizer, so `microscale quantize --recipe` re-runs it and the export path is the usual one.
//
// One recipe carries one algorithm (`quantize.algorithm`), so the candidates of one search must
// agree on it: nvfp4 (dynamic max) cannot be searched together with nvfp4_4o6 (mse [1.0, 1.5]).
// fp8 and bf16 go with any of them (FP8 weights then follow the recipe's algorithm, as in
// ModelOpt: an mse recipe searches the FP8 per-tensor amax too).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "microscale/format.h"
#include "model/layout.h"

namespace microscale::search {

struct CandidateInfo {
    std::string_view name;         // CLI name: "nvfp4_4o6"
    std::string_view description;  // one line for --help and the docs
    std::string_view weight_cfg;   // YAML flow mapping of the weight quantizer; "" = unquantized
    bool fp8_inputs = false;       // FP8 W8A8: the input quantizer is FP8 per tensor (calibrated)
    bool nvfp4_family = false;     // the input quantizer is NVFP4 dynamic under --w4a4
    std::string_view algorithm;    // YAML flow value this candidate needs; "" = any
};

// The table, in the order --help lists it.
const std::vector<CandidateInfo>& candidate_table();
// "nvfp4, nvfp4_4o6, ..." for messages.
std::string candidate_names();

struct CandidateSet {
    std::vector<const CandidateInfo*> candidates;  // as given, bf16 added when missing
    std::string algorithm;                         // the recipe's algorithm (YAML flow value)
    bool w4a4 = false;                             // NVFP4 candidates also quantize their inputs
};

// "nvfp4_4o6,fp8,bf16" -> the set. bf16 (leave as stored) is always a choice, as ModelOpt adds
// NONE. Throws microscale::Error for unknown or repeated names and for candidates whose
// algorithms differ.
CandidateSet parse_candidates(std::string_view list, bool w4a4);

// The quantized format a candidate gives a linear (W4A16_NVFP4 vs NVFP4 by w4a4); nullopt: bf16.
std::optional<Format> candidate_format(const CandidateInfo& c, bool w4a4);

// One rule block of the emitted recipe: these linears (module names) take `candidate`.
struct RecipeEntry {
    std::string comment;  // one line, e.g. "model.layers.0.self_attn qkv: score 1.2e-3"
    std::vector<std::string> modules;
    const CandidateInfo* candidate = nullptr;
};

// The recipe YAML: header comment lines (each written with "# "), metadata, the set's
// algorithm, deny-all, then weight (and input) rules with exact quantizer names. Module names
// are escaped for fnmatch, so a rule matches that module only.
std::string emit_recipe_yaml(const CandidateSet& set, const std::vector<RecipeEntry>& entries,
                             const std::vector<std::string>& header, const std::string& description);

// A name as an fnmatch pattern matching only itself: '*', '?' and '[' become classes.
std::string escape_glob(std::string_view name);

}  // namespace microscale::search
