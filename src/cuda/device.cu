// GPU discovery. No fmt here: its headers do not compile in nvcc's C++20 host pass.
#include <atomic>
#include <string>

#include "cuda/check.cuh"
#include "cuda/device.h"

namespace microscale::cuda {
namespace {
std::atomic<int> g_device{0};
}

bool compiled() { return true; }

int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no driver" error
        return 0;
    }
    return n;
}

std::string unavailable_reason() {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return std::string("no usable CUDA device (") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e) + ")";
    }
    return n == 0 ? "no CUDA device found" : "";
}

DeviceInfo device_info(int index) {
    cudaDeviceProp p{};
    MICROSCALE_CUDA_CHECK(cudaGetDeviceProperties(&p, index));
    DeviceInfo d;
    d.index = index;
    d.name = p.name;
    d.cc_major = p.major;
    d.cc_minor = p.minor;
    d.sm_count = p.multiProcessorCount;
    d.total_bytes = p.totalGlobalMem;
    return d;
}

void select_device(int index) {
    const int n = device_count();
    if (index < 0 || index >= n)
        throw Error("--device cuda:" + std::to_string(index) + ": " + (n == 0 ? unavailable_reason() : "no such device") +
                    " (this machine has " + std::to_string(n) + " CUDA device" + (n == 1 ? "" : "s") + ")");
    g_device.store(index);
    MICROSCALE_CUDA_CHECK(cudaSetDevice(index));
}

int selected_device() { return g_device.load(); }

}  // namespace microscale::cuda
