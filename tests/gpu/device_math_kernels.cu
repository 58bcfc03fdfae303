// Test-only kernels that run the shared HD rounding helpers on the GPU, so the tests can compare
// the device's double conversions and log2 with the host's on chosen hard inputs.
#include <vector>

#include "cuda/check.cuh"
#include "device_math.h"
#include "format/mx_block.h"
#include "format/nvfp4_cuts.h"

namespace microscale::test {
namespace {

__global__ void nibble_kernel(const float* w, const float* d, int64_t n, uint8_t* out) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) out[i] = format::e2m1_nibble_cut(w[i], format::e2m1_cuts(d[i]));
}

__global__ void mx_exponent_kernel(const float* x, int64_t n, int* out) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) out[i] = format::mx_block_exponent(x[i]);
}

template <typename T>
T* to_device(const std::vector<T>& v) {
    T* p = nullptr;
    MICROSCALE_CUDA_CHECK(cudaMalloc(&p, v.size() * sizeof(T) + 1));
    MICROSCALE_CUDA_CHECK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    return p;
}

}  // namespace

std::vector<uint8_t> gpu_e2m1_nibbles(const std::vector<float>& w, const std::vector<float>& d) {
    const int64_t n = static_cast<int64_t>(w.size());
    float* dw = to_device(w);
    float* dd = to_device(d);
    uint8_t* out = nullptr;
    MICROSCALE_CUDA_CHECK(cudaMalloc(&out, w.size() + 1));
    nibble_kernel<<<static_cast<unsigned>((n + 255) / 256), 256>>>(dw, dd, n, out);
    MICROSCALE_CUDA_CHECK_LAUNCH();
    std::vector<uint8_t> r(w.size());
    MICROSCALE_CUDA_CHECK(cudaMemcpy(r.data(), out, r.size(), cudaMemcpyDeviceToHost));
    MICROSCALE_CUDA_CHECK(cudaFree(dw));
    MICROSCALE_CUDA_CHECK(cudaFree(dd));
    MICROSCALE_CUDA_CHECK(cudaFree(out));
    return r;
}

std::vector<int> gpu_mx_exponents(const std::vector<float>& x) {
    const int64_t n = static_cast<int64_t>(x.size());
    float* dx = to_device(x);
    int* out = nullptr;
    MICROSCALE_CUDA_CHECK(cudaMalloc(&out, x.size() * sizeof(int) + 1));
    mx_exponent_kernel<<<static_cast<unsigned>((n + 255) / 256), 256>>>(dx, n, out);
    MICROSCALE_CUDA_CHECK_LAUNCH();
    std::vector<int> r(x.size());
    MICROSCALE_CUDA_CHECK(cudaMemcpy(r.data(), out, r.size() * sizeof(int), cudaMemcpyDeviceToHost));
    MICROSCALE_CUDA_CHECK(cudaFree(dx));
    MICROSCALE_CUDA_CHECK(cudaFree(out));
    return r;
}

}  // namespace microscale::test
