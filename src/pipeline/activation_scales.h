// Activation statistics for a plan that quantizes activations: from a statistics file, or by
// running the sequential calibration on --calib data. Turns them into per-linear input amaxes
// (fused groups share the max, as ModelOpt's preprocess_linear_fusion does for NVFP4) and
// per-attention K/V amaxes, checking that every quantizer that needs one has one.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "calib/dataset.h"
#include "calib/stats.h"
#include "format/quantize.h"
#include "pipeline/layerwise_weights.h"
#include "pipeline/plan.h"

namespace microscale::pipeline {

struct CalibrationOptions {
    std::optional<calib::CalibOptions> data;   // --calib FILE --calib-size --calib-seq-len --seed
    std::filesystem::path stats_in;            // --calib-stats: reuse a saved file, skip the forward pass
    std::filesystem::path stats_out;           // --save-calib-stats
    uint64_t activation_budget_bytes = 4ull << 30;  // --calib-mem
    unsigned threads = 0;
    bool sequential_quantized = false;         // --sequential-quantized (weights fake-quantized layer by layer)
    bool gpu = false;                          // --device cuda: max calibration's forward on the GPU
    uint64_t gpu_mem_budget_bytes = 0;         // --gpu-mem-budget (0: free GPU memory minus 1 GiB)
};

struct ActivationScales {
    std::vector<std::optional<float>> input_amax;  // parallel to layout.linears (calibrated ones)
    std::vector<float> k_amax, v_amax;             // parallel to layout.attentions (calibrated KV)
    // linear index -> the final weights decided during calibration (GPTQ, local_hessian): the
    // export writes them as they are.
    std::map<int, format::QuantizedWeight> gptq;
    std::vector<GptqLayerReport> gptq_report;
    std::vector<std::string> notes;                // what was used, spills, warnings
};

ActivationScales resolve_activation_scales(const CalibrationOptions& opts, const std::filesystem::path& model_dir,
                                           const Plan& plan, const model::ModelLayout& layout,
                                           const std::function<void(const std::string&)>& log);

}  // namespace microscale::pipeline
