// MXFP8 and MXFP4 of bf16 weights by table lookup (the GPU kernels' fast paths). The tables are
// the same for every tensor: the block exponent is a function of the block's bf16 amax pattern, and since
// x * 2^-e is exact for a normal result, an element's code is a function of its pattern shifted
// by 128 * e (one octave per exponent step). Codes below the table's first pattern are 0 (the
// value is below E4M3's half-subnormal), and no element of a block exceeds its amax, so the
// table ends where E4M3 saturates (MXFP4: where E2M1 reaches its top index). MXFP4's sign bit is
// ModelOpt's `y > 0 ? 0 : 8`: set for negative and for zero elements (the tables only cover
// exponents where no positive bf16 underflows to zero). tests/unit/format/mx_tables_test.cpp
// checks the lookups against mx_block_exponent, mxfp8_code and mxfp4_nibble for every bf16 pattern
// and every exponent they cover.
#pragma once

#include <cstdint>

#include "format/codec/hd.h"
#include "format/lane_lookup.h"
#include "format/nvfp4_cuts.h"  // mul_hi_u32

namespace microscale::format {

inline constexpr int kMxfp8CodeLen = 4096;
inline constexpr int kMxfp4Half = 1024;  // entries of one sign's MXFP4 index table (~550 used)

struct MxTables {
    int8_t exponent[32768];  // mx_block_exponent(bf16(p) * RN(1/448)) for each magnitude pattern p
    uint32_t lo, hi;         // relative patterns tabulated: codes of bf16(r) for r in [lo, hi]
    uint32_t lo4, hi4;       // the same for MXFP4's E2M1 index
    uint8_t codes[kMxfp8CodeLen + 16];  // codes[0]: every r below lo (0); codes[1 + r - lo]
    int8_t exponent4[32768];            // mx_block_exponent(bf16(p) * RN(1/6))
    uint8_t nibbles4[2 * kMxfp4Half];   // [j]: E2M1 index of entry j; [kMxfp4Half + j]: | 8 (sign)
};

// Built once per process.
const MxTables& mx_tables();

// Whether the tables hold a block with exponent e (else compute the block): every lane stays in
// 16 bits, and every subnormal bf16 (whose pattern does not shift with the exponent) clamps to
// the floor, where x * 2^-e is below E4M3's half-subnormal.
MICROSCALE_HD inline bool mxfp8_table_covers(int e, uint32_t lo, uint32_t hi) {
    return static_cast<int>(lo) - 1 + 128 * e >= 0x80 && static_cast<int>(hi) + 128 * e <= 0x7FFF;
}

// The codes of four elements (two words of bf16 patterns, element 0 in the low half of pair0)
// of a block with exponent e, little-endian in a word: == mxfp8_code(x, mx_pow2(-e)) of each.
MICROSCALE_HD inline uint32_t mxfp8_table_codes4(uint32_t pair0, uint32_t pair1, int e, uint32_t lo, uint32_t hi,
                                                 const uint8_t* codes) {
    return lookup_signed_codes4(pair0, pair1, static_cast<uint32_t>(static_cast<int>(lo) - 1 + 128 * e),
                                hi + static_cast<uint32_t>(128 * e), codes);
}

// MXFP4: whether a block with exponent e is covered (lanes in range, subnormals at the floor, and
// no positive bf16 whose quotient underflows to zero, which would flip its sign bit).
MICROSCALE_HD inline bool mxfp4_table_covers(int e, uint32_t lo4, uint32_t hi4) {
    return static_cast<int>(lo4) - 1 + 128 * e >= 0x80 && static_cast<int>(hi4) + 128 * e <= 0x7FFF && e <= 16;
}

// The byte mxfp4_nibble gives two elements (a word of bf16 patterns) of a block with exponent e.
MICROSCALE_HD inline uint32_t mxfp4_table_byte(uint32_t pair, int e, uint32_t lo4, uint32_t hi4, const uint8_t* nibbles4) {
    const uint32_t mag = pair & 0x7FFF7FFFu;
    const uint32_t floor = static_cast<uint32_t>(static_cast<int>(lo4) - 1 + 128 * e);
    const uint32_t ceil = hi4 + static_cast<uint32_t>(128 * e);
    // Sign bit: negative, or zero (bit 15 of mag + 0x7FFF is set exactly when mag != 0).
    const uint32_t set = (pair | ~(mag + 0x7FFF7FFFu)) & 0x80008000u;
    const uint32_t i = min_u16x2(max_u16x2(mag, both_lanes(floor)), both_lanes(ceil)) + both_lanes(0u - floor) +
                       mul_hi_u32(set, static_cast<uint32_t>(kMxfp4Half) << 17);
    return static_cast<uint32_t>(nibbles4[i & 0xFFFFu]) | (static_cast<uint32_t>(nibbles4[i >> 16]) << 4);
}

}  // namespace microscale::format
