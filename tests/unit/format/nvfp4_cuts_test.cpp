// The division-free E2M1 decision the CUDA kernels use (format/nvfp4_cuts.h) against the
// reference's IEEE division: same nibble for every w near every decision bound, for divisors
// from every E4M3 code and a wide range of global scales (subnormal to huge), and the same block
// loss bits. This runs on the CPU, so CI checks the arithmetic the GPU relies on.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "format/codec/bf16.h"
#include "format/codec/e2m1.h"
#include "format/codec/e4m3.h"
#include "format/nvfp4_block.h"
#include "format/nvfp4_cuts.h"

using namespace microscale;
using namespace microscale::format;

namespace {

uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

// Divisors as the kernels build them: float(code) * wsf2 for every positive E4M3 code.
std::vector<float> divisors() {
    const float wsf2s[] = {1.0f,    0.0123f,   3.7e-5f, 1.0f / 2688.0f, 7.3e3f, 2.9e35f,
                           1e-38f,  1.4e-45f,  3e-43f,  5.9e-39f,       0.5f,   123.456f};
    std::vector<float> d;
    for (float s : wsf2s)
        for (int code = 0; code <= 0x7E; ++code) d.push_back(codec::e4m3_to_float(static_cast<uint8_t>(code)) * s);
    return d;
}

float step(float f, int n) {  // n ulps away from a non-negative f, staying non-negative
    int64_t b = static_cast<int64_t>(bits(f)) + n;
    if (b < 0) b = 0;
    if (b > 0x7F7FFFFF) b = 0x7F7FFFFF;
    const uint32_t u = static_cast<uint32_t>(b);
    float r;
    std::memcpy(&r, &u, 4);
    return r;
}

}  // namespace

TEST(Nvfp4Cuts, NibbleMatchesDivisionAtEveryBound) {
    const float bounds[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f, 0.5f, 1.0f, 3.0f, 4.0f};
    int64_t checked = 0;
    for (float d : divisors()) {
        const E2m1Cuts c = e2m1_cuts(d);
        std::vector<float> probes;
        for (float t : bounds) {
            const float centre = t * d;  // RN(t * d): w / d lands on or next to t
            for (int n = -4; n <= 4; ++n) probes.push_back(step(centre, n));
        }
        for (int n = 0; n <= 4; ++n) probes.push_back(step(static_cast<float>(0x1p-150 * d), n));  // the zero cut
        probes.push_back(0.0f);
        probes.push_back(codec::bits_float(1u));
        probes.push_back(3.0e38f);
        for (float a : probes)
            for (float w : {a, -a}) {
                ASSERT_EQ(e2m1_nibble_cut(w, c), codec::e2m1_from_float(w / d))
                    << "w=" << w << " (0x" << std::hex << bits(w) << ") d=" << d << " (0x" << bits(d) << ")";
                ++checked;
            }
    }
    EXPECT_GT(checked, 100000);
}

TEST(Nvfp4Cuts, NibbleMatchesDivisionOnRandomFloats) {
    std::mt19937 rng(42);
    const std::vector<float> ds = divisors();
    for (int i = 0; i < 2000000; ++i) {
        const float d = ds[rng() % ds.size()];
        // Random finite bit patterns, and values within a few binades of d (where codes change).
        float w;
        if (i & 1) {
            const uint32_t u = rng() & 0xFF7FFFFFu;  // exponent never 255
            std::memcpy(&w, &u, 4);
        } else {
            w = d * std::ldexp(static_cast<float>(rng() % 100000) / 100000.0f, static_cast<int>(rng() % 6) - 2);
            if (rng() & 1) w = -w;
        }
        const E2m1Cuts c = e2m1_cuts(d);
        ASSERT_EQ(e2m1_nibble_cut(w, c), codec::e2m1_from_float(w / d)) << "w=" << w << " d=" << d;
    }
}

