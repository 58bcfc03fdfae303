// Weights decided during the sequential calibration, one decoder layer at a time (spec §5.4,
// §5.5): the observer collects each planned linear's input Hessians (the full H for GPTQ, 16x16
// block Hessians for local_hessian; the members of a fused group share their input and so one
// accumulator), then finish_layer() quantizes the layer's planned linears (local_hessian block
// codes, GPTQ on the fixed grid, the export's own quantization for the rest) and can hand the
// runner the quantized-dequantized weights, so that the next layer sees quantized outputs
// (ModelOpt's layerwise GPTQ, get_qdq_activations_from_prev_layer).
// With W4A4 / W8A8 recipes the observer is also the linears' input quantizers (the scales from
// the max calibration that ran first, spec §5.5 Step 1): every GEMM of the layer reads
// input_quantizer(x), GPTQ's Hessian is of input_quantizer(x) (spec §5.5 Step 2), and
// local_hessian's block Hessians are of x itself, ModelOpt's hook reading the module's input
// before its input quantizer (spec §5.4).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "algo/gptq.h"
#include "algo/local_hessian.h"
#include "format/quantize.h"
#include "model/forward/model_forward.h"
#include "pipeline/plan.h"

namespace microscale::pipeline {

// A linear's input quantizer as the deployed model applies it (eval::fake_quant_nvfp4 /
// fake_quant_fp8): dynamic NVFP4 per 16-element block under the global scale `scale`, or static
// FP8 with scale `scale`; `scale` is the input_scale the export writes.
struct InputQuantizer {
    Format format = Format::BF16;  // BF16: none, the input passes unchanged
    float scale = 0.0f;
};

struct GptqLayerReport {
    std::string module;
    double objective_rtn = 0.0, objective_gptq = 0.0;  // sum (w-q)^T H (w-q) with the same grid
};

// The quantization spec the export uses for linear i: fused NVFP4 groups share the global amax,
// FP8 weights under an mse sweep get the searched amax.
format::WeightQuantSpec export_spec(const Plan& plan, const model::ModelLayout& layout, const io::Checkpoint& ckpt,
                                    size_t i, core::ThreadPool& pool);

// Quantize-dequantize a loaded layer's planned linears from the checkpoint's own tensors (so the
// dtype-dependent rules hold) with the export specs (--sequential-quantized without GPTQ).
void fake_quantize_layer(model::DecoderLayerWeights& w, const Plan& plan, const model::ModelLayout& layout,
                         const io::Checkpoint& ckpt, core::ThreadPool& pool);

// True when some planned linear needs its layer's inputs (gptq or local_hessian).
bool needs_layerwise_weights(const Plan& plan);

class LayerwiseWeights : public model::LayerObserver {
public:
    // gpu: GPTQ's column loop runs on the selected GPU (cuda::gptq); the Hessians are still
    // accumulated here, on the CPU, and copied over per linear.
    // inputs: per ModelLayout::linears index (empty: no input quantizer anywhere, weight-only).
    LayerwiseWeights(const Plan& plan, model::ModelForward& model, bool gpu = false,
                     std::vector<InputQuantizer> inputs = {});
    void linear_input(const model::LinearWeights& l, const float* x, int64_t rows, int64_t ld) override;
    // The linear's input quantizer applied to x (x itself when it has none). The result lives in
    // a buffer of this observer, valid until its next call; members of a fused group reuse one.
    const float* transform_linear_input(const model::LinearWeights& l, const float* x, int64_t rows, int64_t ld,
                                        std::vector<float>& scratch) override;

    // After all samples ran through w's layer: quantizes every planned linear of it. Those with
    // gptq or local_hessian go to `weights` (the export writes them as they are); GPTQ objectives
    // go to `report`. With replace_weights, w's fp32 weights become the dequantized results.
    void finish_layer(model::DecoderLayerWeights& w, bool replace_weights, std::map<int, format::QuantizedWeight>& weights,
                      std::vector<GptqLayerReport>& report);

    // The accumulators of linear's input in the current layer (null when it has none): for tests.
    const algo::HessianAccumulator* hessian_of(int linear) const;
    const algo::BlockHessianAccumulator* block_hessians_of(int linear) const;

private:
    struct Slot {  // one input buffer: the linear or its fused group
        std::unique_ptr<algo::HessianAccumulator> full;
        std::unique_ptr<algo::BlockHessianAccumulator> blocks;
        int64_t batches = 0;       // batches added so far
        const float* last = nullptr;
    };
    int key_of(int linear) const;
    bool quantizes_input(int linear) const;
    // input_quantizer(x) for the call_-th batch of `l` (cached for the rest of its fused group).
    const float* quantized_input(const model::LinearWeights& l, const float* x, int64_t rows, int64_t ld,
                                 int64_t call);

    const Plan& plan_;
    model::ModelForward& model_;
    bool gpu_;
    std::vector<InputQuantizer> inputs_;
    std::map<int, int64_t> calls_;    // linear -> transform_linear_input calls so far
    struct Cached {                   // the last quantized input
        int key = 0;
        int64_t call = -1, rows = 0, ld = 0;
        const float* x = nullptr;
        InputQuantizer q;
        std::vector<float> data;
    } cached_;
    std::map<int, Slot> slots_;       // key: group index, or -1 - linear
    std::map<int, int64_t> seen_;     // linear -> batches it was shown
};

}  // namespace microscale::pipeline
