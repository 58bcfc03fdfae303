// GPTQ with a fixed grid (NVFP4 block scales, FP8 per-tensor scale): the Hessian accumulator's
// running mean, the objective lowered against round-to-nearest with the same grid, dead inputs,
// the identity fallback, the blocked path against the reference loop, act_order.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "algo/gptq.h"
#include "algo/gptq_detail.h"
#include "core/thread_pool.h"
#include "format/codec/e4m3.h"
#include "format/nvfp4_block.h"

using namespace microscale;

namespace {

struct Problem {
    int64_t out = 48, in = 128, n = 600;
    std::vector<float> w, x;  // [out, in], [n, in]
};

// Correlated inputs (a random mixing of a few latent factors plus noise) make GPTQ matter.
Problem make_problem(uint32_t seed) {
    Problem p;
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    std::student_t_distribution<float> td(3.0f);
    p.w.resize(static_cast<size_t>(p.out * p.in));
    for (auto& v : p.w) v = 0.02f * td(rng);
    const int k = 8;
    std::vector<float> mix(static_cast<size_t>(k * p.in));
    for (auto& v : mix) v = nd(rng);
    p.x.resize(static_cast<size_t>(p.n * p.in));
    for (int64_t r = 0; r < p.n; ++r) {
        float z[8];
        for (float& v : z) v = nd(rng);
        for (int64_t c = 0; c < p.in; ++c) {
            float s = 0.3f * nd(rng);
            for (int j = 0; j < k; ++j) s += z[j] * mix[static_cast<size_t>(j * p.in + c)];
            p.x[static_cast<size_t>(r * p.in + c)] = s;
        }
    }
    return p;
}

// Static-max block codes (what ModelOpt's gptq fixes before the column loop).
std::vector<uint8_t> static_max_codes(const Problem& p, float& wsf2) {
    float a = 0;
    for (float v : p.w) a = std::fmax(a, std::fabs(v));
    const format::Nvfp4Scales s = format::nvfp4_scales(a, false);
    wsf2 = s.wsf2;
    std::vector<uint8_t> codes(static_cast<size_t>(p.out * p.in / 16));
    for (int64_t r = 0; r < p.out; ++r)
        for (int64_t b = 0; b < p.in / 16; ++b) {
            float m = 0;
            for (int j = 0; j < 16; ++j) m = std::fmax(m, std::fabs(p.w[static_cast<size_t>(r * p.in + b * 16 + j)]));
            codes[static_cast<size_t>(r * (p.in / 16) + b)] = format::nvfp4_code_static(m, s);
        }
    return codes;
}

}  // namespace

TEST(GptqHessian, RunningMeanEqualsTwoOverNXtX) {
    const Problem p = make_problem(1);
    algo::HessianAccumulator once(p.in), batched(p.in);
    once.add(p.x.data(), p.n, p.in);
    for (int64_t r = 0; r < p.n; r += 100) batched.add(p.x.data() + r * p.in, std::min<int64_t>(100, p.n - r), p.in);
    EXPECT_EQ(once.samples(), p.n);
    for (int64_t i = 0; i < p.in; i += 7)
        for (int64_t j = 0; j < p.in; j += 5) {
            double ref = 0;
            for (int64_t r = 0; r < p.n; ++r) ref += double(p.x[size_t(r * p.in + i)]) * p.x[size_t(r * p.in + j)];
            ref *= 2.0 / double(p.n);
            EXPECT_NEAR(once.hessian()[size_t(i * p.in + j)], ref, 1e-4 * (std::fabs(ref) + 1)) << i << "," << j;
            EXPECT_NEAR(batched.hessian()[size_t(i * p.in + j)], ref, 1e-4 * (std::fabs(ref) + 1)) << i << "," << j;
        }
}

TEST(Gptq, LowersTheObjectiveAgainstItsStartingScales) {
    for (uint32_t seed : {2u, 3u, 4u}) {
        const Problem p = make_problem(seed);
        algo::HessianAccumulator acc(p.in);
        acc.add(p.x.data(), p.n, p.in);
        float wsf2 = 0;
        const auto codes = static_max_codes(p, wsf2);
        for (int bs : {16, 64, 128}) {
            algo::GptqOptions o;
            o.block_size = bs;
            const auto r = algo::gptq_nvfp4(p.w, p.out, p.in, acc.hessian(), codes, wsf2, o);
            EXPECT_FALSE(r.identity_fallback);
            EXPECT_LT(r.objective_gptq, 0.8 * r.objective_rtn) << "seed " << seed << " block " << bs;
            // The objective is the real ||(W - Q) X||^2 * 2/n: check it against X directly once.
            if (bs == 128 && seed == 2) {
                std::vector<float> q(p.w.size());
                algo::fake_quantize_fixed(r.weight, p.out, p.in, codes, wsf2, q);
                double direct = 0;
                for (int64_t s = 0; s < p.n; ++s)
                    for (int64_t o2 = 0; o2 < p.out; ++o2) {
                        double y = 0;
                        for (int64_t c = 0; c < p.in; ++c)
                            y += (double(p.w[size_t(o2 * p.in + c)]) - q[size_t(o2 * p.in + c)]) * p.x[size_t(s * p.in + c)];
                        direct += y * y;
                    }
                EXPECT_NEAR(r.objective_gptq, direct * 2.0 / p.n, 1e-3 * r.objective_gptq);
            }
        }
    }
}

