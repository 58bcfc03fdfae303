// Every CUDA runtime call goes through MICROSCALE_CUDA_CHECK: a failure becomes a
// microscale::Error naming the call, the file and line, and CUDA's own message.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "microscale/error.h"

namespace microscale::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line) {
    throw Error(std::string("CUDA error: ") + call + " failed at " + file + ":" + std::to_string(line) + ": " +
                cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

}  // namespace microscale::cuda

#define MICROSCALE_CUDA_CHECK(call)                                                      \
    do {                                                                                 \
        const cudaError_t microscale_cuda_err_ = (call);                                 \
        if (microscale_cuda_err_ != cudaSuccess)                                         \
            ::microscale::cuda::throw_cuda_error(microscale_cuda_err_, #call, __FILE__, __LINE__); \
    } while (0)

// After a kernel launch: launch-configuration errors surface here, execution errors at the next
// synchronising call.
#define MICROSCALE_CUDA_CHECK_LAUNCH() MICROSCALE_CUDA_CHECK(cudaGetLastError())
