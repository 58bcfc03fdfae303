// BF16 codec: the top 16 bits of an fp32. Encode rounds to nearest even; NaN stays a quiet NaN.
#pragma once

#include "format/codec/hd.h"

namespace microscale::codec {

MICROSCALE_HD inline float bf16_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

MICROSCALE_HD inline uint16_t bf16_from_float(float f) {
    const uint32_t u = float_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
    const uint32_t lsb = (u >> 16) & 1u;
    return static_cast<uint16_t>((u + 0x7FFFu + lsb) >> 16);
}

// The fp32 value nearest to f that a bf16 can hold (RNE), as PyTorch's bf16 rounding does.
MICROSCALE_HD inline float round_to_bf16(float f) { return bf16_to_float(bf16_from_float(f)); }

}  // namespace microscale::codec
