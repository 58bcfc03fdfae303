// local_hessian (spec §5.4): per-block Hessians sum x x^T / N, the pinned fp32 loss order, the
// block-code choice as the first strict argmin of dw^T H dw, identity Hessians reproducing the
// plain sweeps byte for byte, and a lower Hessian-weighted error than the plain sweep.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "algo/local_hessian.h"
#include "format/fp8.h"
#include "microscale/error.h"
#include "format/nvfp4.h"

using namespace microscale;

namespace {

struct Problem {
    int64_t out = 24, in = 64, n = 300;
    std::vector<float> w, x;  // [out, in] weights, [n, in] correlated inputs
};

Problem make_problem(uint32_t seed) {
    Problem p;
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    std::student_t_distribution<float> td(3.0f);
    p.w.resize(size_t(p.out * p.in));
    for (auto& v : p.w) v = 0.05f * td(rng);
    p.x.resize(size_t(p.n * p.in));
    for (int64_t r = 0; r < p.n; ++r) {
        const float z = nd(rng), z2 = nd(rng);
        for (int64_t c = 0; c < p.in; ++c)
            p.x[size_t(r * p.in + c)] = (c % 3 == 0 ? 2.0f * z : z2) + 0.3f * nd(rng) * float(1 + c % 5);
    }
    return p;
}

format::WeightView view(const Problem& p) { return {p.w.data(), DType::F32, p.out, p.in, "w"}; }

std::vector<float> identity_blocks(int64_t in) {
    std::vector<float> h(size_t(in / 16 * 256), 0.0f);
    for (int64_t b = 0; b < in / 16; ++b)
        for (int i = 0; i < 16; ++i) h[size_t(b * 256 + i * 17)] = 1.0f;
    return h;
}

format::Nvfp4Plan plan_of(const Problem& p, format::Nvfp4Search search) {
    format::Nvfp4Config c;
    c.search = search;
    float a = 0;
    for (float v : p.w) a = std::fmax(a, std::fabs(v));
    return format::nvfp4_plan(c, a);
}

// sum over blocks of dw^T H_n dw for given codes.
double weighted_error(const Problem& p, const std::vector<uint8_t>& codes, const format::Nvfp4Plan& plan,
                      const std::vector<float>& h) {
    double total = 0;
    for (int64_t r = 0; r < p.out; ++r)
        for (int64_t b = 0; b < p.in / 16; ++b) {
            const float d = format::nvfp4_block_divisor(codes[size_t(r * (p.in / 16) + b)], plan.scales);
            float dw[16];
            for (int j = 0; j < 16; ++j) {
                const float w = p.w[size_t(r * p.in + b * 16 + j)];
                dw[j] = w - codec::e2m1_to_float(codec::e2m1_from_float(w / d)) * d;
            }
            total += algo::block_hessian_loss(dw, h.data() + b * 256);
        }
    return total;
}

}  // namespace

TEST(LocalHessian, BlockHessiansAreSumXXtOverTokens) {
    const Problem p = make_problem(1);
    algo::BlockHessianAccumulator once(p.in), batched(p.in);
    once.add(p.x.data(), p.n, p.in);
    for (int64_t r = 0; r < p.n; r += 70) batched.add(p.x.data() + r * p.in, std::min<int64_t>(70, p.n - r), p.in);
    EXPECT_EQ(batched.samples(), p.n);
    const auto h1 = once.hessians(), h2 = batched.hessians();
    ASSERT_EQ(h1.size(), size_t(p.in / 16 * 256));
    for (int64_t b = 0; b < p.in / 16; ++b)
        for (int i = 0; i < 16; ++i)
            for (int j = 0; j < 16; ++j) {
                double ref = 0;
                for (int64_t t = 0; t < p.n; ++t)
                    ref += double(p.x[size_t(t * p.in + b * 16 + i)]) * p.x[size_t(t * p.in + b * 16 + j)];
                ref /= double(p.n);  // no factor 2: ModelOpt's LocalHessianHelper divides by the token count
                const size_t k = size_t(b * 256 + i * 16 + j);
                EXPECT_NEAR(h1[k], ref, 1e-4 * (std::fabs(ref) + 1));
                EXPECT_NEAR(h2[k], ref, 1e-4 * (std::fabs(ref) + 1));
                EXPECT_EQ(h1[k], h1[size_t(b * 256 + j * 16 + i)]) << "symmetric";
            }
    EXPECT_THROW(algo::BlockHessianAccumulator(40), Error);
}

