// The sequential calibration runner (llm-compressor's "sequential pipeline", ModelOpt's layerwise
// calibration): embeddings, then for each decoder layer load only that layer's weights, run every
// calibration sample through it while observers see the inputs, release it; then the final norm.
// Activations between layers live in memory up to a budget and in a temporary file beyond it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "calib/dataset.h"
#include "calib/stats.h"
#include "model/forward/model_forward.h"

namespace microscale::calib {

struct RunnerOptions {
    uint64_t activation_budget_bytes = 4ull << 30;  // --calib-mem
    int64_t batch_sequences = 8;                    // sequences per run_layer call
    // --sequential-quantized: replaces a loaded layer's weights by their quantized-dequantized
    // values before the samples run through it, so each layer sees the outputs of the already
    // quantized layers before it (what GPTQ needs). Empty: the default, ModelOpt's max
    // calibration on unquantized activations.
    std::function<void(model::DecoderLayerWeights&)> quantize_layer;
    // Also sees every layer's activations (e.g. GPTQ's Hessians), next to the amax observer. Its
    // transform_linear_input / transform_key_values (input quantizers) act in every pass, also
    // the rerun after after_layer; the amax observer sees the untransformed inputs.
    model::LayerObserver* extra_observer = nullptr;
    // Called after the samples ran through a layer (GPTQ, local_hessian). With rerun_after_layer
    // it may change the weights, and the samples then run through the changed layer again, so the
    // next layer sees the outputs of the quantized one (ModelOpt's layerwise GPTQ).
    std::function<void(model::DecoderLayerWeights&)> after_layer;
    bool rerun_after_layer = true;
    // --device cuda: max calibration on the GPU (cuda::calibrate_max_gpu, docs/GPU_FORWARD.md:
    // bf16 GEMMs, fp32 activations, the same statistics within its stated tolerance). Only without
    // the hooks above; with them the run stays on the CPU (RunnerReport::gpu says which ran).
    bool gpu = false;
    uint64_t gpu_mem_budget_bytes = 0;  // --gpu-mem-budget; 0: the GPU's free memory minus 1 GiB
};

struct RunnerReport {
    double seconds = 0.0;
    bool spilled = false;          // activations went to a temporary file
    uint64_t activation_bytes = 0;
    uint64_t peak_layer_bytes = 0; // largest layer's fp32 weights (device bytes on the GPU)
    bool gpu = false;              // the forward ran on the GPU
    bool gpu_streamed = false;     // some layers streamed through the GPU's two slots
};

// max calibration (ModelOpt `max`): per-linear input amax (linears sharing an input see the same
// tensor), post-RoPE key/value amax per attention module, and the final-norm output amax for
// lm_head. progress(layer, n_layers) after each layer.
CalibStats calibrate_max(model::ModelForward& model, const CalibSet& set, const RunnerOptions& opts,
                         RunnerReport* report = nullptr, const std::function<void(int, int)>& progress = {});

}  // namespace microscale::calib
