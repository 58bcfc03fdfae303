// The sampled reconstruction error of the quantize report: the same value as a plain double sum
// over dequantize_weight's full decode on the sampled rows, for every format and input dtype, and
// the same value for any thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/thread_pool.h"
#include "format/codec/bf16.h"
#include "format/codec/fp16.h"
#include "format/quantize.h"
#include "pipeline/reconstruction.h"

using namespace microscale;

namespace {

struct Case {
    DType dtype;
    int64_t rows, cols;
};

std::vector<uint8_t> random_weight(const Case& c, uint32_t seed) {
    std::mt19937 rng(seed);
    std::student_t_distribution<float> t(3.0f);
    const size_t n = static_cast<size_t>(c.rows * c.cols);
    std::vector<uint8_t> b(n * (c.dtype == DType::F32 ? 4 : 2));
    for (size_t i = 0; i < n; ++i) {
        const float v = 0.02f * t(rng);
        if (c.dtype == DType::F32) std::memcpy(b.data() + 4 * i, &v, 4);
        else {
            const uint16_t h = c.dtype == DType::BF16 ? codec::bf16_from_float(v) : codec::fp16_from_float(v);
            std::memcpy(b.data() + 2 * i, &h, 2);
        }
    }
    return b;
}

// The definition: sum over the sampled rows of (w - dequant)^2 / sum w^2, element by element.
double reference_rel_mse(const format::WeightView& w, const format::QuantizedWeight& q, int64_t max_rows) {
    const std::vector<float> deq = format::dequantize_weight(q);
    const int64_t n = std::min(w.rows, max_rows);
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t r = i * w.rows / n;
        for (int64_t c = 0; c < w.cols; ++c) {
            const double o = w.at(r, c), d = o - double(deq[static_cast<size_t>(r * w.cols + c)]);
            num += d * d;
            den += o * o;
        }
    }
    return num / den;
}

}  // namespace

TEST(Reconstruction, MatchesFullDecodeForEveryFormatAndDtype) {
    core::ThreadPool pool(3);
    for (Format f : {Format::W4A16_NVFP4, Format::NVFP4, Format::FP8, Format::MXFP4, Format::MXFP8})
        for (const Case c : {Case{DType::BF16, 300, 96}, Case{DType::F16, 17, 64}, Case{DType::F32, 40, 32}}) {
            const auto bytes = random_weight(c, 7);
            const format::WeightView w{bytes.data(), c.dtype, c.rows, c.cols, "w"};
            format::WeightQuantSpec spec;
            spec.format = f;
            const auto q = format::quantize_weight(w, spec, format::Backend::REF, nullptr);
            for (int64_t max_rows : {int64_t{1}, int64_t{13}, int64_t{64}, int64_t{1000}}) {
                const double want = reference_rel_mse(w, q, max_rows);
                const auto one = pipeline::sampled_relative_mse(w, q, max_rows, nullptr);
                const auto many = pipeline::sampled_relative_mse(w, q, max_rows, &pool);
                EXPECT_EQ(one.rows, std::min(c.rows, max_rows));
                EXPECT_GT(one.rel_mse, 0.0);
                // Summation order differs from the reference (lanes): equal to rounding.
                EXPECT_NEAR(one.rel_mse, want, 1e-12 * want) << format_info(f).name << " rows " << max_rows;
                EXPECT_EQ(one.rel_mse, many.rel_mse) << "thread count must not change the value";
            }
        }
}

// The quantize job measures while quantize_weight_to produces the rows: any split of the rows
// into ranges, in any order, gives the same value as the one-shot estimate.
TEST(Reconstruction, MeasuredAsRowsComeOutMatchesOneShot) {
    core::ThreadPool pool(2);
    for (Format f : {Format::W4A16_NVFP4, Format::FP8, Format::MXFP4})
        for (const Case c : {Case{DType::BF16, 300, 96}, Case{DType::F32, 5, 64}}) {
            const auto bytes = random_weight(c, 11);
            const format::WeightView w{bytes.data(), c.dtype, c.rows, c.cols, "w"};
            format::WeightQuantSpec spec;
            spec.format = f;
            const auto q = format::quantize_weight(w, spec, format::Backend::SIMD, nullptr);
            for (int64_t max_rows : {int64_t{1}, int64_t{7}, int64_t{32}, int64_t{1000}})
                for (int64_t step : {int64_t{1}, int64_t{3}, int64_t{64}, c.rows}) {
                    pipeline::SampledError e(w, max_rows);
                    const int64_t n_ranges = (c.rows + step - 1) / step;
                    for (int64_t k = n_ranges - 1; k >= 0; --k)  // backwards: order must not matter
                        e.measure(format::view_of(q), k * step, std::min(c.rows, (k + 1) * step));
                    const auto want = pipeline::sampled_relative_mse(w, q, max_rows, &pool);
                    EXPECT_EQ(e.result().rows, want.rows);
                    EXPECT_EQ(e.result().rel_mse, want.rel_mse) << format_info(f).name << " step " << step;
                }
        }
}

TEST(Reconstruction, ZeroTensorAndEmpty) {
    std::vector<uint16_t> z(32 * 16, 0);
    const format::WeightView w{z.data(), DType::BF16, 32, 16, "z"};
    format::WeightQuantSpec spec;
    spec.format = Format::W4A16_NVFP4;
    const auto q = format::quantize_weight(w, spec, format::Backend::REF, nullptr);
    EXPECT_EQ(pipeline::sampled_relative_mse(w, q, 8, nullptr).rel_mse, 0.0);
    EXPECT_EQ(pipeline::sampled_relative_mse(w, q, 0, nullptr).rows, 0);
}
