// MICROSCALE_CUBLAS_CHECK: a failed cuBLAS call becomes a microscale::Error naming the call, the
// file and line, and cuBLAS's status string (as MICROSCALE_CUDA_CHECK does for the runtime).
#pragma once

#include <cublas_v2.h>

#include <string>

#include "microscale/error.h"

#define MICROSCALE_CUBLAS_CHECK(call)                                                                   \
    do {                                                                                                \
        const cublasStatus_t microscale_cublas_st_ = (call);                                            \
        if (microscale_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                             \
            throw ::microscale::Error(std::string("cuBLAS error: ") + #call + " failed at " + __FILE__ + \
                                      ":" + std::to_string(__LINE__) + ": " +                           \
                                      cublasGetStatusString(microscale_cublas_st_));                    \
    } while (0)
