// Exhaustive codec tests against independent definitions written here in double precision:
// nearest representable value, ties to the even code, and each format's overflow rule.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "format/codec/bf16.h"
#include "format/codec/e2m1.h"
#include "format/codec/e4m3.h"
#include "format/codec/e8m0.h"
#include "format/codec/fp16.h"

using namespace microscale::codec;

namespace {

// Value of an e4m3fn code from the definition (bias 7, 3 mantissa bits, subnormals at exp 0).
double e4m3_value_by_definition(int code) {
    const int sign = code & 0x80 ? -1 : 1;
    const int e = (code >> 3) & 0xF, m = code & 7;
    if (e == 0) return sign * std::ldexp(m, -9);
    return sign * std::ldexp(1.0 + m / 8.0, e - 7);
}

// Nearest e4m3 code by exhaustive search; ties go to the even code; |x| > 464 (and NaN) -> NaN.
uint8_t e4m3_encode_by_search(float x) {
    if (std::isnan(x) || std::fabs(double(x)) > 464.0) return std::signbit(x) ? 0xFF : 0x7F;
    const double ax = std::fabs(double(x));
    int best = 0;
    double best_err = std::numeric_limits<double>::infinity();
    for (int c = 0; c <= 0x7E; ++c) {
        const double err = std::fabs(e4m3_value_by_definition(c) - ax);
        if (err < best_err || (err == best_err && (c & 1) == 0 && (best & 1))) {
            best = c;
            best_err = err;
        }
    }
    return static_cast<uint8_t>(best | (std::signbit(x) ? 0x80 : 0));
}

// E2M1 magnitude index: nearest of the 8 magnitudes, ties to the even index.
uint8_t e2m1_index_by_search(double mag) {
    if (mag >= 6.0) return 7;  // saturate (and avoid double cancellation on huge values)
    constexpr double kMag[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
    int best = 0;
    double best_err = std::numeric_limits<double>::infinity();
    for (int i = 0; i < 8; ++i) {
        const double err = std::fabs(kMag[i] - mag);
        if (err < best_err || (err == best_err && (i & 1) == 0)) {
            best = i;
            best_err = err;
        }
    }
    return static_cast<uint8_t>(best);
}

std::vector<float> all_bf16_values() {
    std::vector<float> v;
    for (uint32_t h = 0; h < 65536; ++h) v.push_back(bf16_to_float(static_cast<uint16_t>(h)));
    return v;
}

}  // namespace

TEST(CodecE4M3, AllCodesRoundTrip) {
    for (int c = 0; c < 256; ++c) {
        const float f = e4m3_to_float(static_cast<uint8_t>(c));
        if ((c & 0x7F) == 0x7F) {
            EXPECT_TRUE(std::isnan(f)) << c;
            EXPECT_EQ(e4m3_from_float(f) & 0x7F, 0x7F);
            continue;
        }
        EXPECT_EQ(double(f), e4m3_value_by_definition(c)) << "code " << c;
        EXPECT_EQ(e4m3_from_float(f), c) << "code " << c << " value " << f;
    }
}

TEST(CodecE4M3, EncodeMatchesExhaustiveSearchOnEveryBf16) {
    for (float f : all_bf16_values())
        ASSERT_EQ(e4m3_from_float(f), e4m3_encode_by_search(f)) << "x = " << f;
}

TEST(CodecE4M3, TiesAndOverflow) {
    EXPECT_EQ(e4m3_from_float(464.0f), 0x7E);           // tie between 448 and (missing) 480 -> 448
    EXPECT_EQ(e4m3_from_float(464.00003f), 0x7F);       // above the midpoint -> NaN, like torch
    EXPECT_EQ(e4m3_from_float(-500.0f), 0xFF);
    EXPECT_EQ(e4m3_from_float(std::ldexp(1.0f, -10)), 0x00);    // half of 2^-9 ties to even 0
    EXPECT_EQ(e4m3_from_float(std::ldexp(3.0f, -10)), 0x02);    // 1.5 * 2^-9 ties to even 2
    EXPECT_EQ(e4m3_from_float(-std::ldexp(1.0f, -11)), 0x80);   // negative underflow keeps sign
    EXPECT_EQ(e4m3_from_float(1.0625f), 0x38);                  // 1 + 1/16 ties to even 1.0
    EXPECT_EQ(e4m3_from_float(1.1875f), 0x3A);                  // 1 + 3/16 ties to even 1.25
}

TEST(CodecE4M3, RandomFloatsMatchSearch) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> exp_d(-14.0f, 9.5f);
    for (int i = 0; i < 200000; ++i) {
        const float x = std::exp2(exp_d(rng)) * ((rng() & 1) ? -1.0f : 1.0f);
        ASSERT_EQ(e4m3_from_float(x), e4m3_encode_by_search(x)) << "x = " << x;
    }
}

TEST(CodecE2M1, EveryBf16AtSeveralScalesMatchesTable) {
    const float scales[] = {1.0f, 0.5f, 0.0625f, 3.0f, 1.0f / 3.0f, 0.0078125f, 7.0f, 1e-3f, 448.0f};
    for (float s : scales) {
        for (float w : all_bf16_values()) {
            if (!std::isfinite(w)) continue;
            const float y = w / s;
            const uint8_t expect = static_cast<uint8_t>((y < 0 ? 8 : 0) | e2m1_index_by_search(std::fabs(double(y))));
            ASSERT_EQ(e2m1_from_float(y), expect) << "w = " << w << " scale " << s;
        }
    }
}

