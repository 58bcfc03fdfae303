// GPTQ on the GPU: the same algorithm and semantics as algo::gptq (spec §5.5, src/algo/gptq.h),
// with the Hessian inverse from cuSOLVER, the in-block column loop as a CUDA kernel (one warp per
// row, the shared rounding of algo/gptq_round.h) and each block's lazy update as one fp32 cuBLAS
// sgemm (no TF32). Host-side it does only O(in) bookkeeping: the Hessian diagonal comes back for
// the dead-column count, the act-order permutation and the damping mean (summed in double in the
// CPU's order, so damp is the CPU's float). The result matches the CPU's by objective within a
// tolerance (Cholesky and sgemm summation orders differ), not byte for byte. No CUDA headers.
#pragma once

#include <cstdint>
#include <span>

#include "algo/gptq.h"

namespace microscale::cuda {

// Host buffers in and out, as algo::gptq: copies w, hessian and the grid's codes to the selected
// GPU, runs, and copies the updated weights back. Objectives are computed on the GPU (fp32 sgemm
// E*H, e.*(E*H) summed in double, as the CPU's hessian_objective). Throws microscale::Error for
// bad shapes or options (the CPU's messages) and for any CUDA / cuBLAS / cuSOLVER failure. Safe to
// call from several host threads (each has its own stream, handles and buffers).
algo::GptqResult gptq(std::span<const float> w, int64_t out, int64_t in, std::span<const float> hessian,
                      const algo::FixedGrid& grid, const algo::GptqOptions& opts = {});

// Device-resident form for callers whose tensors already live on the GPU (benchmarks): d_w
// [out, in] original weights and d_hessian [in, in] are read, d_codes [out, in/16] (NVFP4 only;
// null for FP8) gives the grid with `scale` (wsf2 or the FP8 per-tensor scale), the updated
// weights go to d_result [out, in]. stream: a cudaStream_t (null: this thread's own stream); the
// call returns with the stream synchronised. Without `objectives` both objectives are left 0.
// The result's weight vector stays empty.
algo::GptqResult gptq_device(const float* d_w, float* d_result, int64_t out, int64_t in, const float* d_hessian,
                             const uint8_t* d_codes, algo::FixedGrid::Kind kind, float scale,
                             const algo::GptqOptions& opts = {}, bool objectives = true, void* stream = nullptr);

}  // namespace microscale::cuda
