// --device parsing and resolution (core/device.h): every malformed value is an error naming it,
// auto falls back to the CPU without a GPU, and cuda without one says to use --device cpu.
#include <gtest/gtest.h>

#include "core/device.h"
#include "cuda/device.h"
#include "microscale/error.h"

using microscale::Error;
using microscale::core::Device;
using microscale::core::resolve_device;

namespace {

std::string error_of(const std::string& flag) {
    try {
        resolve_device(flag);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(Device, CpuAndAuto) {
    EXPECT_FALSE(resolve_device("cpu").is_cuda());
    EXPECT_EQ(resolve_device("cpu").describe(), "cpu");
    EXPECT_EQ(resolve_device("auto").is_cuda(), microscale::cuda::device_count() > 0);
}

TEST(Device, MalformedValuesAreErrors) {
    for (const std::string bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda0", "cudax", "CPU", "cuda:1:2"}) {
        const std::string e = error_of(bad);
        EXPECT_NE(e.find("'" + bad + "'"), std::string::npos) << bad << " -> " << e;
    }
}

TEST(Device, CudaWithoutAGpuSaysWhatToDo) {
    if (microscale::cuda::device_count() > 0) {
        EXPECT_TRUE(resolve_device("cuda").is_cuda());
        EXPECT_TRUE(resolve_device("cuda:0").is_cuda());
        EXPECT_NE(error_of("cuda:999").find("no such device"), std::string::npos);
        return;
    }
    const std::string e = error_of("cuda:0");
    EXPECT_NE(e.find("--device cpu"), std::string::npos) << e;
}
