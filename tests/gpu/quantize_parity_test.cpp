// CUDA kernels vs the CPU reference: memcmp of packed bytes, scale bytes and fp32 scale bits for
// every format and search, every input dtype, on the hard cases of the core issue and on large
// heavy-tailed tensors. The CPU SIMD path is memcmp-equal to the reference (tests/unit), so the
// large tensors compare against it to keep the test fast.
#include <thread>

#include "core/thread_pool.h"
#include "cuda/quantize_cuda.h"
#include "microscale/error.h"
#include "gpu_test_util.h"
#include "support/test_weights.h"

using namespace microscale;
using namespace microscale::format;
using microscale::test::TestWeight;

namespace {

struct Mode {
    const char* name;
    Format format;
    Nvfp4Config nvfp4;
};

std::vector<Mode> all_modes() {
    Nvfp4Config dyn;
    Nvfp4Config smax;
    smax.search = Nvfp4Search::STATIC_MAX;
    Nvfp4Config smax46 = smax;
    smax46.four_over_six = true;
    Nvfp4Config mse;
    mse.search = Nvfp4Search::MSE;
    Nvfp4Config mse46 = mse;
    mse46.four_over_six = true;
    Nvfp4Config sweep;
    sweep.search = Nvfp4Search::FP8_SWEEP;
    return {{"nvfp4_dynamic", Format::NVFP4, dyn},
            {"nvfp4_static_max", Format::NVFP4, smax},
            {"w4a16_static_max_m256", Format::W4A16_NVFP4, smax46},
            {"nvfp4_mse39", Format::NVFP4, mse},
            {"nvfp4_mse39_m256", Format::NVFP4, mse46},
            {"nvfp4_fp8_sweep", Format::NVFP4, sweep},
            {"nvfp4_four_over_six", Format::NVFP4, Nvfp4Config::four_over_six_preset()},
            {"fp8", Format::FP8, {}},
            {"mxfp4", Format::MXFP4, {}},
            {"mxfp8", Format::MXFP8, {}}};
}

void check_all_modes(const TestWeight& w, Backend cpu, core::ThreadPool* pool) {
    for (const Mode& m : all_modes()) {
        if ((m.format == Format::MXFP4 || m.format == Format::MXFP8) && w.cols % 32 != 0) continue;
        WeightQuantSpec spec{m.format, m.nvfp4};
        const auto want = quantize_weight(w.view(), spec, cpu, pool);
        const auto got = cuda::quantize_weight(w.view(), spec);
        microscale::test::expect_same_quantized(want, got, w.view().describe() + " " + m.name);
        // Decoding on the GPU gives the CPU decoder's floats.
        const std::vector<float> a = dequantize_weight(got), b = cuda::dequantize_weight(got);
        ASSERT_EQ(a.size(), b.size());
        EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << w.view().describe() << " " << m.name << " decode";
    }
}

}  // namespace

TEST(GpuParity, SmallShapesAllDtypesHardBlocks) {
    MICROSCALE_REQUIRE_GPU();
    const int64_t shapes[][2] = {{1, 16}, {3, 48}, {7, 32}, {5, 80}, {17, 160}, {64, 256}, {129, 64}, {33, 8}};
    for (DType dt : {DType::BF16, DType::F16, DType::F32})
        for (const auto& s : shapes) {
            if (s[1] % 16 != 0) continue;
            TestWeight w = microscale::test::heavy_tailed(s[0], s[1], static_cast<uint32_t>(s[0] * 131 + s[1]), dt);
            microscale::test::add_hard_blocks(w, 7);
            check_all_modes(w, Backend::REF, nullptr);
        }
}

TEST(GpuParity, Fp8OddLengthTails) {
    MICROSCALE_REQUIRE_GPU();
    for (int64_t cols : {1, 3, 7, 9, 15, 17, 31, 1001})
        for (DType dt : {DType::BF16, DType::F16, DType::F32}) {
            TestWeight w = microscale::test::heavy_tailed(3, cols, static_cast<uint32_t>(cols), dt);
            WeightQuantSpec spec{Format::FP8, {}};
            microscale::test::expect_same_quantized(quantize_weight(w.view(), spec, Backend::REF, nullptr),
                                                    cuda::quantize_weight(w.view(), spec), w.view().describe());
        }
}

TEST(GpuParity, SharedGlobalAmaxAndKnownAmax) {
    MICROSCALE_REQUIRE_GPU();
    TestWeight w = microscale::test::heavy_tailed(32, 128, 11);
    for (auto search : {Nvfp4Search::DYNAMIC_MAX, Nvfp4Search::STATIC_MAX, Nvfp4Search::MSE, Nvfp4Search::FP8_SWEEP}) {
        WeightQuantSpec spec{Format::NVFP4, {}};
        spec.nvfp4.search = search;
        spec.nvfp4.global_amax = 3.7f;
        microscale::test::expect_same_quantized(quantize_weight(w.view(), spec, Backend::REF, nullptr),
                                                cuda::quantize_weight(w.view(), spec), "shared amax");
    }
    WeightQuantSpec fp8{Format::FP8, {}};
    fp8.fp8_amax = 0.77f;  // an amax from the FP8 mse search
    microscale::test::expect_same_quantized(quantize_weight(w.view(), fp8, Backend::REF, nullptr),
                                            cuda::quantize_weight(w.view(), fp8), "fp8 searched amax");
}

