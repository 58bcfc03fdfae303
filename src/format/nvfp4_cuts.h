// E2M1 rounding of w / d decided without the division: for a block divisor d the seven E2M1
// decision bounds of e2m1_magnitude_rne(RN(|w| / d)) become seven fp32 thresholds on |w|.
// The CUDA kernels use these (a division costs ~10 instructions on the GPU, a compare one); the
// result is the same nibble and the same squared error as nvfp4_encode_block / nvfp4_block_loss
// for every finite w and every d >= 0, which tests/unit/format/nvfp4_cuts_test.cpp checks.
//
// Why it is exact: RN is monotone, so RN(x) > t (t a bound, an "even" float) holds exactly when x
// is above the midpoint t+ between t and the next float (the tie rounds back to t), and RN(x) >= t
// exactly when x >= t-, the midpoint below t (the tie rounds up to t). x = |w| / d > t+ is
// |w| > t+ * d; t+ has 25 significant bits and d 24, so t+ * d is exact in double, and |w| > r
// for a real r is |w| >= nextup(RD(r)), |w| >= r is |w| >= RU(r), both fp32 thresholds.
#pragma once

#include "format/codec/e2m1.h"
#include "format/codec/hd.h"

namespace microscale::format {

struct E2m1Cuts {
    float up[7];    // |w| >= up[i]: RN(|w|/d) passes bound i of 0.25 .75 1.25 1.75 2.5 3.5 5
    float nonzero;  // |w| >= nonzero: RN(|w|/d) != 0, so a negative w keeps its sign bit
    float value[8]; // RN(E2M1 magnitude i * d): what the block decodes to
};

// Round a non-negative double to fp32 downwards / upwards (the host and the GPU both convert
// with round-to-nearest, then step one ulp where that went the wrong way).
MICROSCALE_HD inline float f32_round_down(double x) {
    float f = static_cast<float>(x);
    if (static_cast<double>(f) > x) f = codec::bits_float(codec::float_bits(f) - 1u);
    return f;
}
MICROSCALE_HD inline float f32_round_up(double x) {
    float f = static_cast<float>(x);
    if (static_cast<double>(f) < x) f = codec::bits_float(codec::float_bits(f) + 1u);
    return f;
}
MICROSCALE_HD inline float f32_next_up(float f) { return codec::bits_float(codec::float_bits(f) + 1u); }

MICROSCALE_HD inline E2m1Cuts e2m1_cuts(float d) {
    // Midpoints around the bounds: ulp(0.25) = 2^-25, ulp(1.25) = 2^-23, ulp(2.5) = 2^-22,
    // ulp(5) = 2^-21; below 0.75 / 1.75 / 3.5 the ulp is 2^-24 / 2^-23 / 2^-22.
    constexpr double kStrict[4] = {0.25 + 0x1p-26, 1.25 + 0x1p-24, 2.5 + 0x1p-23, 5.0 + 0x1p-22};
    constexpr double kLoose[3] = {0.75 - 0x1p-25, 1.75 - 0x1p-24, 3.5 - 0x1p-23};
    E2m1Cuts c;
    const double dd = static_cast<double>(d);
    if (!(d > 0.0f)) {
        // d == 0: w / 0 is +-inf (the top code) for w != 0 and NaN (code 0) for w == 0.
        const float tiny = codec::bits_float(1u);
        for (float& u : c.up) u = tiny;
        c.nonzero = tiny;
    } else {
        for (int i = 0; i < 4; ++i) c.up[2 * i] = f32_next_up(f32_round_down(kStrict[i] * dd));
        for (int i = 0; i < 3; ++i) c.up[2 * i + 1] = f32_round_up(kLoose[i] * dd);
        c.nonzero = f32_next_up(f32_round_down(0x1p-150 * dd));
    }
    for (int i = 0; i < 8; ++i) c.value[i] = codec::e2m1_to_float(static_cast<uint8_t>(i)) * d;
    return c;
}

// The number of thresholds passed, found by binary search (the thresholds are non-decreasing):
// three compares and four selects instead of seven compares and a sum.
MICROSCALE_HD inline uint32_t e2m1_magnitude_cut(float mag, const float (&up)[7]) {
    const bool b2 = mag >= up[3];
    const bool b1 = mag >= (b2 ? up[5] : up[1]);
    const bool b0 = mag >= (b2 ? (b1 ? up[6] : up[4]) : (b1 ? up[2] : up[0]));
    return (b2 ? 4u : 0u) | (b1 ? 2u : 0u) | (b0 ? 1u : 0u);
}
MICROSCALE_HD inline uint32_t e2m1_magnitude_cut(float mag, const E2m1Cuts& c) { return e2m1_magnitude_cut(mag, c.up); }

// == codec::e2m1_from_float(w / d).
MICROSCALE_HD inline uint8_t e2m1_nibble_cut(float w, const E2m1Cuts& c) {
    const float mag = codec::abs_f32(w);
    const bool neg = w < 0.0f && mag >= c.nonzero;
    return static_cast<uint8_t>((neg ? 0x8 : 0x0) | e2m1_magnitude_cut(mag, c));
}

// == nvfp4_block_loss(w, d): the same squared errors summed in the same order.
MICROSCALE_HD inline float nvfp4_block_loss_cut(const float* w, const E2m1Cuts& c) {
    float loss = 0.0f;
    for (int j = 0; j < 16; ++j) {
        const float mag = codec::abs_f32(w[j]);
        const float diff = mag - c.value[e2m1_magnitude_cut(mag, c)];
        loss += diff * diff;
    }
    return loss;
}

// ---- Two bf16 elements at once (the GPU's bf16 path; its ALU pipe is the bottleneck there).
// A bf16 magnitude m passes an fp32 threshold u exactly when m >= RU_bf16(u), and non-negative
// bf16 patterns order like their values, so each comparison is an integer one on 16-bit lanes:
// with m < 0x8000 and U <= 0x7F80, m + (0x8000 - U) stays inside its lane and has bit 15 set
// exactly when m >= U. Both lanes of a 32-bit word are compared by one add.

// Smallest bf16 pattern >= the non-negative fp32 u (u's upper half, plus one if bits were cut).
MICROSCALE_HD inline uint32_t bf16_round_up_bits(float u) {
    const uint32_t b = codec::float_bits(u);
    return (b >> 16) + ((b & 0xFFFFu) != 0 ? 1u : 0u);
}

// The per-divisor constants of the pair test: 0x8000 - U in both lanes of a word.
struct E2m1PairCuts {
    uint32_t up[7];
    uint32_t nonzero;
};

MICROSCALE_HD inline E2m1PairCuts e2m1_pair_cuts(const E2m1Cuts& c) {
    E2m1PairCuts p;
    auto lanes = [](float u) {
        const uint32_t k = 0x8000u - bf16_round_up_bits(u);
        return (k << 16) | k;
    };
    for (int i = 0; i < 7; ++i) p.up[i] = lanes(c.up[i]);
    p.nonzero = lanes(c.nonzero);
    return p;
}

MICROSCALE_HD inline uint32_t mul_hi_u32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __umulhi(a, b);
#else
    return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// E2M1 magnitude indices of two bf16 elements packed in a word (element 0 in the low half):
// == e2m1_magnitude_cut of each, in bits 0-2 and 16-18.
MICROSCALE_HD inline uint32_t e2m1_magnitudes_bf16_pair(uint32_t pair, const E2m1PairCuts& p) {
    const uint32_t mag = pair & 0x7FFF7FFFu;
    uint32_t acc = 0;
    // x >> 15 written as the high word of x * 2^17: on the GPU a multiply-add, which runs on the
    // FMA pipe and leaves the integer/logic pipe (the bottleneck) to the masks.
    for (int i = 0; i < 7; ++i) acc += mul_hi_u32((mag + p.up[i]) & 0x80008000u, 1u << 17);
    return acc;
}

// NVFP4 nibbles of the two elements: the byte nvfp4_encode_block stores for them,
// == e2m1_nibble_cut on each element.
MICROSCALE_HD inline uint32_t e2m1_byte_bf16_pair(uint32_t pair, const E2m1PairCuts& p) {
    const uint32_t mag = pair & 0x7FFF7FFFu;
    uint32_t acc = e2m1_magnitudes_bf16_pair(pair, p);      // counts in bits 0-2 and 16-18
    acc += mul_hi_u32(((mag + p.nonzero) & pair) & 0x80008000u, 1u << 20);  // signs: bits 3, 19
    return (acc + mul_hi_u32(acc, 1u << 20)) & 0xFFu;
}

// == nvfp4_block_loss(w, d) for a bf16 block given as 8 words: the same squared errors in the
// same order, with the indices from the pair test and value[] from e2m1_cuts(d).
MICROSCALE_HD inline float nvfp4_block_loss_bf16(const uint32_t (&raw)[8], const E2m1PairCuts& p,
                                                 const float* value) {
    float loss = 0.0f;
    for (int k = 0; k < 8; ++k) {
        const uint32_t idx = e2m1_magnitudes_bf16_pair(raw[k], p);
        const float m0 = codec::bits_float((raw[k] & 0x7FFFu) << 16);
        const float m1 = codec::bits_float(raw[k] & 0x7FFF0000u);
        const float d0 = m0 - value[idx & 7u];
        loss += d0 * d0;
        const float d1 = m1 - value[(idx >> 16) & 7u];
        loss += d1 * d1;
    }
    return loss;
}

}  // namespace microscale::format
