// The FP8 per-tensor code table the GPU kernel uses (format/fp8_table.h) against the reference
// element rule (fp8_element.h): every finite bf16 / fp16 pattern, both signs, both
// lanes, for ordinary, saturating (searched amax below the tensor's) and extreme scales; and the
// table must be valid for ordinary tensors, so the fast path cannot silently turn itself off.
#include <gtest/gtest.h>

#include <memory>

#include "format/codec/bf16.h"
#include "format/codec/fp16.h"
#include "format/fp8.h"
#include "format/fp8_element.h"
#include "format/fp8_table.h"

using namespace microscale;
using namespace microscale::format;

namespace {

uint8_t reference(DType dt, uint32_t p, float divisor) {
    const uint16_t h = static_cast<uint16_t>(p);
    return dt == DType::BF16 ? fp8_code_bf16(codec::bf16_to_float(h), divisor)
                             : fp8_code_fp16(codec::fp16_to_float(h), divisor);
}

float to_dtype(DType dt, float f) { return dt == DType::BF16 ? codec::round_to_bf16(f) : codec::round_to_fp16(f); }

}  // namespace

TEST(Fp8Table, EveryPatternUpToTheAmaxMatchesTheReference) {
    struct Case {
        DType dt;
        float amax, mult;  // the scale's amax is amax * mult (a searched amax may be below the tensor's)
    };
    const Case cases[] = {{DType::BF16, 1.0f, 1.0f},   {DType::BF16, 0.0371f, 1.0f}, {DType::BF16, 7.5f, 0.8f},
                          {DType::BF16, 0.25f, 1.3f},  {DType::BF16, 3.0e38f, 1.0f}, {DType::BF16, 1e-30f, 1.0f},
                          {DType::F16, 1.0f, 1.0f},    {DType::F16, 0.0371f, 0.9f},  {DType::F16, 60000.0f, 1.0f},
                          {DType::F16, 3e-5f, 1.0f}};
    int valid = 0;
    for (const Case& c : cases) {
        const float amax = to_dtype(c.dt, c.amax);
        const float divisor = to_dtype(c.dt, fp8_weight_scale(amax * c.mult));
        auto t = std::make_unique<Fp8CodeTable>();
        fp8_table_build(c.dt, divisor, *t);
        if (!t->valid) continue;
        ++valid;
        const uint32_t top = c.dt == DType::BF16 ? 0x7F7Fu : 0x7BFFu;  // every finite pattern
        for (uint32_t p = 0; p <= top; ++p)
            for (uint32_t sign : {0u, 0x8000u}) {
                const uint32_t a = p | sign, b = (top - p) | (sign ^ 0x8000u);  // another pattern per lane
                const uint32_t got = fp8_table_codes4(a | (b << 16), b | (a << 16), *t, t->codes);
                const uint32_t want = reference(c.dt, a, divisor) | (reference(c.dt, b, divisor) << 8) |
                                      (reference(c.dt, b, divisor) << 16) | (reference(c.dt, a, divisor) << 24);
                ASSERT_EQ(got, want) << "dtype " << dtype_name(c.dt) << " amax " << c.amax << " mult " << c.mult
                                     << " patterns 0x" << std::hex << a << " 0x" << b;
            }
    }
    EXPECT_GE(valid, 4);
}

TEST(Fp8Table, OrdinaryBf16TensorsHaveAValidTable) {
    // (fp16's 1024 patterns per octave need ~19k entries over E4M3's range: fp16 weights are
    // computed, like fp32.)
    for (DType dt : {DType::BF16})
        for (float amax : {0.02f, 0.5f, 3.0f, 0.0371f}) {
            const float a = to_dtype(dt, amax);
            auto t = std::make_unique<Fp8CodeTable>();
            fp8_table_build(dt, to_dtype(dt, fp8_weight_scale(a)), *t);
            EXPECT_TRUE(t->valid) << dtype_name(dt) << " " << amax;
        }
    auto t = std::make_unique<Fp8CodeTable>();
    fp8_table_build(DType::F32, 0.01f, *t);
    EXPECT_FALSE(t->valid);  // fp32 weights are computed
}