TEST(GpuParity, AllZeroAndTinyTensors) {
    MICROSCALE_REQUIRE_GPU();
    TestWeight z = microscale::test::heavy_tailed(4, 64, 3);
    for (int64_t r = 0; r < 4; ++r)
        for (int64_t c = 0; c < 64; ++c) z.set(r, c, (c & 1) ? -0.0f : 0.0f);
    check_all_modes(z, Backend::REF, nullptr);
    // bf16 subnormals next to a large value: block divisors underflow towards zero.
    TestWeight t = microscale::test::heavy_tailed(4, 64, 4);
    for (int64_t c = 0; c < 64; ++c) t.set(1, c, std::ldexp(1.0f, -133) * static_cast<float>(c % 5));
    t.set(0, 0, 3.0e38f);
    check_all_modes(t, Backend::REF, nullptr);
}

TEST(GpuParity, NonFiniteWeightGivesTheCpuError) {
    MICROSCALE_REQUIRE_GPU();
    TestWeight w = microscale::test::heavy_tailed(8, 64, 5);
    w.set(5, 17, std::nanf(""));
    std::string cpu_msg, gpu_msg;
    try {
        quantize_weight(w.view(), {Format::NVFP4, {}}, Backend::REF, nullptr);
    } catch (const Error& e) {
        cpu_msg = e.what();
    }
    try {
        cuda::quantize_weight(w.view(), {Format::NVFP4, {}});
    } catch (const Error& e) {
        gpu_msg = e.what();
    }
    EXPECT_FALSE(cpu_msg.empty());
    EXPECT_EQ(cpu_msg, gpu_msg);
}

TEST(GpuParity, Large4096x11008AllModes) {
    MICROSCALE_REQUIRE_GPU();
    core::ThreadPool pool(std::max(2u, std::thread::hardware_concurrency()));
    TestWeight w = microscale::test::heavy_tailed(4096, 11008, 5);
    microscale::test::add_hard_blocks(w, 9);
    check_all_modes(w, Backend::SIMD, &pool);
}

TEST(GpuParity, ConcurrentCallsFromThreads) {
    MICROSCALE_REQUIRE_GPU();
    std::vector<TestWeight> ws;
    for (uint32_t i = 0; i < 4; ++i) ws.push_back(microscale::test::heavy_tailed(256 + 16 * i, 512, 100 + i));
    std::vector<QuantizedWeight> got(ws.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < ws.size(); ++i)
        threads.emplace_back([&, i] { got[i] = cuda::quantize_weight(ws[i].view(), {Format::NVFP4, Nvfp4Config::four_over_six_preset()}); });
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < ws.size(); ++i)
        microscale::test::expect_same_quantized(
            quantize_weight(ws[i].view(), {Format::NVFP4, Nvfp4Config::four_over_six_preset()}, Backend::REF, nullptr),
            got[i], "thread " + std::to_string(i));
}

TEST(GpuParity, PrefetchedNextWeightGivesTheSameBytes) {
    MICROSCALE_REQUIRE_GPU();
    // A chain where each call names the next weight (taken), one hint not taken (a different
    // weight follows), mixed dtypes and sizes (the prefetch buffers grow), and a hint dropped at
    // the end by wait_prefetch.
    std::vector<TestWeight> ws;
    ws.push_back(microscale::test::heavy_tailed(64, 256, 1, DType::BF16));
    ws.push_back(microscale::test::heavy_tailed(1024, 4096, 2, DType::BF16));
    ws.push_back(microscale::test::heavy_tailed(48, 128, 3, DType::F32));
    ws.push_back(microscale::test::heavy_tailed(2048, 2048, 4, DType::BF16));
    ws.push_back(microscale::test::heavy_tailed(96, 512, 5, DType::F16));
    const std::vector<Mode> modes = all_modes();
    const size_t order[] = {0, 1, 2, 3, 4, 1, 0};
    const size_t hinted[] = {1, 2, 3, 2 /* not what follows */, 1, 0, 3 /* dropped */};
    for (size_t step = 0; step < std::size(order); ++step) {
        const TestWeight& w = ws[order[step]];
        const Mode& m = modes[step % modes.size()];
        if ((m.format == Format::MXFP4 || m.format == Format::MXFP8) && w.cols % 32 != 0) continue;
        const WeightQuantSpec spec{m.format, m.nvfp4};
        const format::WeightView next = ws[hinted[step]].view();
        const QuantizedWeight got = cuda::quantize_weight(w.view(), spec, nullptr, &next);
        microscale::test::expect_same_quantized(quantize_weight(w.view(), spec, Backend::SIMD, nullptr), got,
                                                "step " + std::to_string(step) + " " + m.name);
    }
    cuda::wait_prefetch();
}
