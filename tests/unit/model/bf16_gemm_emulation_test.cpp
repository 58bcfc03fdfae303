// set_emulate_bf16_gemm_inputs: linear() then equals, bit for bit, linear() on inputs already
// rounded to bf16, and is a no-op once switched off again.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "format/codec/bf16.h"
#include "model/forward/ops.h"

using namespace microscale;

TEST(Bf16GemmEmulation, RoundsTheInputsOnly) {
    core::ThreadPool pool(2);
    const int64_t rows = 5, in = 48, out = 40, ldx = 52;
    std::mt19937 rng(3);
    std::normal_distribution<float> nd;
    std::vector<float> x(static_cast<size_t>(rows * ldx)), w(static_cast<size_t>(out * in)), b(static_cast<size_t>(out));
    for (float& v : x) v = nd(rng);
    for (float& v : w) v = codec::round_to_bf16(nd(rng));
    for (float& v : b) v = nd(rng);
    std::vector<float> xr(static_cast<size_t>(rows * in));
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < in; ++c) xr[static_cast<size_t>(r * in + c)] = codec::round_to_bf16(x[static_cast<size_t>(r * ldx + c)]);
    std::vector<float> plain(static_cast<size_t>(rows * out)), emulated(plain.size()), prerounded(plain.size()), after(plain.size());
    model::linear(x.data(), rows, in, ldx, w.data(), out, b.data(), plain.data(), out, pool);
    model::set_emulate_bf16_gemm_inputs(true);
    model::linear(x.data(), rows, in, ldx, w.data(), out, b.data(), emulated.data(), out, pool);
    model::set_emulate_bf16_gemm_inputs(false);
    model::linear(xr.data(), rows, in, in, w.data(), out, b.data(), prerounded.data(), out, pool);
    model::linear(x.data(), rows, in, ldx, w.data(), out, b.data(), after.data(), out, pool);
    EXPECT_EQ(std::memcmp(emulated.data(), prerounded.data(), emulated.size() * 4), 0);
    EXPECT_EQ(std::memcmp(after.data(), plain.data(), plain.size() * 4), 0);
    EXPECT_NE(std::memcmp(emulated.data(), plain.data(), plain.size() * 4), 0);  // the rounding mattered
}
