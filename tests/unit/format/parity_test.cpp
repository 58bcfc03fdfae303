// SIMD vs scalar reference: memcmp of packed bytes, scale bytes and fp32 scale bits on the hard
// cases, for every format and search the SIMD path implements.
#include <gtest/gtest.h>

#include <cstring>

#include "core/thread_pool.h"
#include "hwy/targets.h"
#include "format/quantize.h"
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
    Nvfp4Config mse;
    mse.search = Nvfp4Search::MSE;
    Nvfp4Config sweep;
    sweep.search = Nvfp4Search::FP8_SWEEP;
    Nvfp4Config smax46 = smax;
    smax46.four_over_six = true;
    return {{"nvfp4_dynamic", Format::NVFP4, dyn},     {"nvfp4_static_max", Format::NVFP4, smax},
            {"nvfp4_static_max_m256", Format::W4A16_NVFP4, smax46},
            {"nvfp4_mse", Format::NVFP4, mse},         {"nvfp4_fp8_sweep", Format::NVFP4, sweep},
            {"nvfp4_four_over_six", Format::NVFP4, Nvfp4Config::four_over_six_preset()},
            {"fp8", Format::FP8, {}},                  {"mxfp4", Format::MXFP4, {}},
            {"mxfp8", Format::MXFP8, {}}};
}

void expect_same(const QuantizedWeight& a, const QuantizedWeight& b, const std::string& what) {
    ASSERT_EQ(a.data.size(), b.data.size()) << what;
    ASSERT_EQ(a.block_scales.size(), b.block_scales.size()) << what;
    uint32_t ga, gb;
    std::memcpy(&ga, &a.global_scale, 4);
    std::memcpy(&gb, &b.global_scale, 4);
    EXPECT_EQ(ga, gb) << what << ": global scale bits";
    if (std::memcmp(a.data.data(), b.data.data(), a.data.size()) != 0) {
        for (size_t i = 0; i < a.data.size(); ++i)
            if (a.data[i] != b.data[i]) {
                ADD_FAILURE() << what << ": element byte " << i << " ref " << int(a.data[i]) << " simd " << int(b.data[i]);
                break;
            }
    }
    if (std::memcmp(a.block_scales.data(), b.block_scales.data(), a.block_scales.size()) != 0) {
        for (size_t i = 0; i < a.block_scales.size(); ++i)
            if (a.block_scales[i] != b.block_scales[i]) {
                ADD_FAILURE() << what << ": scale byte " << i << " ref " << int(a.block_scales[i]) << " simd "
                              << int(b.block_scales[i]);
                break;
            }
    }
}

// The reference once per mode, then every SIMD target compiled in and supported by this CPU
// (SSSE3, SSE4, AVX2, AVX3, ...), each memcmp'd against it.
void check_all_modes(const TestWeight& w, bool include_slow_searches, core::ThreadPool* pool) {
    const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
    ASSERT_FALSE(targets.empty());
    for (const Mode& m : all_modes()) {
        const bool slow = m.nvfp4.search == Nvfp4Search::FP8_SWEEP || (m.nvfp4.search == Nvfp4Search::MSE &&
                                                                        m.nvfp4.mse.stop == 4.0);
        if (m.format != Format::NVFP4 && m.format != Format::W4A16_NVFP4) {
            if (w.cols % 32 != 0) continue;
        } else if (slow && !include_slow_searches) {
            continue;
        }
        WeightQuantSpec spec{m.format, m.nvfp4};
        const auto ref = quantize_weight(w.view(), spec, Backend::REF, nullptr);
        for (int64_t t : targets) {
            hwy::SetSupportedTargetsForTest(t);
            const auto simd = quantize_weight(w.view(), spec, Backend::SIMD, pool);
            expect_same(ref, simd, w.view().describe() + " " + m.name + " on " + hwy::TargetName(t));
        }
        hwy::SetSupportedTargetsForTest(0);
    }
}

}  // namespace

TEST(Parity, SmallShapesAllDtypes) {
    const int64_t shapes[][2] = {{1, 16}, {3, 48}, {7, 32}, {5, 80}, {17, 160}, {64, 256}, {129, 64}};
    for (DType dt : {DType::BF16, DType::F16, DType::F32})
        for (const auto& s : shapes) {
            TestWeight w = microscale::test::heavy_tailed(s[0], s[1], static_cast<uint32_t>(s[0] * 131 + s[1]), dt);
            microscale::test::add_hard_blocks(w, 7);
            check_all_modes(w, true, nullptr);
        }
}

TEST(Parity, SharedGlobalAmaxForFusedGroup) {
    TestWeight w = microscale::test::heavy_tailed(32, 128, 11);
    for (auto search : {Nvfp4Search::DYNAMIC_MAX, Nvfp4Search::STATIC_MAX, Nvfp4Search::MSE, Nvfp4Search::FP8_SWEEP}) {
        WeightQuantSpec spec{Format::NVFP4, {}};
        spec.nvfp4.search = search;
        spec.nvfp4.global_amax = 3.7f;
        expect_same(quantize_weight(w.view(), spec, Backend::REF, nullptr),
                    quantize_weight(w.view(), spec, Backend::SIMD, nullptr), "shared amax");
    }
}

TEST(Parity, AllZeroTensor) {
    TestWeight w = microscale::test::heavy_tailed(4, 64, 3);
    for (int64_t r = 0; r < 4; ++r)
        for (int64_t c = 0; c < 64; ++c) w.set(r, c, (c & 1) ? -0.0f : 0.0f);
    check_all_modes(w, true, nullptr);
}

TEST(Parity, Large4096x11008Threaded) {
    core::ThreadPool pool(2);
    TestWeight w = microscale::test::heavy_tailed(4096, 11008, 5);
    microscale::test::add_hard_blocks(w, 9);
    check_all_modes(w, false, &pool);
}
