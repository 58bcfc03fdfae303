// E2M1 rounding of bf16 weights by table lookup: the GPU's bf16 NVFP4 path, which the integer
// pipe limits when every element runs the seven threshold compares of nvfp4_cuts.h.
//
// For a block divisor d the E2M1 index of a bf16 magnitude m is the number of bf16 thresholds
// P0..P6 of e2m1_pair_cuts (the RU_bf16 of e2m1_cuts' up[]) that m reaches. Clamping m to
// [P0 - 1, P6] keeps that number, so a row of P6 - P0 + 2 entries indexed by m - (P0 - 1) holds
// it for every m. Divisors that differ by a power of two (E4M3 codes of one mantissa, bar
// subnormal and overflow corners) have the same row shifted, so a tensor needs about eight rows
// for its 126 codes. The builder checks every code against the row it shares: a code whose
// thresholds or decoded values do not match exactly is marked irregular and keeps the cut path.
// Same nibbles and same block losses as nvfp4_cuts.h (tests/unit/format/nvfp4_lut_test.cpp
// checks every bf16 pattern against every code).
#pragma once

#include <cstddef>

#include "format/codec/e2m1.h"
#include "format/codec/hd.h"
#include "format/lane_lookup.h"
#include "format/nvfp4.h"
#include "format/nvfp4_block.h"
#include "format/nvfp4_cuts.h"

namespace microscale::format {

// >= P6 - P0 + 2 for every normal divisor: bf16 patterns are piecewise linear in log2, and from
// 0.25 d to 5 d they span at most 512 + 32 * 1.6 = 563.2 steps (d's significand 1.6), plus rounding.
inline constexpr int kLutRowLen = 576;
inline constexpr int kLutRows = 16;
inline constexpr int kLutHalf = kLutRows * kLutRowLen;  // entries of one sign's nibble table
inline constexpr int kLutCodes = 128;

// Per E4M3 code; 16 bytes, one shared-memory load. hi == 0 marks a code the tables do not
// describe (every real P6 is >= 1): it keeps the cut path.
struct Nvfp4LutCode {
    uint32_t lo;       // P0 - 1 in both 16-bit lanes: the clamp floor (below P0 the index is 0)
    uint32_t hi;       // P6 in both lanes: the clamp ceiling (from P6 up the index is 7)
    uint32_t bias;     // (row * kLutRowLen - (P0 - 1)) in both lanes: clamped magnitude -> entry
    uint32_t nonzero;  // E2m1PairCuts::nonzero: a negative w keeps its sign bit
};
MICROSCALE_HD inline bool nvfp4_lut_regular(const Nvfp4LutCode& c) { return c.hi != 0; }

// Block codes by bf16 block amax: a block of bf16 weights has a bf16 amax, so each candidate code
// of a search (max's one, the first two MSE multipliers: four-over-six's 1.0 and 1.5) is a
// function of its 15-bit pattern p. The codes are monotone in p: from `lo` up to the tensor amax a
// table holds them, below it they are one value (checked when built), p = 0 has its own.
inline constexpr int kLutAmaxTables = 2;
inline constexpr int kLutAmaxLen = 4096;  // >= the ~2300 patterns of E4M3's 17.8 octaves
struct Nvfp4LutAmaxTable {
    uint32_t lo;     // first pattern with a table entry
    uint32_t len;    // entries; 0: no table for this candidate (compute the code)
    uint32_t below;  // the code of every pattern in [1, lo)
    uint32_t zero;   // the code of p = 0
};

// Everything a kernel copies to shared memory: the amax-code tables, per-code entries, the nibble
// table (index j: the E2M1 index for a non-negative w, j + kLutHalf: with the sign bit), then
// decoded values.
struct Nvfp4Lut {
    Nvfp4LutAmaxTable amax_tables[kLutAmaxTables];
    Nvfp4LutCode codes[kLutCodes];
    float code_scales[kLutCodes];  // decoded value of entry j for a code = values[j] * its scale (a power of two)
    uint8_t amax_codes[kLutAmaxTables][kLutAmaxLen];
    uint8_t nibbles[2 * kLutHalf];
    float values[kLutHalf];
    int rows;  // rows in use (the tables are sized for kLutRows)
    int regular_codes;
};
static_assert(offsetof(Nvfp4Lut, nibbles) % 16 == 0 && offsetof(Nvfp4Lut, values) % 16 == 0 &&
              offsetof(Nvfp4Lut, rows) % 16 == 0);

// Build the tables for a tensor's plan: every code 0x00..0x7E (0x7F, E4M3 NaN, is irregular) and
// the plan's amax-code tables.
void nvfp4_lut_build(const Nvfp4Plan& plan, Nvfp4Lut& out);

// The code a candidate's table gives for a bf16 block amax pattern, or -1 where it has none.
MICROSCALE_HD inline int nvfp4_lut_amax_code(uint32_t pattern, const Nvfp4LutAmaxTable& t, const uint8_t* codes) {
    if (t.len == 0) return -1;
    if (pattern == 0) return static_cast<int>(t.zero);
    if (pattern < t.lo) return static_cast<int>(t.below);
    return pattern - t.lo < t.len ? codes[pattern - t.lo] : -1;
}

// Table entries of the two magnitudes in a word (lane 0 = element 0). No borrow crosses the
// lanes: both clamped lanes are >= P0 - 1, and bias adds row * kLutRowLen - (P0 - 1) to each.
MICROSCALE_HD inline uint32_t lut_entries_pair(uint32_t mag, const Nvfp4LutCode& c) {
    return min_u16x2(max_u16x2(mag, c.lo), c.hi) + c.bias;
}

// == e2m1_byte_bf16_pair(pair, cuts of this code): the two nibbles nvfp4_encode_block stores.
MICROSCALE_HD inline uint32_t nvfp4_lut_byte_bf16_pair(uint32_t pair, const Nvfp4LutCode& c, const uint8_t* nibbles) {
    const uint32_t mag = pair & 0x7FFF7FFFu;
    const uint32_t neg = ((mag + c.nonzero) & pair) & 0x80008000u;  // bit 15 / 31: the sign is kept
    // Negative elements read the second half: the high word of neg * (kLutHalf << 17) is
    // kLutHalf in each lane whose bit is set.
    const uint32_t e = lut_entries_pair(mag, c) + mul_hi_u32(neg, static_cast<uint32_t>(kLutHalf) << 17);
    return static_cast<uint32_t>(nibbles[e & 0xFFFFu]) | (static_cast<uint32_t>(nibbles[e >> 16]) << 4);
}

// == nvfp4_block_loss(w, d) for a bf16 block given as 8 words (same squared errors, same order);
// scale: the code's code_scales entry.
MICROSCALE_HD inline float nvfp4_lut_loss_bf16(const uint32_t (&raw)[8], const Nvfp4LutCode& c, const float* values,
                                               float scale) {
    float loss = 0.0f;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int k = 0; k < 8; ++k) {
        const uint32_t mag = raw[k] & 0x7FFF7FFFu;
        const uint32_t e = lut_entries_pair(mag, c);
        const float d0 = codec::bits_float(mag << 16) - values[e & 0xFFFFu] * scale;
        loss += d0 * d0;
        const float d1 = codec::bits_float(mag & 0xFFFF0000u) - values[e >> 16] * scale;
        loss += d1 * d1;
    }
    return loss;
}

}  // namespace microscale::format
