// E2M1 (FP4) element codec. Nibble = sign bit 3 | magnitude index 0..7 into
// [0, 0.5, 1, 1.5, 2, 3, 4, 6] (spec nvfp4-modelopt.md §1.1).
#pragma once

#include "format/codec/hd.h"

namespace microscale::codec {

inline constexpr float kE2M1Max = 6.0f;

// Magnitude index with ModelOpt's NVFP4 rule (§1.4): round half to even on the code, i.e. a
// value on a decision bound goes to the even index (0.25->0, 0.75->1, 1.25->1, 1.75->2, 2.5->2,
// 3.5->4, 5->4); anything above 5 saturates to 6. Each comparison adds one step up the grid.
// NaN compares false everywhere and maps to 0; callers reject non-finite weights beforehand.
MICROSCALE_HD inline uint8_t e2m1_magnitude_rne(float mag) {
    return static_cast<uint8_t>((mag > 0.25f) + (mag >= 0.75f) + (mag > 1.25f) + (mag >= 1.75f) +
                                (mag > 2.5f) + (mag >= 3.5f) + (mag > 5.0f));
}

// NVFP4 nibble of an already-scaled value y. The sign comes from y < 0, so a negative value
// that rounds to zero is stored as 0x8 (-0) while +0 and -0.0 itself give 0x0 (`_cast_fp4`).
MICROSCALE_HD inline uint8_t e2m1_from_float(float y) {
    return static_cast<uint8_t>((y < 0.0f ? 0x8 : 0x0) | e2m1_magnitude_rne(abs_f32(y)));
}

// MXFP4 nibble as ModelOpt's MXFP4QTensor.quantize computes it (spec §3.2): values on a bound
// round DOWN (index = number of bounds strictly below |y|), and the sign bit is set for every
// y that is not > 0, so both zeros are stored as 0x8.
MICROSCALE_HD inline uint8_t e2m1_from_float_mx(float y) {
    const float mag = abs_f32(y);
    const uint8_t idx = static_cast<uint8_t>((mag > 0.25f) + (mag > 0.75f) + (mag > 1.25f) +
                                             (mag > 1.75f) + (mag > 2.5f) + (mag > 3.5f) + (mag > 5.0f));
    return static_cast<uint8_t>((y > 0.0f ? 0x0 : 0x8) | idx);
}

// Decoded value of a nibble (low 4 bits used): ModelOpt's e2m1_values table, where the
// negative-zero nibble 0x8 decodes to +0.0 (so dequantized checkpoints hold no -0).
MICROSCALE_HD inline float e2m1_to_float(uint8_t nibble) {
    constexpr int8_t kHalfUnits[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    return static_cast<float>(kHalfUnits[nibble & 0xF]) * 0.5f;
}

}  // namespace microscale::codec
