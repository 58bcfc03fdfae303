// AutoQuantize sensitivity scores, forward-only (no gradients), on the CPU forward pass.
//
//   kl:  for each group and quantized candidate, only that group's linears are replaced by their
//        quantized-dequantized weights (inputs fake-quantized too where the format quantizes
//        activations, as deployed); score = mean over calibration tokens of
//        KL(p_ref || p_quant) of the next-token distributions from the final logits (nats). This
//        is ModelOpt's kl_div score (spec §7), averaged instead of summed. The layers before the
//        group's are not rerun: their outputs are cached from the reference pass.
//   mse: a cheaper proxy from one reference pass: for each linear of the group,
//        ||Q(X) Ŵᵀ − X Wᵀ||²_F / tokens on the layer's own calibration inputs X (the squared
//        output error summed over output features, averaged over tokens), summed over the group.
//
// bf16 (left as stored) scores 0 by definition. Scores are fp64 sums in a fixed order, so they do
// not depend on the thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "microscale/format.h"
#include "model/forward/model_forward.h"
#include "search/groups.h"

namespace microscale::search {

enum class ScoreMethod : uint8_t { KL, MSE };

// What a quantized candidate makes of one linear, as the export would write and a serving
// engine run it.
struct LinearVariant {
    std::vector<float> weight;           // [out, in] dequantized
    Format input_format = Format::BF16;  // NVFP4 (dynamic) or FP8 (static) input fake quant; BF16 = none
    float input_scale = 0.0f;            // the exported input_scale
};

// variant(linear, candidate); called at most once per pair.
using VariantFn = std::function<LinearVariant(int linear, size_t candidate)>;

struct GroupScore {
    std::vector<double> score;  // per candidate; 0 where not scored (bf16 or unavailable)
    double seconds = 0.0;       // scoring time of this group (quantizing it included)
};

struct ScoreReport {
    std::vector<GroupScore> groups;
    double reference_seconds = 0.0;  // the reference pass
    int64_t tokens = 0;
};

// scored[g][c]: whether candidate c of group g is quantized and needs a score.
ScoreReport score_groups(model::ModelForward& model, const model::TokenSequences& samples,
                         const std::vector<SearchGroup>& groups, const std::vector<std::vector<bool>>& scored,
                         ScoreMethod method, const VariantFn& variant,
                         const std::function<void(const std::string&)>& log = {});

}  // namespace microscale::search
