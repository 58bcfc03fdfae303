// FP8 E4M3 per-tensor weights (format `fp8`): docs/FORMATS.md, spec nvfp4-modelopt.md §3.1, §10.1.
#pragma once

#include <cstdint>
#include <span>

#include "format/weight_view.h"

namespace microscale::format {

// weight_scale = RN(amax * RN(1/448)); 1.0 for an all-zero tensor.
float fp8_weight_scale(float amax);

// Rows [r0, r1) into codes (cols bytes a row, pointing at row r0). bf16/fp16 weights follow the
// CUDA bf16/fp16 division rule of §10.1; fp32 weights divide in fp32.
void quantize_fp8_rows_ref(const WeightView& w, float scale, int64_t r0, int64_t r1, uint8_t* codes);
void quantize_fp8_rows_simd(const WeightView& w, float scale, int64_t r0, int64_t r1, uint8_t* codes);

void dequantize_fp8_ref(std::span<const uint8_t> codes, float scale, float* out);

// Per-tensor mse search for FP8 weights (ModelOpt's mse multiplier sweep on a per-tensor
// quantizer, spec §5.2-5.3): for each multiplier k in order, amax*k gives the scale; the loss is
// the squared error of the exported codes, summed in fp32 along each row and in double over
// rows in row order. Returns the amax of the first strictly best candidate.
float fp8_search_amax(const WeightView& w, float amax, std::span<const float> multipliers);

}  // namespace microscale::format
