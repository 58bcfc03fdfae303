// The bf16 lookup tables the GPU's NVFP4 kernels use (format/nvfp4_lut.h) against the
// reference's IEEE division: every bf16 pattern under every code the builder calls regular, for
// global scales from subnormal to near overflow, in both lanes of a word; block losses bit-equal
// to nvfp4_block_loss; and a floor on how many codes take the tables, so that the fast path
// cannot silently fall back to the cut path everywhere.
#include <gtest/gtest.h>

#include <memory>
#include <random>

#include "format/codec/bf16.h"
#include "format/codec/e2m1.h"
#include "format/codec/e4m3.h"
#include "format/nvfp4_block.h"
#include "format/nvfp4_lut.h"

using namespace microscale;
using namespace microscale::format;

namespace {

struct Case {
    float amax;
    bool four_over_six;
};

const Case kCases[] = {{1.0f, false},   {0.0371f, false}, {7.5f, false},   {0.0371f, true}, {2.75f, true},
                       {3.0e38f, false}, {1e-30f, false}, {1e-38f, false}, {4e-41f, true},  {0.0f, false}};

std::unique_ptr<Nvfp4Lut> build(const Nvfp4Plan& plan) {
    auto lut = std::make_unique<Nvfp4Lut>();
    nvfp4_lut_build(plan, *lut);
    return lut;
}

std::unique_ptr<Nvfp4Lut> build(const Nvfp4Scales& s) { return build(Nvfp4Plan{Nvfp4Search::DYNAMIC_MAX, s, {}}); }

bool is_nan_bf16(uint32_t p) { return (p & 0x7FFFu) > 0x7F80u; }

// The nibble nvfp4_encode_block writes for w with divisor d.
uint32_t ref_nibble(uint32_t pattern, float d) {
    return codec::e2m1_from_float(codec::bf16_to_float(static_cast<uint16_t>(pattern)) / d);
}

}  // namespace

TEST(Nvfp4Lut, EveryBf16PatternMatchesTheDivisionForEveryRegularCode) {
    for (const Case& cs : kCases) {
        const Nvfp4Scales s = nvfp4_scales(cs.amax, cs.four_over_six);
        const auto lut = build(s);
        int64_t checked = 0;
        for (int code = 0; code < kLutCodes; ++code) {
            const Nvfp4LutCode& c = lut->codes[code];
            if (!nvfp4_lut_regular(c)) continue;
            const float d = nvfp4_block_divisor(static_cast<uint8_t>(code), s);
            for (uint32_t p = 0; p < 0x10000u; ++p) {
                if (is_nan_bf16(p)) continue;
                uint32_t q = (p * 40503u + 0x2F1Bu) & 0xFFFFu;  // a different pattern in lane 1
                if (is_nan_bf16(q)) q &= 0x3FFFu;
                const uint32_t byte = nvfp4_lut_byte_bf16_pair(p | (q << 16), c, lut->nibbles);
                const uint32_t want = ref_nibble(p, d) | (ref_nibble(q, d) << 4);
                if (byte != want) {
                    FAIL() << "amax " << cs.amax << " 4o6 " << cs.four_over_six << " code 0x" << std::hex << code
                           << " patterns 0x" << p << " 0x" << q << ": lut 0x" << byte << " want 0x" << want;
                }
                ++checked;
            }
        }
        EXPECT_GT(checked, 0) << "amax " << cs.amax;
    }
}

