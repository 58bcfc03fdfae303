// FP8 E4M3 per-tensor element rule shared by the scalar reference and the CUDA kernel
// (docs/FORMATS.md, spec nvfp4-modelopt.md §10.1).
#pragma once

#include "format/codec/bf16.h"
#include "format/codec/e4m3.h"
#include "format/codec/fp16.h"
#include "format/codec/hd.h"

namespace microscale::format {

// Saturate to +-448 before the cast. With a scale from max (or any multiplier >= 1) |w/s| never
// exceeds 448 by more than rounding, which e4m3 maps to 448 anyway, so the bytes equal
// ModelOpt's; a multiplier < 1 would make ModelOpt's export write NaN codes instead.
MICROSCALE_HD inline uint8_t fp8_code_saturated(float q) {
    return codec::e4m3_from_float(q > codec::kE4M3Max ? codec::kE4M3Max : (q < -codec::kE4M3Max ? -codec::kE4M3Max : q));
}

// PyTorch CUDA computes bf16[..] / fp32 0-dim as a bf16 op: the divisor is loaded as bf16 and
// the quotient rounded to bf16 before the e4m3 cast (verified, spec §10.1); fp16 likewise, and
// fp32 weights divide in fp32. divisor is the scale already rounded to the weight's dtype.
MICROSCALE_HD inline uint8_t fp8_code_bf16(float v, float divisor_bf16) {
    return fp8_code_saturated(codec::round_to_bf16(v / divisor_bf16));
}
MICROSCALE_HD inline uint8_t fp8_code_fp16(float v, float divisor_fp16) {
    return fp8_code_saturated(codec::round_to_fp16(v / divisor_fp16));
}
MICROSCALE_HD inline uint8_t fp8_code_fp32(float v, float scale) { return fp8_code_saturated(v / scale); }

}  // namespace microscale::format
