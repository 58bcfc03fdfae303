// quantize_weight_to writes the same bytes as quantize_weight into caller memory whatever that
// memory held before (the quantize job hands it uninitialised, recycled buffers), and hands every
// row to on_rows exactly once, after the row is complete.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>

#include "core/thread_pool.h"
#include "format/codec/bf16.h"
#include "format/quantize.h"

using namespace microscale;

TEST(QuantizeTo, SameBytesOverGarbageAndEveryRowOnce) {
    core::ThreadPool pool(3);
    const int64_t rows = 257, cols = 512;  // several row chunks of 64K elements
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    std::vector<uint16_t> wb(static_cast<size_t>(rows * cols));
    for (auto& v : wb) v = codec::bf16_from_float(nd(rng));
    const format::WeightView w{wb.data(), DType::BF16, rows, cols, "w"};
    for (Format f : {Format::W4A16_NVFP4, Format::NVFP4, Format::FP8, Format::MXFP4, Format::MXFP8})
        for (format::Backend b : {format::Backend::REF, format::Backend::SIMD}) {
            format::WeightQuantSpec spec;
            spec.format = f;
            const format::QuantizedWeight want = format::quantize_weight(w, spec, b, &pool);
            const format::QuantizedSizes n = format::quantized_sizes(f, rows, cols);
            ASSERT_EQ(n.data, want.data.size());
            ASSERT_EQ(n.block_scales, want.block_scales.size());
            std::vector<uint8_t> data(n.data, 0xA5), scales(n.block_scales, 0x5A);
            std::vector<std::atomic<int>> seen(static_cast<size_t>(rows));
            const format::QuantizedView v = format::quantize_weight_to(
                w, spec, b, &pool, data.data(), scales.data(), [&](const format::QuantizedView& q, int64_t r0, int64_t r1) {
                    EXPECT_EQ(q.data, data.data());
                    for (int64_t r = r0; r < r1; ++r) ++seen[static_cast<size_t>(r)];
                });
            const char* name = format_info(f).name.data();
            EXPECT_EQ(data, want.data) << name;
            EXPECT_EQ(scales, want.block_scales) << name;
            EXPECT_EQ(v.global_scale, want.global_scale) << name;
            EXPECT_EQ(v.amax, want.amax) << name;
            EXPECT_EQ(v.block_scales == nullptr, n.block_scales == 0) << name;
            for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(seen[static_cast<size_t>(r)].load(), 1) << name << " row " << r;
        }
}