// Pinned (ModelOpt's einsum order is unverified): t_a = sum_b H[a][b] dw_b, loss = sum_a dw_a t_a,
// both fp32 in ascending index order.
TEST(LocalHessian, LossOrderIsPinned) {
    std::mt19937 rng(3);
    std::normal_distribution<float> nd;
    float dw[16], h[256];
    for (float& v : dw) v = nd(rng) * 1e-3f;
    for (float& v : h) v = nd(rng);
    float expect = 0.0f;
    for (int a = 0; a < 16; ++a) {
        float t = 0.0f;
        for (int b = 0; b < 16; ++b) t = t + h[a * 16 + b] * dw[b];
        expect = expect + dw[a] * t;
    }
    EXPECT_EQ(algo::block_hessian_loss(dw, h), expect);
}

TEST(LocalHessian, IdentityHessiansReproduceThePlainSweeps) {
    const Problem p = make_problem(2);
    const auto eye = identity_blocks(p.in);
    for (format::Nvfp4Search s : {format::Nvfp4Search::FP8_SWEEP, format::Nvfp4Search::MSE}) {
        const format::Nvfp4Plan plan = plan_of(p, s);
        std::vector<uint8_t> packed(size_t(p.out * p.in / 2)), ref(size_t(p.out * p.in / 16));
        format::quantize_nvfp4_rows_ref(view(p), plan, 0, p.out, packed.data(), ref.data());
        EXPECT_EQ(algo::local_hessian_nvfp4_codes(view(p), plan, eye, nullptr), ref) << int(s);
    }
    const std::vector<float> ks = format::mse_multipliers({});
    float a = 0;
    for (float v : p.w) a = std::fmax(a, std::fabs(v));
    EXPECT_EQ(algo::local_hessian_fp8_amax(view(p), a, ks, eye), format::fp8_search_amax(view(p), a, ks));
}

TEST(LocalHessian, PicksTheFirstBestCodeAndBeatsThePlainSweepOnTheWeightedError) {
    const Problem p = make_problem(4);
    algo::BlockHessianAccumulator acc(p.in);
    acc.add(p.x.data(), p.n, p.in);
    const auto h = acc.hessians();
    const format::Nvfp4Plan plan = plan_of(p, format::Nvfp4Search::FP8_SWEEP);
    const auto codes = algo::local_hessian_nvfp4_codes(view(p), plan, h, nullptr);
    // Brute force on a few blocks: no code has a smaller loss, none before it an equal one.
    for (int64_t r = 0; r < p.out; r += 5)
        for (int64_t b = 0; b < p.in / 16; ++b) {
            const uint8_t got = codes[size_t(r * (p.in / 16) + b)];
            const float* w = p.w.data() + r * p.in + b * 16;
            auto loss = [&](int code) {
                const float d = format::nvfp4_block_divisor(uint8_t(code), plan.scales);
                float dw[16];
                for (int j = 0; j < 16; ++j) dw[j] = w[j] - codec::e2m1_to_float(codec::e2m1_from_float(w[j] / d)) * d;
                return algo::block_hessian_loss(dw, h.data() + b * 256);
            };
            for (int code = 1; code <= 0x7E; ++code) {
                if (code < got) EXPECT_GT(loss(code), loss(got)) << r << "," << b << " code " << code;
                else EXPECT_GE(loss(code), loss(got)) << r << "," << b << " code " << code;
            }
        }
    std::vector<uint8_t> packed(size_t(p.out * p.in / 2)), plain(size_t(p.out * p.in / 16));
    format::quantize_nvfp4_rows_ref(view(p), plan, 0, p.out, packed.data(), plain.data());
    EXPECT_NE(codes, plain) << "correlated inputs must move some block scales";
    EXPECT_LT(weighted_error(p, codes, plan, h), weighted_error(p, plain, plan, h));
}
