// Every row of the format table: the bytes quantize_weight produces equal the table's storage
// size, and the decoded values stay within the format's analytic error bound.
#include <gtest/gtest.h>

#include <cmath>

#include "format/quantize.h"
#include "microscale/format.h"
#include "support/test_weights.h"

using namespace microscale;
using namespace microscale::format;

TEST(FormatTable, StorageMatchesQuantizerOutputForEveryFormat) {
    const auto w = microscale::test::heavy_tailed(12, 256, 21, DType::BF16);
    int checked = 0;
    for (const FormatInfo& f : format_table()) {
        EXPECT_EQ(format_from_name(f.name), f.id);
        if (f.id == Format::BF16) {
            EXPECT_EQ(format_storage_bytes(f.id, 12, 256), 12u * 256u * 2u);
            continue;
        }
        const QuantizedWeight q = quantize_weight(w.view(), WeightQuantSpec{f.id, {}}, Backend::SIMD, nullptr);
        const uint64_t stored = q.data.size() + q.block_scales.size() + (f.per_tensor_scale ? 4 : 0);
        EXPECT_EQ(stored, format_storage_bytes(f.id, 12, 256)) << f.name;
        EXPECT_NEAR(8.0 * double(stored) / (12 * 256), f.effective_bits, 32.0 / (12 * 256) + 1e-12) << f.name;
        // Relative error bound per element: half a grid step of the element format, relative to the
        // block (or tensor) scale, plus the scale's own rounding; checked loosely via the max error
        // against the block max.
        const std::vector<float> d = dequantize_weight(q);
        const int block = f.block_elems > 0 ? f.block_elems : 256;
        const double step = f.elem_bits == 4 ? 1.0 / 3.0 : 1.0 / 8.0;  // E2M1: 2->3 is 1/3 of 3; E4M3: 1/8
        for (int64_t r = 0; r < 12; ++r)
            for (int64_t b = 0; b < 256 / block; ++b) {
                double amax = 0;
                for (int j = 0; j < block; ++j) amax = std::max(amax, std::fabs(double(w.get(r, b * block + j))));
                for (int j = 0; j < block; ++j) {
                    const double err = std::fabs(double(d[size_t(r * 256 + b * block + j)]) - w.get(r, b * block + j));
                    ASSERT_LE(err, amax * step + 1e-12) << f.name << " row " << r << " block " << b;
                }
            }
        ++checked;
    }
    EXPECT_EQ(checked, static_cast<int>(Format::COUNT) - 1);
}
