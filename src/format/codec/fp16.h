// IEEE binary16 codec: round to nearest even, subnormals kept, overflow to infinity.
#pragma once

#include "format/codec/hd.h"

namespace microscale::codec {

MICROSCALE_HD inline float fp16_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu;
    const uint32_t man = h & 0x3FFu;
    if (exp == 0x1F) return bits_float(sign | 0x7F800000u | (man << 13));  // Inf / NaN
    if (exp == 0) {
        // Subnormal (or zero): man * 2^-24, exact in fp32.
        const float v = static_cast<float>(man) * 5.9604644775390625e-08f;
        return bits_float(float_bits(v) | sign);
    }
    return bits_float(sign | ((exp - 15 + 127) << 23) | (man << 13));
}

MICROSCALE_HD inline uint16_t fp16_from_float(float f) {
    const uint32_t u = float_bits(f);
    const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
    const uint32_t mag = u & 0x7FFFFFFFu;
    if (mag > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u);  // NaN
    if (mag >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65520 rounds to Inf
    if (mag < 0x38800000u) {
        // Below 2^-14: subnormal half. The code is mag * 2^24 rounded half to even (exact scale).
        const float q = bits_float(mag) * 16777216.0f;
        uint32_t n = static_cast<uint32_t>(q);
        const float frac = q - static_cast<float>(n);
        if (frac > 0.5f || (frac == 0.5f && (n & 1u))) ++n;
        return static_cast<uint16_t>(sign | n);
    }
    uint32_t code = (((mag >> 23) - 127u + 15u) << 10) | ((mag >> 13) & 0x3FFu);
    const uint32_t rest = mag & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (code & 1u))) ++code;
    return static_cast<uint16_t>(sign | code);
}

MICROSCALE_HD inline float round_to_fp16(float f) { return fp16_to_float(fp16_from_float(f)); }

}  // namespace microscale::codec
