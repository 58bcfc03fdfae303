// GPTQ with fixed NVFP4 block scales: the Hessian accumulator's running mean, the objective
// lowered against round-to-nearest with the same scales, dead inputs, the identity fallback.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "algo/gptq.h"
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
