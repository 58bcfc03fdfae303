// Vectorised loads of weight elements to fp32 through the shared codecs (exact for every dtype).
#pragma once

#include <cstdint>

#include "format/codec/bf16.h"
#include "format/codec/fp16.h"

namespace microscale::cuda {

// Element dtypes as template parameters, so each kernel is specialised per input type.
enum class In : int { BF16 = 0, F16 = 1, F32 = 2 };

// N consecutive elements starting at element index i0 (i0 * sizeof(elem) 16-byte aligned, N a
// multiple of 8).
template <In T, int N>
__device__ __forceinline__ void load_elems(const void* base, int64_t i0, float (&x)[N]) {
    if constexpr (T == In::F32) {
        const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(base) + i0);
#pragma unroll
        for (int v = 0; v < N / 4; ++v) {
            const float4 q = __ldg(p + v);
            x[4 * v] = q.x;
            x[4 * v + 1] = q.y;
            x[4 * v + 2] = q.z;
            x[4 * v + 3] = q.w;
        }
    } else {
        const uint4* p = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(base) + i0);
#pragma unroll
        for (int v = 0; v < N / 8; ++v) {
            const uint4 q = __ldg(p + v);
            const uint32_t u[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                const uint16_t lo = static_cast<uint16_t>(u[k] & 0xFFFFu), hi = static_cast<uint16_t>(u[k] >> 16);
                if constexpr (T == In::BF16) {
                    x[8 * v + 2 * k] = codec::bf16_to_float(lo);
                    x[8 * v + 2 * k + 1] = codec::bf16_to_float(hi);
                } else {
                    x[8 * v + 2 * k] = codec::fp16_to_float(lo);
                    x[8 * v + 2 * k + 1] = codec::fp16_to_float(hi);
                }
            }
        }
    }
}

// One element, for tails.
template <In T>
__device__ __forceinline__ float load_elem(const void* base, int64_t i) {
    if constexpr (T == In::F32) return static_cast<const float*>(base)[i];
    const uint16_t h = static_cast<const uint16_t*>(base)[i];
    if constexpr (T == In::BF16) return codec::bf16_to_float(h);
    return codec::fp16_to_float(h);
}

}  // namespace microscale::cuda
