// E8M0 (UE8M0) scale codec: byte b is 2^(b-127); 0xFF is NaN (OCP MX v1.0).
#pragma once

#include "format/codec/hd.h"

namespace microscale::codec {

inline constexpr uint8_t kE8M0NaN = 0xFF;

// Decoded scale, exact. b = 0 is 2^-127, an fp32 subnormal; b = 255 is NaN.
MICROSCALE_HD inline float e8m0_to_float(uint8_t b) {
    if (b == kE8M0NaN) return bits_float(0x7FC00000u);
    if (b == 0) return bits_float(0x00400000u);  // 2^-127
    return bits_float(static_cast<uint32_t>(b) << 23);
}

// Byte for an unbiased exponent already clamped to [-127, 127].
MICROSCALE_HD inline uint8_t e8m0_from_exponent(int e) { return static_cast<uint8_t>(e + 127); }

}  // namespace microscale::codec
