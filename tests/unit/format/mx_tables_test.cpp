// The MXFP8 tables the GPU kernel uses (format/mx_tables.h) against the reference: the block
// exponent of every bf16 amax pattern, and every element pattern (both signs, both lanes) under
// every block exponent the tables cover.
#include <gtest/gtest.h>

#include "format/codec/bf16.h"
#include "format/mx_block.h"
#include "format/mx_tables.h"
#include "format/nvfp4_block.h"

using namespace microscale;
using namespace microscale::format;

TEST(MxTables, BlockExponentOfEveryBf16Amax) {
    const MxTables& t = mx_tables();
    for (uint32_t p = 0; p <= 0x7F7F; ++p)
        ASSERT_EQ(t.exponent[p], mx_block_exponent(codec::bf16_to_float(static_cast<uint16_t>(p)) * kRecip448))
            << "pattern 0x" << std::hex << p;
}

TEST(MxTables, Mxfp8CodesOfEveryPatternUnderEveryCoveredExponent) {
    const MxTables& t = mx_tables();
    int covered = 0;
    for (int e = -127; e <= 127; ++e) {
        if (!mxfp8_table_covers(e, t.lo, t.hi)) continue;
        ++covered;
        const float inv = mx_pow2(-e);
        // Patterns a block with exponent e can hold: at most its amax, so below 448 * 2^e.
        for (uint32_t p = 0; p <= 0x7F7F; ++p) {
            const float x = codec::bf16_to_float(static_cast<uint16_t>(p));
            if (e != mx_block_exponent(x * kRecip448) && mx_block_exponent(x * kRecip448) > e) break;
            const uint32_t q = (p * 7919u) % (p + 1);  // another pattern at most p, for the other lanes
            const uint32_t a = p, b = q | 0x8000u;
            const uint32_t got = mxfp8_table_codes4(a | (b << 16), b | (a << 16), e, t.lo, t.hi, t.codes);
            const auto ref = [&](uint32_t pat) {
                return static_cast<uint32_t>(mxfp8_code(codec::bf16_to_float(static_cast<uint16_t>(pat)), inv));
            };
            const uint32_t want = ref(a) | (ref(b) << 8) | (ref(b) << 16) | (ref(a) << 24);
            ASSERT_EQ(got, want) << "e " << e << " patterns 0x" << std::hex << a << " 0x" << b;
        }
    }
    // Every exponent an ordinary weight has (|w| from 1e-30 to 1e30) is covered.
    EXPECT_TRUE(mxfp8_table_covers(mx_block_exponent(1e-30f * kRecip448), t.lo, t.hi));
    EXPECT_TRUE(mxfp8_table_covers(mx_block_exponent(1e30f * kRecip448), t.lo, t.hi));
    EXPECT_GT(covered, 200);
}

TEST(MxTables, Mxfp4NibblesOfEveryPatternUnderEveryCoveredExponent) {
    const MxTables& t = mx_tables();
    for (uint32_t p = 0; p <= 0x7F7F; ++p)
        ASSERT_EQ(t.exponent4[p], mx_block_exponent(codec::bf16_to_float(static_cast<uint16_t>(p)) * kRecip6))
            << "pattern 0x" << std::hex << p;
    int covered = 0;
    for (int e = -127; e <= 127; ++e) {
        if (!mxfp4_table_covers(e, t.lo4, t.hi4)) continue;
        ++covered;
        const float pow2 = mx_pow2(e);
        for (uint32_t p = 0; p <= 0x7F7F; ++p) {
            const float x = codec::bf16_to_float(static_cast<uint16_t>(p));
            if (mx_block_exponent(x * kRecip6) > e) break;  // no block with exponent e holds it
            for (uint32_t sign : {0u, 0x8000u}) {
                const uint32_t a = p | sign, b = ((p * 7919u) % (p + 1)) | (sign ^ 0x8000u);
                const auto ref = [&](uint32_t pat) {
                    return static_cast<uint32_t>(mxfp4_nibble(codec::bf16_to_float(static_cast<uint16_t>(pat)), pow2));
                };
                ASSERT_EQ(mxfp4_table_byte(a | (b << 16), e, t.lo4, t.hi4, t.nibbles4), ref(a) | (ref(b) << 4))
                    << "e " << e << " patterns 0x" << std::hex << a << " 0x" << b;
            }
        }
    }
    EXPECT_TRUE(mxfp4_table_covers(mx_block_exponent(1e-30f * kRecip6), t.lo4, t.hi4));
    EXPECT_TRUE(mxfp4_table_covers(mx_block_exponent(1e4f * kRecip6), t.lo4, t.hi4));
    EXPECT_GT(covered, 100);
}
