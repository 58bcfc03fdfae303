// OCP MX per-block arithmetic shared by the scalar reference and the CUDA kernels
// (docs/FORMATS.md "MXFP4 / MXFP8", spec nvfp4-modelopt.md §3.2).
#pragma once

#include <cmath>

#include "format/codec/e2m1.h"
#include "format/codec/e4m3.h"
#include "format/codec/hd.h"

namespace microscale::format {

inline constexpr int kMxBlock = 32;

// E8M0 exponent of a block: ceil(log2(x)) with log2 computed in double and rounded once to fp32
// (what a correctly rounded log2f gives), -127 for x == 0, clamped to [-127, 127]. The GPU's
// double log2 is within 1 ulp of glibc's; the rounding to fp32 hides that except within ~1e-16
// of an fp32 midpoint, and the CUDA parity tests probe the mantissas where the result flips.
MICROSCALE_HD inline int mx_block_exponent(float x) {
    if (!(x > 0.0f)) return -127;
#if defined(__CUDA_ARCH__)
    const float e = ceilf(static_cast<float>(::log2(static_cast<double>(x))));
#else
    const float e = std::ceil(static_cast<float>(std::log2(static_cast<double>(x))));
#endif
    return e < -127.0f ? -127 : (e > 127.0f ? 127 : static_cast<int>(e));
}

// 2^e exactly for e in [-127, 127] (2^-127 is an fp32 subnormal).
MICROSCALE_HD inline float mx_pow2(int e) {
    return e == -127 ? codec::bits_float(0x00400000u) : codec::bits_float(static_cast<uint32_t>(e + 127) << 23);
}

// MXFP4 nibble of v in a block with exponent e: ModelOpt divides by the power of two.
MICROSCALE_HD inline uint8_t mxfp4_nibble(float v, float pow2) { return codec::e2m1_from_float_mx(v / pow2); }

// MXFP8 code of v: multiplied by 2^-e, saturated to +-448, cast.
MICROSCALE_HD inline uint8_t mxfp8_code(float v, float inv_pow2) {
    float q = v * inv_pow2;
    q = q < -codec::kE4M3Max ? -codec::kE4M3Max : (q > codec::kE4M3Max ? codec::kE4M3Max : q);
    return codec::e4m3_from_float(q);
}

}  // namespace microscale::format
