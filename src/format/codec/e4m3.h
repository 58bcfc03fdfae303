// FP8 E4M3 (e4m3fn: bias 7, no infinities, NaN = S.1111.111, max 448) codec.
#pragma once

#include "format/codec/hd.h"

namespace microscale::codec {

inline constexpr float kE4M3Max = 448.0f;
inline constexpr float kE4M3MinSubnormal = 0.001953125f;  // 2^-9, code 0x01
inline constexpr uint8_t kE4M3NaN = 0x7F;

// float -> e4m3fn with round-to-nearest-even, subnormals kept, and PyTorch's overflow rule for
// `.to(torch.float8_e4m3fn)`: magnitudes above 464 (the midpoint between 448 and the missing
// 480) and NaN/Inf become NaN (0x7F with the sign); 464 itself ties down to 448. ModelOpt clamps
// scales to [2^-9, 448] before the cast, so NaN never comes out of its finite inputs.
MICROSCALE_HD inline uint8_t e4m3_from_float(float f) {
    const uint32_t bits = float_bits(f);
    const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
    const uint32_t mag_bits = bits & 0x7FFFFFFFu;
    const float mag = bits_float(mag_bits);
    if (!(mag <= 464.0f)) return static_cast<uint8_t>(sign | kE4M3NaN);  // also NaN
    if (mag < 0.015625f) {
        // Subnormal range (below 2^-6): the code is the integer mag * 2^9 rounded half to even.
        // Scaling by 2^9 is exact; code 8 is the smallest normal, so the carry is correct.
        const float q = mag * 512.0f;
        uint32_t n = static_cast<uint32_t>(q);  // truncation, q < 8
        const float frac = q - static_cast<float>(n);
        if (frac > 0.5f || (frac == 0.5f && (n & 1u))) ++n;
        return static_cast<uint8_t>(sign | n);
    }
    // Normal: keep 3 of 23 mantissa bits, round half to even on the 20 dropped bits; a mantissa
    // carry moves into the exponent field, which is what the addition does.
    const uint32_t exp = (mag_bits >> 23) - 127u + 7u;  // 1..8 for [2^-6, 464]
    uint32_t code = (exp << 3) | ((mag_bits >> 20) & 0x7u);
    const uint32_t rest = mag_bits & 0xFFFFFu;
    if (rest > 0x80000u || (rest == 0x80000u && (code & 1u))) ++code;
    return static_cast<uint8_t>(sign | code);
}

MICROSCALE_HD inline bool e4m3_is_nan(uint8_t c) { return (c & 0x7F) == 0x7F; }

// e4m3fn -> float, exact. NaN codes give a quiet NaN.
MICROSCALE_HD inline float e4m3_to_float(uint8_t c) {
    const uint32_t sign = static_cast<uint32_t>(c & 0x80) << 24;
    const uint32_t exp = (c >> 3) & 0xF;
    const uint32_t man = c & 0x7;
    if (exp == 0xF && man == 0x7) return bits_float(sign | 0x7FC00000u);
    if (exp == 0) return bits_float(float_bits(static_cast<float>(man) * kE4M3MinSubnormal) | sign);
    return bits_float(sign | ((exp - 7 + 127) << 23) | (man << 20));
}

}  // namespace microscale::codec
