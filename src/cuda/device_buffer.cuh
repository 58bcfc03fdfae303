// A grow-only device allocation reused across calls (per-thread workspaces of the quantize and
// GPTQ backends): reserve(n) keeps the buffer when it is already big enough.
#pragma once

#include <cstddef>
#include <utility>

#include "cuda/check.cuh"

namespace microscale::cuda {

struct DeviceBuffer {
    void* ptr = nullptr;
    size_t bytes = 0;
    void reserve(size_t n) {
        if (n <= bytes) return;
        if (ptr) cudaFree(ptr);
        ptr = nullptr;
        bytes = 0;
        MICROSCALE_CUDA_CHECK(cudaMalloc(&ptr, n));
        bytes = n;
    }
    template <typename T>
    T* as() const { return static_cast<T*>(ptr); }
    void swap(DeviceBuffer& o) noexcept {
        std::swap(ptr, o.ptr);
        std::swap(bytes, o.bytes);
    }
    DeviceBuffer() = default;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() {
        if (ptr) cudaFree(ptr);  // may run after the runtime shut down at exit; nothing to report
    }
};

}  // namespace microscale::cuda
