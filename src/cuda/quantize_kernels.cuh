// Launchers of the weight-format kernels on device pointers (row-major weights, contiguous).
// Used by quantize_cuda.cu and by the GPU benchmarks; every launcher is asynchronous on `stream`.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "format/fp8_table.h"
#include "format/nvfp4.h"
#include "format/nvfp4_lut.h"
#include "microscale/dtype.h"

namespace microscale::cuda {

// max |w| as the magnitude bit pattern of the weight's dtype (bf16/fp16: 16 bits, f32: 32), reduced
// into *out_bits, which must be zeroed first. A result at or above the dtype's infinity pattern
// means a NaN/Inf is present.
void launch_amax_bits(const void* w, DType dtype, int64_t n, uint32_t* out_bits, cudaStream_t stream);
// The finite amax from amax_bits, or a negative value when the tensor holds NaN/Inf.
float amax_from_bits(uint32_t bits, DType dtype);

// NVFP4 (every search of the plan): packed [n_blocks * 8] bytes, scales [n_blocks] E4M3 codes,
// n_blocks = rows * cols / 16. multipliers: the plan's MSE candidates on the device (MSE only).
// lut: nvfp4_lut_build(plan) on the device, used for bf16 weights (null: the cut path only;
// same bytes either way).
void launch_nvfp4_quantize(const void* w, DType dtype, int64_t n_blocks, const format::Nvfp4Plan& plan,
                           const float* multipliers, const format::Nvfp4Lut* lut, uint8_t* packed, uint8_t* scales,
                           cudaStream_t stream);

// FP8 per-tensor: codes [n]. table: fp8_table_build(BF16, round_to_bf16(scale)) on the
// device when it is valid, for bf16 weights (null: every element computed; same bytes).
void launch_fp8_quantize(const void* w, DType dtype, int64_t n, float scale, const format::Fp8CodeTable* table,
                         uint8_t* codes, cudaStream_t stream);

// MXFP4 / MXFP8: n_blocks = rows * cols / 32.
void launch_mxfp4_quantize(const void* w, DType dtype, int64_t n_blocks, uint8_t* packed, uint8_t* scales,
                           cudaStream_t stream);
void launch_mxfp8_quantize(const void* w, DType dtype, int64_t n_blocks, uint8_t* codes, uint8_t* scales,
                           cudaStream_t stream);

// Decoders to fp32.
void launch_nvfp4_dequantize(const uint8_t* packed, const uint8_t* scales, float global_scale, int64_t n_blocks,
                             float* out, cudaStream_t stream);
void launch_fp8_dequantize(const uint8_t* codes, float scale, int64_t n, float* out, cudaStream_t stream);
void launch_mxfp4_dequantize(const uint8_t* packed, const uint8_t* scales, int64_t n_blocks, float* out,
                             cudaStream_t stream);
void launch_mxfp8_dequantize(const uint8_t* codes, const uint8_t* scales, int64_t n_blocks, float* out,
                             cudaStream_t stream);

}  // namespace microscale::cuda
