// Behaviour of the NVFP4 / FP8 / MX reference against the rules of docs/FORMATS.md, computed
// here by hand from the spec's formulas (the golden tests compare against PyTorch).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "format/codec/e4m3.h"
#include "format/mx.h"
#include "format/quantize.h"
#include "microscale/error.h"
#include "support/test_weights.h"

using namespace microscale;
using namespace microscale::format;
using microscale::test::TestWeight;

namespace {
uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
TestWeight fp32_weight(int64_t rows, int64_t cols, std::initializer_list<float> values) {
    TestWeight w{"t", DType::F32, rows, cols, std::vector<uint8_t>(static_cast<size_t>(rows * cols) * 4, 0)};
    int64_t i = 0;
    for (float v : values) { w.set(i / cols, i % cols, v); ++i; }
    return w;
}
QuantizedWeight quant(const TestWeight& w, Format f, Nvfp4Config c = {}) {
    return quantize_weight(w.view(), WeightQuantSpec{f, c}, Backend::REF, nullptr);
}
}  // namespace

TEST(Nvfp4, ReciprocalConstantsAreTheGpuOnes) {
    EXPECT_EQ(bits(kRecip2688), 0x39C30C31u);
    EXPECT_EQ(bits(kRecip448), 0x3B124925u);
    EXPECT_EQ(bits(kRecip6), 0x3E2AAAABu);
}

TEST(Nvfp4, GlobalScaleIsAmaxTimesRoundedReciprocal) {
    TestWeight w = microscale::test::heavy_tailed(4, 32, 1, DType::F32);
    const auto q = quant(w, Format::NVFP4);
    EXPECT_EQ(bits(q.global_scale), bits(q.amax * kRecip2688));
    Nvfp4Config c46 = Nvfp4Config::four_over_six_preset();
    EXPECT_EQ(bits(quant(w, Format::NVFP4, c46).global_scale), bits(q.amax * kRecip1536));
}

TEST(Nvfp4, DynamicBlockCodesAndPacking) {
    // One block: max 6 -> with A = 6, wsf2 = 6/2688, code = e4m3(6 / (6*wsf2)) = 448.
    TestWeight w = fp32_weight(1, 16, {6, -6, 0.5f, -0.1f, 0, -0.0f, 1.25f, 3, 4, 5, 2, 1.75f, 0.75f, 0.25f, 2.5f, 3.5f});
    const auto q = quant(w, Format::NVFP4);
    EXPECT_EQ(q.block_scales[0], 0x7E);
    const float d = codec::e4m3_to_float(0x7E) * q.global_scale;
    // Element nibbles from y = w/d, d ~ 1 (ties to even code, sign from y < 0).
    uint8_t nib[16];
    for (int j = 0; j < 16; ++j) nib[j] = codec::e2m1_from_float(w.get(0, j) / d);
    for (int j = 0; j < 8; ++j) EXPECT_EQ(q.data[j], nib[2 * j] | (nib[2 * j + 1] << 4)) << j;
    EXPECT_EQ(q.data[0], 0xF7);         // 6 -> 0x7 low, -6 -> 0xF high
    EXPECT_EQ(q.data[1] & 0xF0, 0x80);  // -0.1 rounds to -0: 0x8
    EXPECT_EQ(q.data[2], 0x00);         // +0 and -0.0 both 0x0
}

TEST(Nvfp4, ZeroBlocksPerPath) {
    TestWeight w = fp32_weight(1, 32, {1.0f});  // block 0 has 1.0, block 1 is all zero
    EXPECT_EQ(quant(w, Format::NVFP4).block_scales[1], 0x38);  // dynamic: scale 1.0
    Nvfp4Config sweep;
    sweep.search = Nvfp4Search::FP8_SWEEP;
    EXPECT_EQ(quant(w, Format::NVFP4, sweep).block_scales[1], 0x01);  // smallest candidate
    Nvfp4Config smax;
    smax.search = Nvfp4Search::STATIC_MAX;
    // static: code = e4m3(clamp(1 * 448 / (A * RN(1/6)))) with A = 1 -> 448 * 6 -> clamp 448.
    EXPECT_EQ(quant(w, Format::NVFP4, smax).block_scales[1], 0x7E);
}

TEST(Nvfp4, AllZeroTensorDecodesToZeros) {
    TestWeight w = fp32_weight(2, 32, {0.0f, -0.0f});
    for (auto s : {Nvfp4Search::DYNAMIC_MAX, Nvfp4Search::STATIC_MAX, Nvfp4Search::MSE, Nvfp4Search::FP8_SWEEP}) {
        Nvfp4Config c;
        c.search = s;
        const auto q = quant(w, Format::NVFP4, c);
        EXPECT_EQ(q.global_scale, 1.0f);
        for (uint8_t b : q.block_scales) EXPECT_EQ(b, 0x38);
        for (uint8_t b : q.data) EXPECT_EQ(b, 0x00);
        for (float v : dequantize_weight(q)) EXPECT_EQ(v, 0.0f);
    }
    const auto f = quant(w, Format::FP8);
    EXPECT_EQ(f.global_scale, 1.0f);
}

