// GPTQ's per-element rounding onto a fixed grid, for host and device: the CPU column loops
// (gptq_detail.h GridRounder) and the CUDA in-block kernel (src/cuda/gptq_cuda.cu) both call
// these, so the two paths share one rounding rule (spec/style.md §9.2).
//   NVFP4: d = RN(E4M3(code) * wsf2), q = RN(E2M1[nibble(RN(x / d))] * d)
//   FP8:   q = RN(E4M3[e4m3(clamp(RN(x / s), +-448))] * s)   (format/fp8_element.h)
#pragma once

#include <cstdint>

#include "format/codec/e2m1.h"
#include "format/codec/e4m3.h"
#include "format/codec/hd.h"
#include "format/fp8_element.h"

namespace microscale::algo {

MICROSCALE_HD inline float gptq_nvfp4_divisor(uint8_t code, float wsf2) { return codec::e4m3_to_float(code) * wsf2; }

MICROSCALE_HD inline float gptq_round_nvfp4(float x, float divisor) {
    return codec::e2m1_to_float(codec::e2m1_from_float(x / divisor)) * divisor;
}

MICROSCALE_HD inline float gptq_round_fp8(float x, float scale) {
    return codec::e4m3_to_float(format::fp8_code_fp32(x, scale)) * scale;
}

}  // namespace microscale::algo