TEST(Gptq, DeadInputsAndIdentityFallback) {
    Problem p = make_problem(5);
    for (int64_t r = 0; r < p.n; ++r) p.x[size_t(r * p.in + 3)] = 0.0f;  // input 3 never fires
    algo::HessianAccumulator acc(p.in);
    acc.add(p.x.data(), p.n, p.in);
    float wsf2 = 0;
    const auto codes = static_max_codes(p, wsf2);
    const auto r = algo::gptq_nvfp4(p.w, p.out, p.in, acc.hessian(), codes, wsf2);
    EXPECT_EQ(r.dead_columns, 1);
    for (int64_t o = 0; o < p.out; ++o) EXPECT_EQ(r.weight[size_t(o * p.in + 3)], 0.0f);
    // A Hessian that is not positive definite falls back to the identity: plain RTN.
    std::vector<float> bad(size_t(p.in * p.in), 0.0f);
    for (int64_t i = 0; i < p.in; ++i) bad[size_t(i * p.in + i)] = -1.0f;
    const auto f = algo::gptq_nvfp4(p.w, p.out, p.in, bad, codes, wsf2);
    EXPECT_TRUE(f.identity_fallback);
    std::vector<float> q_rtn(p.w.size()), q_f(p.w.size());
    algo::fake_quantize_fixed(p.w, p.out, p.in, codes, wsf2, q_rtn);
    algo::fake_quantize_fixed(f.weight, p.out, p.in, codes, wsf2, q_f);
    EXPECT_EQ(q_rtn, q_f) << "with an identity U no error propagates: the result is RTN";
}

namespace {

float fp8_scale_of(const Problem& p) {
    float a = 0;
    for (float v : p.w) a = std::fmax(a, std::fabs(v));
    return a * format::kRecip448;
}

size_t equal_quantized(const Problem& p, const algo::GptqResult& a, const algo::GptqResult& b, const algo::FixedGrid& g) {
    std::vector<float> qa(p.w.size()), qb(p.w.size());
    algo::fake_quantize_fixed(a.weight, p.out, p.in, g, qa);
    algo::fake_quantize_fixed(b.weight, p.out, p.in, g, qb);
    size_t same = 0;
    for (size_t i = 0; i < qa.size(); ++i) same += qa[i] == qb[i];
    return same;
}

}  // namespace

// The blocked fast path (row-parallel blocks, sgemm lazy updates) against the plain column loop:
// the same math in another fp32 order, so nearly the same codes and objective.
TEST(Gptq, BlockedMatchesTheReferenceColumnLoop) {
    core::ThreadPool pool(2);
    for (uint32_t seed : {11u, 12u}) {
        const Problem p = make_problem(seed);
        algo::HessianAccumulator acc(p.in);
        acc.add(p.x.data(), p.n, p.in);
        float wsf2 = 0;
        const auto codes = static_max_codes(p, wsf2);
        for (const algo::FixedGrid& g : {algo::FixedGrid::nvfp4(codes, wsf2), algo::FixedGrid::fp8(fp8_scale_of(p))})
            for (bool act_order : {false, true})
                for (int bs : {16, 128}) {
                    algo::GptqOptions o;
                    o.block_size = bs;
                    o.act_order = act_order;
                    const auto fast = algo::gptq(p.w, p.out, p.in, acc.hessian(), g, o, &pool);
                    const auto ref = algo::gptq_ref(p.w, p.out, p.in, acc.hessian(), g, o);
                    EXPECT_EQ(fast.objective_rtn, ref.objective_rtn);
                    EXPECT_NEAR(fast.objective_gptq, ref.objective_gptq, 0.02 * ref.objective_gptq)
                        << "seed " << seed << " act_order " << act_order << " block " << bs;
                    EXPECT_GE(equal_quantized(p, fast, ref, g), p.w.size() * 98 / 100);
                }
    }
}

TEST(Gptq, Fp8GridLowersTheObjectiveAndEncodesWhatItRounds) {
    for (uint32_t seed : {21u, 22u}) {
        const Problem p = make_problem(seed);
        algo::HessianAccumulator acc(p.in);
        acc.add(p.x.data(), p.n, p.in);
        const float s = fp8_scale_of(p);
        const auto r = algo::gptq(p.w, p.out, p.in, acc.hessian(), algo::FixedGrid::fp8(s));
        EXPECT_LT(r.objective_gptq, 0.8 * r.objective_rtn) << "seed " << seed;
        // The exported codes decode to exactly the values GPTQ rounded to.
        const auto codes = algo::encode_fp8_fixed(r.weight, s);
        std::vector<float> q(p.w.size());
        algo::fake_quantize_fixed(r.weight, p.out, p.in, algo::FixedGrid::fp8(s), q);
        for (size_t i = 0; i < q.size(); ++i) ASSERT_EQ(codec::e4m3_to_float(codes[i]) * s, q[i]) << i;
    }
}