TEST(Nvfp4, FourOverSixPicksM4WhenItIsBetter) {
    // Block with max 1.0 and many values at 0.75*max: under M=6 they fall between grid points
    // 4 and 6 (4.5 -> 4, error 0.25 units); under M=4 (scale amax/4) 0.75 -> 3 exactly.
    TestWeight w = fp32_weight(1, 16, {1.0f, 0.75f, 0.75f, 0.75f, 0.75f, 0.75f, 0.75f, 0.75f, 0.75f, 0.75f, 0.75f,
                                       0.75f, 0.75f, 0.75f, 0.75f, 0.75f});
    const auto q = quant(w, Format::NVFP4, Nvfp4Config::four_over_six_preset());
    const auto deq = dequantize_weight(q);
    EXPECT_NEAR(deq[1], 0.75f, 1e-6f);  // reconstructed exactly: M=4 was chosen
    Nvfp4Config m6 = Nvfp4Config::four_over_six_preset();
    m6.mse = MseSweep{1.0, 1.0, 0.5};  // only M=6
    EXPECT_NE(quant(w, Format::NVFP4, m6).block_scales[0], q.block_scales[0]);
}

TEST(Nvfp4, MseMultipliers) {
    const auto k = mse_multipliers({});
    ASSERT_EQ(k.size(), 39u);
    EXPECT_EQ(k.front(), 0.25f);
    EXPECT_EQ(k.back(), 4.0f);
    for (size_t i = 1; i < k.size(); ++i) EXPECT_GT(k[i], k[i - 1]);
    EXPECT_EQ(mse_multipliers({1.0, 1.5, 0.5}), (std::vector<float>{1.0f, 1.5f}));
    EXPECT_THROW(mse_multipliers({1.0, 0.5, 0.1}), Error);
}

TEST(Nvfp4, MseNeverWorseThanStaticMax) {
    TestWeight w = microscale::test::heavy_tailed(16, 256, 4, DType::BF16);
    Nvfp4Config smax, mse, sweep;
    smax.search = Nvfp4Search::STATIC_MAX;
    mse.search = Nvfp4Search::MSE;
    sweep.search = Nvfp4Search::FP8_SWEEP;
    auto err = [&](const Nvfp4Config& c) {
        const auto d = dequantize_weight(quant(w, Format::NVFP4, c));
        double e = 0;
        for (int64_t i = 0; i < w.rows * w.cols; ++i) e += std::pow(double(d[i]) - w.get(i / w.cols, i % w.cols), 2);
        return e;
    };
    const double e_max = err(smax), e_mse = err(mse), e_sweep = err(sweep);
    EXPECT_LT(e_mse, e_max);
    EXPECT_LT(e_sweep, e_max);
    EXPECT_LE(e_sweep, e_mse * 1.0001);  // the fp8 sweep searches a superset of scales
}

TEST(Nvfp4, ErrorsNameTheTensor) {
    TestWeight w = microscale::test::heavy_tailed(2, 24, 1, DType::BF16, "model.layers.0.mlp.down_proj.weight");
    try {
        quant(w, Format::NVFP4);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("down_proj.weight"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("multiple of 16"), std::string::npos) << e.what();
    }
    TestWeight n = microscale::test::heavy_tailed(2, 32, 1, DType::F32, "bad.weight");
    n.set(1, 5, NAN);
    try {
        quant(n, Format::FP8);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("bad.weight"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("[1, 5]"), std::string::npos) << e.what();
    }
    n.set(1, 5, INFINITY);
    EXPECT_THROW(quant(n, Format::NVFP4), Error);
}

TEST(Fp8, Bf16DivisorAndQuotientRounding) {
    // bf16 weights: code = e4m3(bf16(w / bf16(s))); fp32: e4m3(w / s).
    TestWeight w = microscale::test::heavy_tailed(8, 64, 2, DType::BF16);
    const auto q = quant(w, Format::FP8);
    const float s = q.global_scale;
    for (int64_t i = 0; i < 8 * 64; ++i) {
        const float v = w.get(i / 64, i % 64);
        ASSERT_EQ(q.data[static_cast<size_t>(i)], codec::e4m3_from_float(codec::round_to_bf16(v / codec::round_to_bf16(s))));
    }
    EXPECT_EQ(bits(s), bits(q.amax * kRecip448));
}

TEST(Mx, ExponentsAndZeroSign) {
    EXPECT_EQ(mx_block_exponent(0.0f), -127);
    EXPECT_EQ(mx_block_exponent(1.0f), 0);
    EXPECT_EQ(mx_block_exponent(1.0000001f), 1);
    EXPECT_EQ(mx_block_exponent(0.75f), 0);
    EXPECT_EQ(mx_block_exponent(1e-45f), -127);
    TestWeight w = fp32_weight(1, 32, {6.0f, 0.0f, -0.0f, 3.0f});
    const auto q = quant(w, Format::MXFP4);
    EXPECT_EQ(q.block_scales[0], 127);   // amax/6 = 1 -> e = 0
    EXPECT_EQ(q.data[0], 0x87);          // 6 -> 0x7, +0 -> 0x8
    EXPECT_EQ(q.data[1], 0x58);          // -0 -> 0x8, 3 -> 0x5
    const auto q8 = quant(w, Format::MXFP8);
    EXPECT_EQ(q8.block_scales[0], 127 - 6);  // 6/448 -> ceil(log2) = -6
    EXPECT_EQ(codec::e4m3_to_float(q8.data[0]), 384.0f);  // 6 * 2^6
}