TEST(CodecE2M1, TiePointsAndNegativeZero) {
    const struct { float y; uint8_t nib; } cases[] = {
        {0.25f, 0x0}, {0.75f, 0x2}, {1.25f, 0x2}, {1.75f, 0x4}, {2.5f, 0x4}, {3.5f, 0x6}, {5.0f, 0x6},
        {6.0f, 0x7}, {100.0f, 0x7}, {-0.25f, 0x8}, {-0.1f, 0x8}, {-0.0f, 0x0}, {0.0f, 0x0},
        {-3.5f, 0xE}, {0.2500001f, 0x1}, {-5.0000005f, 0xF},
    };
    for (const auto& c : cases) EXPECT_EQ(e2m1_from_float(c.y), c.nib) << c.y;
}

TEST(CodecE2M1, MxVariantRoundsTiesDownAndSignsZero) {
    EXPECT_EQ(e2m1_from_float_mx(0.0f), 0x8);
    EXPECT_EQ(e2m1_from_float_mx(-0.0f), 0x8);
    EXPECT_EQ(e2m1_from_float_mx(0.1f), 0x0);
    EXPECT_EQ(e2m1_from_float_mx(0.75f), 0x1);
    EXPECT_EQ(e2m1_from_float_mx(3.5f), 0x5);
    EXPECT_EQ(e2m1_from_float_mx(5.0f), 0x6);
    EXPECT_EQ(e2m1_from_float_mx(-5.1f), 0xF);
}

TEST(CodecE2M1, DecodeTable) {
    const float expect[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, 0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
    for (int n = 0; n < 16; ++n)
        EXPECT_EQ(float_bits(e2m1_to_float(static_cast<uint8_t>(n))), float_bits(expect[n])) << n;  // +0 for 0x8
}

TEST(CodecE8M0, AllCodes) {
    for (int b = 0; b < 255; ++b)
        EXPECT_EQ(double(e8m0_to_float(static_cast<uint8_t>(b))), std::ldexp(1.0, b - 127)) << b;
    EXPECT_TRUE(std::isnan(e8m0_to_float(0xFF)));
    EXPECT_EQ(e8m0_from_exponent(-127), 0);
    EXPECT_EQ(e8m0_from_exponent(0), 127);
    EXPECT_EQ(e8m0_from_exponent(127), 254);
}

TEST(CodecBf16, AllValuesRoundTripAndRoundingMatchesNearest) {
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = bf16_to_float(static_cast<uint16_t>(h));
        if (std::isnan(f)) { EXPECT_TRUE(std::isnan(bf16_to_float(bf16_from_float(f)))); continue; }
        ASSERT_EQ(bf16_from_float(f), h);
    }
    std::mt19937 rng(2);
    for (int i = 0; i < 200000; ++i) {
        const float x = microscale::codec::bits_float(static_cast<uint32_t>(rng()));
        if (!std::isfinite(x)) continue;
        const uint16_t h = bf16_from_float(x);
        // Independent check: the two bf16 neighbours by truncation; pick the nearer, ties even.
        const uint16_t lo = static_cast<uint16_t>(float_bits(x) >> 16);
        const uint16_t hi = static_cast<uint16_t>(lo + 1);
        // Above the largest finite bf16 the upper neighbour is infinity, which IEEE rounding treats
        // as the value 2^128 (with |x| below 2^128 the sign bit is untouched by lo + 1).
        const double vhi = (hi & 0x7FFF) == 0x7F80 ? std::copysign(std::ldexp(1.0, 128), double(x))
                                                   : double(bf16_to_float(hi));
        const double dlo = std::fabs(double(bf16_to_float(lo)) - x), dhi = std::fabs(vhi - x);
        const uint16_t expect = dlo < dhi ? lo : dhi < dlo ? hi : ((lo & 1) ? hi : lo);
        ASSERT_EQ(h, expect) << x;
    }
}

TEST(CodecFp16, AllValuesRoundTripAndRandomRounding) {
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = fp16_to_float(static_cast<uint16_t>(h));
        if (std::isnan(f)) continue;
        ASSERT_EQ(fp16_from_float(f), h) << h;
    }
    // Independent: nearest of all finite halves found by binary search on value order.
    std::vector<std::pair<double, uint16_t>> pos;
    for (uint32_t h = 0; h < 0x7C00; ++h) pos.push_back({fp16_to_float(static_cast<uint16_t>(h)), static_cast<uint16_t>(h)});
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> e(-26.0f, 16.5f);
    for (int i = 0; i < 100000; ++i) {
        const float x = std::exp2(e(rng));
        uint16_t expect;
        if (double(x) >= 65520.0) {
            expect = 0x7C00;
        } else {
            auto it = std::lower_bound(pos.begin(), pos.end(), std::make_pair(double(x), uint16_t(0)));
            if (it == pos.end()) { expect = 0x7BFF; } else if (it->first == x || it == pos.begin()) { expect = it->second; } else {
                auto lo = it - 1;
                const double dl = x - lo->first, dh = it->first - x;
                expect = dl < dh ? lo->second : dh < dl ? it->second : ((lo->second & 1) ? it->second : lo->second);
            }
        }
        ASSERT_EQ(fp16_from_float(x), expect) << x;
        ASSERT_EQ(fp16_from_float(-x), static_cast<uint16_t>(expect | 0x8000)) << -x;
    }
}
