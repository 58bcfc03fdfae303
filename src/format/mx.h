// OCP MX weight formats with E8M0 scales per 32 elements (formats `mxfp4`, `mxfp8`), as
// ModelOpt's MXFP4QTensor / MXFP8QTensor export them (docs/FORMATS.md, spec §3.2).
#pragma once

#include <cstdint>
#include <span>

#include "format/mx_block.h"
#include "format/weight_view.h"

namespace microscale::format {

// Rows [r0, r1): MXFP4 packed (cols/2 bytes a row) + scales (cols/32 a row).
void quantize_mxfp4_rows_ref(const WeightView& w, int64_t r0, int64_t r1, uint8_t* packed, uint8_t* scales);
void quantize_mxfp4_rows_simd(const WeightView& w, int64_t r0, int64_t r1, uint8_t* packed, uint8_t* scales);
// Rows [r0, r1): MXFP8 E4M3 codes (cols bytes a row) + scales (cols/32 a row).
void quantize_mxfp8_rows_ref(const WeightView& w, int64_t r0, int64_t r1, uint8_t* codes, uint8_t* scales);
void quantize_mxfp8_rows_simd(const WeightView& w, int64_t r0, int64_t r1, uint8_t* codes, uint8_t* scales);

void dequantize_mxfp4_ref(std::span<const uint8_t> packed, std::span<const uint8_t> scales, int64_t rows,
                          int64_t cols, float* out);
void dequantize_mxfp8_ref(std::span<const uint8_t> codes, std::span<const uint8_t> scales, int64_t rows,
                          int64_t cols, float* out);

}  // namespace microscale::format
