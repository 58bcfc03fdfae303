// The calibration forward pass on the GPU: the CPU ModelForward's math (architectures.md §1-3,
// src/model/forward/) with cuBLAS GEMMs and CUDA kernels for RMSNorm, qk-norm, RoPE, SwiGLU and
// causal GQA attention, and the amax observers reduced on the device. No CUDA headers here.
//
// Numerics: the residual stream and every activation are fp32; RMSNorm, RoPE, softmax and the
// attention products run in fp32. GEMMs read bf16 weights and bf16 copies of their fp32 inputs
// with fp32 accumulation and fp32 output (GemmPrecision::BF16, the default), or fp32 weights and
// inputs with fp32 math and no TF32 (GemmPrecision::FP32, which tests use to check the kernels
// against the CPU to ~1e-5). RoPE cos/sin tables come from the CPU code (model::rope_frequencies /
// rope_table), so every RoPE variant is computed once, on the host. Observers see the fp32
// activation, before the bf16 cast of the GEMM input, as the CPU LayerObserver does.
//
// Memory: the decoder layers live in device "slots". When every layer fits in the budget next to
// the activations they stay resident (uploaded once); otherwise the first layers that fit stay
// resident and the rest stream through two slots: layer i+1 is read from the checkpoint into a
// pinned host buffer on a host thread and copied on a separate stream while layer i computes.
// --gpu-mem-budget caps everything this class allocates on the device; a model larger than the
// budget still runs (streaming), as long as two layers plus the activations fit.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "calib/dataset.h"
#include "calib/stats.h"
#include "model/forward/model_forward.h"

namespace microscale::cuda {

enum class GemmPrecision : uint8_t { BF16, FP32 };

struct GpuForwardOptions {
    // Device bytes this run may use (weights, activations, workspaces). 0: the device's free
    // memory at construction minus 1 GiB.
    uint64_t mem_budget_bytes = 0;
    GemmPrecision precision = GemmPrecision::BF16;
    // Test hook: keep at most this many decoder layers resident (-1: as many as the budget
    // allows). 0 streams every layer through the two slots.
    int64_t max_resident_layers = -1;
};

struct GpuForwardReport {
    uint64_t budget_bytes = 0;
    uint64_t layer_bytes = 0;           // device bytes of the largest decoder layer
    int64_t resident_layers = 0;        // layers kept on the device (last call)
    bool streaming = false;             // some layers streamed through the two slots (last call)
    uint64_t weight_bytes_copied = 0;   // host -> device bytes of layer weights, all calls
    uint64_t peak_device_bytes = 0;     // most this class had allocated at once
    double seconds_waiting_for_weights = 0.0;  // compute stream idle while a layer was staged
    // Where the last call's embeddings came from: "device" (the cached bf16 table), "slot" (bf16
    // rows gathered on the host and widened in a streaming slot) or "host" (host.embed, fp32).
    const char* embeddings = "";
};

// What calib's AmaxObserver collects, indexed like the model's layout.
struct GpuObserverStats {
    std::vector<float> input_amax;      // [layout.linears.size()]: max |input|, 0 if never seen
    std::vector<float> k_amax, v_amax;  // [layers]: max |key| after k_norm and RoPE, max |value|
    float head_amax = 0.0f;             // max |final-norm output| (lm_head's input), calibrate() only
};

class GpuModelForward {
public:
    // Borrows `host` (its config, layout and checkpoint; it must outlive this object) and runs on
    // cuda::selected_device(). Throws when this build has no CUDA backend or no GPU.
    explicit GpuModelForward(model::ModelForward& host, const GpuForwardOptions& options = {});
    ~GpuModelForward();
    GpuModelForward(const GpuModelForward&) = delete;
    GpuModelForward& operator=(const GpuModelForward&) = delete;

    // Everything on the device, one batch: logits [tokens, V] fp32 in batch row order, as
    // model::ModelForward::forward. With `stats`, the observers run and fill it.
    std::vector<float> forward(const model::TokenSequences& seqs, GpuObserverStats* stats = nullptr);

    // Layer-major calibration pass (the CPU runner's order): every sequence's activations stay on
    // the device, and for each layer all batches of `batch_sequences` run through it while the
    // observers reduce. Returns the statistics including head_amax.
    GpuObserverStats calibrate(const model::TokenSequences& seqs, int64_t batch_sequences);

    const GpuForwardReport& report() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// calib::calibrate_max on the GPU: the same CalibStats keys (input amax per linear including
// lm_head, k/v amax per attention module) and provenance.
calib::CalibStats calibrate_max_gpu(model::ModelForward& model, const calib::CalibSet& set,
                                    int64_t batch_sequences, const GpuForwardOptions& options = {},
                                    GpuForwardReport* report = nullptr);

}  // namespace microscale::cuda