TEST(Nvfp4Cuts, BlockLossBitsMatchTheReference) {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const std::vector<float> ds = divisors();
    for (int i = 0; i < 200000; ++i) {
        float w[16];
        const float scale = std::ldexp(1.0f, static_cast<int>(rng() % 40) - 20);
        for (float& x : w) x = nd(rng) * scale;
        if (i % 5 == 0) w[rng() % 16] = 0.0f;
        if (i % 7 == 0) w[rng() % 16] = -0.0f;
        const float d = (i & 1) ? ds[rng() % ds.size()] : codec::e4m3_to_float(static_cast<uint8_t>(1 + rng() % 126)) * scale / 64.0f;
        EXPECT_EQ(bits(nvfp4_block_loss_cut(w, e2m1_cuts(d))), bits(nvfp4_block_loss(w, d))) << "d=" << d;
    }
}

// The cut test must be able to fail: one threshold nudged by one ulp changes a nibble.
TEST(Nvfp4Cuts, OneUlpOffThresholdIsDetected) {
    const float d = codec::e4m3_to_float(0x38) * 0.0123f;
    E2m1Cuts c = e2m1_cuts(d);
    const float w = c.up[1];  // the smallest |w| that rounds to 1.0
    EXPECT_EQ(e2m1_nibble_cut(w, c), codec::e2m1_from_float(w / d));
    c.up[1] = step(c.up[1], 1);
    EXPECT_NE(e2m1_nibble_cut(w, c), codec::e2m1_from_float(w / d));
}

// The bf16 pair path of the GPU kernels, exhaustively: every bf16 pattern (both lanes) against
// the division, for every E4M3 code under several global scales.
TEST(Nvfp4Cuts, Bf16PairBytesMatchDivisionForEveryBf16Value) {
    const float wsf2s[] = {1.0f, 0.0123f, 3.7e-5f, 2.9e35f, 1e-38f, 1.4e-45f};
    std::vector<float> vals(65536);
    for (uint32_t h = 0; h < 65536; ++h) vals[h] = codec::bf16_to_float(static_cast<uint16_t>(h));
    for (float s : wsf2s)
        for (int code = 0; code <= 0x7E; ++code) {
            const float d = codec::e4m3_to_float(static_cast<uint8_t>(code)) * s;
            const E2m1Cuts c = e2m1_cuts(d);
            const E2m1PairCuts p = e2m1_pair_cuts(c);
            for (uint32_t h = 0; h < 65536; ++h) {
                if ((h & 0x7FFFu) > 0x7F80u) continue;  // NaN / Inf never reach the kernels
                const uint32_t partner = (h * 40503u + 7u) & 0xFFFFu;
                if ((partner & 0x7FFFu) > 0x7F80u) continue;
                const uint32_t pair = h | (partner << 16);
                const uint32_t want = static_cast<uint32_t>(codec::e2m1_from_float(vals[h] / d)) |
                                      (static_cast<uint32_t>(codec::e2m1_from_float(vals[partner] / d)) << 4);
                ASSERT_EQ(e2m1_byte_bf16_pair(pair, p), want)
                    << "bf16 0x" << std::hex << h << " / 0x" << partner << " d=" << d;
            }
        }
}

// The GPU's bf16 loss (pair indices) gives the reference's block loss bits.
TEST(Nvfp4Cuts, Bf16PairBlockLossMatchesTheReference) {
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const std::vector<float> ds = divisors();
    for (int i = 0; i < 200000; ++i) {
        uint32_t raw[8];
        float w[16];
        const float scale = std::ldexp(1.0f, static_cast<int>(rng() % 40) - 20);
        for (int j = 0; j < 16; ++j) {
            uint16_t h = codec::bf16_from_float(nd(rng) * scale);
            if (rng() % 23 == 0) h = static_cast<uint16_t>(rng() & 0x8001u);  // +-0 and subnormals
            w[j] = codec::bf16_to_float(h);
            if (j % 2 == 0) raw[j / 2] = h;
            else raw[j / 2] |= static_cast<uint32_t>(h) << 16;
        }
        const float d = (i & 1) ? ds[rng() % ds.size()] : codec::e4m3_to_float(static_cast<uint8_t>(1 + rng() % 126)) * scale / 64.0f;
        const E2m1Cuts c = e2m1_cuts(d);
        ASSERT_EQ(bits(nvfp4_block_loss_bf16(raw, e2m1_pair_cuts(c), c.value)), bits(nvfp4_block_loss(w, d))) << "d=" << d;
    }
}
