// MICROSCALE_HD marks a function callable from host and device code. The codecs in this folder
// are the only place that knows the bit layout of E2M1, E4M3, E8M0, BF16 and FP16; the scalar
// reference, the SIMD tails and the CUDA kernels all include them (spec/style.md §9.2).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define MICROSCALE_HD __host__ __device__
#else
#define MICROSCALE_HD
#endif

namespace microscale::codec {

MICROSCALE_HD inline uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
#endif
}

MICROSCALE_HD inline float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
#endif
}

MICROSCALE_HD inline float abs_f32(float f) { return bits_float(float_bits(f) & 0x7FFFFFFFu); }

MICROSCALE_HD inline bool is_finite_f32(float f) { return (float_bits(f) & 0x7F800000u) != 0x7F800000u; }

}  // namespace microscale::codec
