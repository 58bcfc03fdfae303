// Shared helpers of the `gpu` tests: skip cleanly without a GPU, compare QuantizedWeights.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "cuda/device.h"
#include "format/quantize.h"

namespace microscale::test {

// In a test body: skip (not fail) when this machine has no usable GPU.
#define MICROSCALE_REQUIRE_GPU()                                                                  \
    do {                                                                                          \
        if (::microscale::cuda::device_count() == 0)                                              \
            GTEST_SKIP() << "no GPU: " << ::microscale::cuda::unavailable_reason();               \
    } while (0)

inline void expect_same_quantized(const format::QuantizedWeight& ref, const format::QuantizedWeight& gpu,
                                  const std::string& what) {
    ASSERT_EQ(ref.data.size(), gpu.data.size()) << what;
    ASSERT_EQ(ref.block_scales.size(), gpu.block_scales.size()) << what;
    uint32_t a, b;
    std::memcpy(&a, &ref.global_scale, 4);
    std::memcpy(&b, &gpu.global_scale, 4);
    EXPECT_EQ(a, b) << what << ": global scale bits";
    std::memcpy(&a, &ref.amax, 4);
    std::memcpy(&b, &gpu.amax, 4);
    EXPECT_EQ(a, b) << what << ": amax bits";
    if (std::memcmp(ref.data.data(), gpu.data.data(), ref.data.size()) != 0) {
        size_t n_bad = 0, first = 0;
        for (size_t i = 0; i < ref.data.size(); ++i)
            if (ref.data[i] != gpu.data[i] && n_bad++ == 0) first = i;
        ADD_FAILURE() << what << ": " << n_bad << " element bytes differ, first at " << first << " (ref "
                      << int(ref.data[first]) << ", gpu " << int(gpu.data[first]) << ")";
    }
    if (std::memcmp(ref.block_scales.data(), gpu.block_scales.data(), ref.block_scales.size()) != 0) {
        size_t n_bad = 0, first = 0;
        for (size_t i = 0; i < ref.block_scales.size(); ++i)
            if (ref.block_scales[i] != gpu.block_scales[i] && n_bad++ == 0) first = i;
        ADD_FAILURE() << what << ": " << n_bad << " scale bytes differ, first at " << first << " (ref "
                      << int(ref.block_scales[first]) << ", gpu " << int(gpu.block_scales[first]) << ")";
    }
}

}  // namespace microscale::test
