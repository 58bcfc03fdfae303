// The tensor-core attention kernel (src/cuda/forward/flash_attention.cu) against the CPU
// attention (model::causal_attention, fp32) on the same bf16-rounded q, k, v: every compiled head
// size, GQA and MHA, ragged sequence lengths that end inside and on tile boundaries, sequences
// longer than several 64-key tiles, sliding windows smaller and larger than a tile, and the o_proj
// observer's amax. The kernel rounds the softmax probabilities to bf16 (as torch's bf16 sdpa):
// relative error ~2^-9 per probability, so outputs are compared at 1e-2 of the largest |output|
// of the head. Also: rows outside the sequences are never written.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "cuda/check.cuh"
#include "cuda/forward/flash_attention.cuh"
#include "format/codec/bf16.h"
#include "gpu_test_util.h"
#include "model/forward/ops.h"

using namespace microscale;
namespace fwd = microscale::cuda::fwd;

namespace {

struct AttnCase {
    int64_t heads, kv_heads, head_dim, window;
    std::vector<int64_t> lengths;
};

template <class T>
T* to_device(const std::vector<T>& v) {
    T* p = nullptr;
    MICROSCALE_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(v.size(), 1) * sizeof(T)));
    MICROSCALE_CUDA_CHECK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    return p;
}

void run_case(const AttnCase& c, uint32_t seed) {
    const int64_t d = c.head_dim, qd = c.heads * d, kvd = c.kv_heads * d, ld = qd + 2 * kvd;
    std::vector<int64_t> offsets{0};
    for (int64_t n : c.lengths) offsets.push_back(offsets.back() + n);
    const int64_t T = offsets.back(), max_len = *std::max_element(c.lengths.begin(), c.lengths.end());
    // Scores with a spread like a trained model's (some heads sharp, some flat) and outlier dims.
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> qkv(static_cast<size_t>(T * ld));
    for (int64_t r = 0; r < T; ++r)
        for (int64_t col = 0; col < ld; ++col) {
            float x = nd(rng) * (col % d == 3 ? 6.0f : 1.5f);
            qkv[static_cast<size_t>(r * ld + col)] = codec::round_to_bf16(x);
        }
    std::vector<uint16_t> qkv16(qkv.size());
    for (size_t i = 0; i < qkv.size(); ++i) qkv16[i] = codec::bf16_from_float(qkv[i]);
    const float scaling = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));

    core::ThreadPool pool(2);
    std::vector<float> want(static_cast<size_t>(T * qd));
    model::causal_attention(qkv.data(), ld, qkv.data() + qd, qkv.data() + qd + kvd, ld, offsets, c.heads, c.kv_heads,
                            d, c.window, scaling, want.data(), qd, pool);

    // One sentinel row before and after the batch: the kernel must not write outside it.
    const uint16_t sentinel = 0x7fc1;
    std::vector<uint16_t> out_init(static_cast<size_t>((T + 2) * qd), sentinel);
    uint16_t* dq = to_device(qkv16);
    int64_t* doff = to_device(offsets);
    uint16_t* dout = to_device(out_init);
    float* damax = to_device(std::vector<float>{0.0f});
    fwd::launch_flash_attention(dq, ld, dq + qd, dq + qd + kvd, ld, doff, static_cast<int64_t>(c.lengths.size()),
                                max_len, c.heads, c.kv_heads, d, c.window, scaling, dout + qd, qd, damax, nullptr);
    MICROSCALE_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<uint16_t> got(out_init.size());
    float amax = 0.0f;
    MICROSCALE_CUDA_CHECK(cudaMemcpy(got.data(), dout, got.size() * 2, cudaMemcpyDeviceToHost));
    MICROSCALE_CUDA_CHECK(cudaMemcpy(&amax, damax, 4, cudaMemcpyDeviceToHost));
    for (void* p : {static_cast<void*>(dq), static_cast<void*>(doff), static_cast<void*>(dout),
                    static_cast<void*>(damax)})
        MICROSCALE_CUDA_CHECK(cudaFree(p));

    const std::string tag = "heads " + std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) + " d " +
                            std::to_string(d) + " window " + std::to_string(c.window);
    for (int64_t i = 0; i < qd; ++i) {
        ASSERT_EQ(got[static_cast<size_t>(i)], sentinel) << tag << ": wrote before the first row";
        ASSERT_EQ(got[static_cast<size_t>((T + 1) * qd + i)], sentinel) << tag << ": wrote after the last row";
    }
    float want_amax = 0.0f;
    for (float x : want) want_amax = std::max(want_amax, std::fabs(x));
    EXPECT_NEAR(amax, want_amax, 1e-2 * want_amax) << tag << ": o_proj observer amax";
    for (int64_t h = 0; h < c.heads; ++h) {
        float scale = 0.0f;
        for (int64_t r = 0; r < T; ++r)
            for (int64_t e = 0; e < d; ++e) scale = std::max(scale, std::fabs(want[static_cast<size_t>(r * qd + h * d + e)]));
        int64_t bad = 0;
        double worst = 0.0;
        for (int64_t r = 0; r < T; ++r)
            for (int64_t e = 0; e < d; ++e) {
                const size_t i = static_cast<size_t>(r * qd + h * d + e);
                const float g = codec::bf16_to_float(got[static_cast<size_t>(qd) + i]);
                const double err = std::fabs(static_cast<double>(g) - want[i]);
                worst = std::max(worst, err / scale);
                if (!(err <= 1e-2 * scale)) ++bad;  // also catches NaN
            }
        EXPECT_EQ(bad, 0) << tag << " head " << h << ": " << bad << " outputs off by more than 1e-2 of max |out| "
                          << scale << " (worst " << worst << ")";
    }
}

}  // namespace

TEST(GpuFlashAttention, MatchesCpuAttentionOnBf16Inputs) {
    MICROSCALE_REQUIRE_GPU();
    const std::vector<int64_t> ragged{1, 63, 64, 65, 200, 7, 130};
    uint32_t seed = 1;
    for (int64_t d : {32, 64, 80, 96, 128}) {
        ASSERT_TRUE(fwd::flash_attention_supported(d)) << d;
        run_case({4, 2, d, 0, ragged}, seed++);   // GQA
        run_case({2, 2, d, 0, {300, 129}}, seed++);  // MHA, several tiles
    }
    for (int64_t window : {1, 17, 64, 100, 1000})
        run_case({4, 1, 64, window, {257, 31, 96}}, seed++);
    EXPECT_FALSE(fwd::flash_attention_supported(256));
    EXPECT_FALSE(fwd::flash_attention_supported(48));
}