TEST(Gptq, ActOrderLowersTheObjectiveAndFollowsTheHessianDiagonal) {
    const Problem p = make_problem(31);
    algo::HessianAccumulator acc(p.in);
    acc.add(p.x.data(), p.n, p.in);
    float wsf2 = 0;
    const auto codes = static_max_codes(p, wsf2);
    algo::GptqOptions o;
    o.act_order = true;
    const auto r = algo::gptq(p.w, p.out, p.in, acc.hessian(), algo::FixedGrid::nvfp4(codes, wsf2), o);
    EXPECT_LT(r.objective_gptq, 0.8 * r.objective_rtn);
    const auto plain = algo::gptq(p.w, p.out, p.in, acc.hessian(), algo::FixedGrid::nvfp4(codes, wsf2));
    EXPECT_NE(r.weight, plain.weight) << "act_order must change the column order";

    // Per-tensor FP8 has no column blocks, so act_order makes GPTQ equivariant under a column
    // permutation of the problem: permuting W and H permutes the result, bit for bit.
    const float s = fp8_scale_of(p);
    std::vector<int64_t> perm(static_cast<size_t>(p.in));
    for (int64_t i = 0; i < p.in; ++i) perm[size_t(i)] = (i * 37 + 5) % p.in;  // 37 is coprime to 128
    std::vector<float> wp(p.w.size()), hp(acc.hessian().size());
    for (int64_t r2 = 0; r2 < p.out; ++r2)
        for (int64_t j = 0; j < p.in; ++j) wp[size_t(r2 * p.in + j)] = p.w[size_t(r2 * p.in + perm[size_t(j)])];
    for (int64_t i = 0; i < p.in; ++i)
        for (int64_t j = 0; j < p.in; ++j)
            hp[size_t(i * p.in + j)] = acc.hessian()[size_t(perm[size_t(i)] * p.in + perm[size_t(j)])];
    const auto a = algo::gptq(p.w, p.out, p.in, acc.hessian(), algo::FixedGrid::fp8(s), o);
    const auto b = algo::gptq(wp, p.out, p.in, hp, algo::FixedGrid::fp8(s), o);
    for (int64_t r2 = 0; r2 < p.out; ++r2)
        for (int64_t j = 0; j < p.in; ++j)
            ASSERT_EQ(b.weight[size_t(r2 * p.in + j)], a.weight[size_t(r2 * p.in + perm[size_t(j)])]) << r2 << "," << j;
}

// U is the upper Cholesky factor of inv(H + damp I): U^T U (H + damp I) = I, also under act_order
// (in the permuted order).
TEST(Gptq, PreparedFactorInvertsTheDampedHessian) {
    const Problem p = make_problem(41);
    algo::HessianAccumulator acc(p.in);
    acc.add(p.x.data(), p.n, p.in);
    float wsf2 = 0;
    const auto codes = static_max_codes(p, wsf2);
    for (bool act_order : {false, true}) {
        algo::GptqOptions o;
        o.act_order = act_order;
        const auto prep = algo::detail::prepare(p.w, p.out, p.in, acc.hessian(), algo::FixedGrid::nvfp4(codes, wsf2), o);
        ASSERT_FALSE(prep.identity_fallback);
        const int64_t n = p.in;
        double mean = 0;
        for (int64_t i = 0; i < n; ++i) mean += acc.hessian()[size_t(i * n + i)];
        const double damp = 0.01 * mean / double(n);
        double worst = 0;
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < n; ++j) {
                EXPECT_TRUE(j >= i || prep.u[size_t(i * n + j)] == 0.0f) << "upper triangular";
                double s = 0;  // (U^T U Hd)[i][j] = sum_k sum_m U[k][i] U[k][m] Hd[m][j]
                for (int64_t k = 0; k <= std::min(i, n - 1); ++k) {
                    double um = 0;
                    for (int64_t m = k; m < n; ++m) {
                        const int64_t pm = prep.perm[size_t(m)], pj = prep.perm[size_t(j)];
                        um += double(prep.u[size_t(k * n + m)]) *
                              (double(acc.hessian()[size_t(pm * n + pj)]) + (pm == pj ? damp : 0.0));
                    }
                    s += double(prep.u[size_t(k * n + i)]) * um;
                }
                worst = std::max(worst, std::fabs(s - (i == j ? 1.0 : 0.0)));
            }
        EXPECT_LT(worst, 1e-3) << "act_order " << act_order;
    }
}