TEST(Nvfp4Lut, BlockLossBitsMatchTheReference) {
    std::mt19937 rng(7);
    for (const Case& cs : kCases) {
        const Nvfp4Scales s = nvfp4_scales(cs.amax, cs.four_over_six);
        const auto lut = build(s);
        for (int code = 0; code < kLutCodes; ++code) {
            const Nvfp4LutCode& c = lut->codes[code];
            if (!nvfp4_lut_regular(c)) continue;
            const float d = nvfp4_block_divisor(static_cast<uint8_t>(code), s);
            for (int trial = 0; trial < 40; ++trial) {
                uint32_t raw[8];
                float w[16];
                for (int j = 0; j < 16; ++j) {
                    // Around the code's own range (|w| / d in [0, 8)), with tiny values and exact zeros mixed in.
                    const uint32_t kind = rng() % 8;
                    float x = kind == 0 ? 0.0f
                              : kind == 1 ? d * 1e-6f
                                          : d * std::uniform_real_distribution<float>(0.0f, 8.0f)(rng);
                    if (rng() & 1) x = -x;
                    const uint16_t b = codec::bf16_from_float(x);
                    const uint16_t bb = is_nan_bf16(b) ? static_cast<uint16_t>(b & 0x8000u) : b;  // inf*... stays finite
                    w[j] = codec::bf16_to_float(bb);
                    if (j % 2 == 0) raw[j / 2] = bb;
                    else raw[j / 2] |= static_cast<uint32_t>(bb) << 16;
                }
                const float want = nvfp4_block_loss(w, d);
                const float got = nvfp4_lut_loss_bf16(raw, c, lut->values, lut->code_scales[code]);
                ASSERT_EQ(codec::float_bits(want), codec::float_bits(got))
                    << "amax " << cs.amax << " code 0x" << std::hex << code << " trial " << std::dec << trial;
            }
        }
    }
}

TEST(Nvfp4Lut, OrdinaryTensorsPutEveryCodeOnTheTables) {
    // Weights of ordinary size: every code 0x00..0x7E fits eight-odd rows.
    for (const Case& cs : {Case{1.0f, false}, Case{0.0371f, false}, Case{7.5f, false}, Case{0.0371f, true},
                           Case{2.75f, true}}) {
        const auto lut = build(nvfp4_scales(cs.amax, cs.four_over_six));
        EXPECT_EQ(lut->regular_codes, 127) << "amax " << cs.amax;
        EXPECT_LE(lut->rows, 10) << "amax " << cs.amax;
        EXPECT_FALSE(nvfp4_lut_regular(lut->codes[0x7F]));
    }
    // Divisors near the bottom of fp32 leave the power-of-two pattern: those codes keep the cut path.
    const auto tiny = build(nvfp4_scales(4e-41f, true));
    EXPECT_LT(tiny->regular_codes, 127);
}

TEST(Nvfp4Lut, AmaxCodeTablesGiveTheSearchesCodesForEveryBf16Amax) {
    Nvfp4Config mse;
    mse.search = Nvfp4Search::MSE;
    Nvfp4Config smax;
    smax.search = Nvfp4Search::STATIC_MAX;
    const Nvfp4Config configs[] = {Nvfp4Config{}, smax, Nvfp4Config::four_over_six_preset(), mse};
    const float amaxes[] = {1.0f, 0.0371f, 7.5f, 3.0e38f, 1e-30f, 1e-38f, 4e-41f, 2.0625f};
    int tables = 0;
    for (const Nvfp4Config& cfg : configs)
        for (float amax : amaxes) {
            const Nvfp4Plan plan = nvfp4_plan(cfg, amax);
            const auto lut = build(plan);
            const uint32_t top = bf16_round_up_bits(amax);  // no block amax above the tensor's
            for (int k = 0; k < kLutAmaxTables; ++k) {
                const Nvfp4LutAmaxTable& t = lut->amax_tables[k];
                if (t.len == 0) continue;
                ++tables;
                for (uint32_t p = 0; p <= top; ++p) {
                    const float a = codec::bf16_to_float(static_cast<uint16_t>(p));
                    const uint8_t want = cfg.search == Nvfp4Search::DYNAMIC_MAX  ? nvfp4_code_dynamic(a, plan.scales)
                                         : cfg.search == Nvfp4Search::STATIC_MAX ? nvfp4_code_static(a, plan.scales)
                                                                                 : nvfp4_code_static(a * plan.multipliers[k], plan.scales);
                    const int got = nvfp4_lut_amax_code(p, t, lut->amax_codes[k]);
                    ASSERT_EQ(got, want) << "search " << static_cast<int>(cfg.search) << " amax " << amax << " candidate "
                                         << k << " pattern 0x" << std::hex << p;
                }
            }
        }
    // Every ordinary plan has its tables: max one, four-over-six and mse two.
    for (const Nvfp4Config& cfg : configs) {
        const auto lut = build(nvfp4_plan(cfg, 0.0371f));
        EXPECT_GT(lut->amax_tables[0].len, 0u);
        if (cfg.search == Nvfp4Search::MSE) EXPECT_GT(lut->amax_tables[1].len, 0u);
    }
    EXPECT_GT(tables, 20);
}
