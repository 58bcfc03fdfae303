// Grid sizes shared by the kernel files: grid-stride kernels get enough CTAs to fill the GPU
// (8 per SM) without more than the work needs.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cuda/check.cuh"

namespace microscale::cuda {

inline int grid_for(int64_t n_items, int threads) {
    int dev = 0, sms = 0;
    MICROSCALE_CUDA_CHECK(cudaGetDevice(&dev));
    MICROSCALE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    const int64_t want = (n_items + threads - 1) / threads;
    return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(want, int64_t{sms} * 8)));
}

}  // namespace microscale::cuda
