// The tensor amax, FP8 per-tensor and MXFP4 / MXFP8 kernels, and their decoders. Per-element
// and per-block rules come from format/fp8_element.h and format/mx_block.h, the same code the
// scalar reference runs.
#include <algorithm>
#include <mutex>
#include <vector>

#include "cuda/check.cuh"
#include "cuda/launch.cuh"
#include "cuda/load.cuh"
#include "cuda/quantize_kernels.cuh"
#include "format/codec/e8m0.h"
#include "format/fp8_element.h"
#include "format/fp8_table.h"
#include "format/mx_block.h"
#include "format/mx_tables.h"

namespace microscale::cuda {
namespace {

constexpr int kThreads = 256;

// ---- amax: integer max of magnitude bit patterns (for non-negative floats the order of the
// patterns is the order of the values, and NaN/Inf sort above every finite value).
template <bool Wide>
__global__ void __launch_bounds__(kThreads) amax_bits_kernel(const void* w, int64_t n, uint32_t* out) {
    const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    uint32_t m = 0;
    if constexpr (Wide) {
        const uint32_t* u = static_cast<const uint32_t*>(w);
        const uint4* v = reinterpret_cast<const uint4*>(u);
        const int64_t nv = n / 4;
        for (int64_t i = tid; i < nv; i += stride) {
            const uint4 q = __ldg(v + i);
            m = max(m, max(max(q.x & 0x7FFFFFFFu, q.y & 0x7FFFFFFFu), max(q.z & 0x7FFFFFFFu, q.w & 0x7FFFFFFFu)));
        }
        for (int64_t i = nv * 4 + tid; i < n; i += stride) m = max(m, u[i] & 0x7FFFFFFFu);
    } else {
        const uint16_t* h = static_cast<const uint16_t*>(w);
        const uint4* v = reinterpret_cast<const uint4*>(h);
        const int64_t nv = n / 8;
        uint32_t pair = 0;  // two 16-bit lanes, maxed lane-wise
        // Eight independent 16-byte loads in flight per thread and round, the last round guarded
        // (no one-load-at-a-time tail, whose latency the short pass would otherwise wait out).
        for (int64_t i = tid; i < nv; i += 8 * stride) {
            uint4 q[8];
#pragma unroll
            for (int k = 0; k < 8; ++k) q[k] = i + k * stride < nv ? __ldg(v + i + k * stride) : make_uint4(0, 0, 0, 0);
#pragma unroll
            for (int k = 0; k < 8; ++k)
                pair = __vmaxu2(pair, __vmaxu2(__vmaxu2(q[k].x & 0x7FFF7FFFu, q[k].y & 0x7FFF7FFFu),
                                               __vmaxu2(q[k].z & 0x7FFF7FFFu, q[k].w & 0x7FFF7FFFu)));
        }
        m = max(pair & 0xFFFFu, pair >> 16);
        for (int64_t i = nv * 8 + tid; i < n; i += stride) m = max(m, static_cast<uint32_t>(h[i] & 0x7FFFu));
    }
    // One atomic per CTA: thousands of warps' atomics on one address serialise in L2 and were a
    // measurable part of this short pass.
    __shared__ uint32_t warp_max[kThreads / 32];
    m = __reduce_max_sync(0xFFFFFFFFu, m);
    if ((threadIdx.x & 31) == 0) warp_max[threadIdx.x / 32] = m;
    __syncthreads();
    if (threadIdx.x < 32) {
        m = threadIdx.x < kThreads / 32 ? warp_max[threadIdx.x] : 0u;
        m = __reduce_max_sync(0xFFFFFFFFu, m);
        if (threadIdx.x == 0) atomicMax(out, m);
    }
}

// ---- FP8 per tensor: 8 elements a thread.
template <In T>
__device__ __forceinline__ uint8_t fp8_code(float v, float divisor) {
    if constexpr (T == In::BF16) return format::fp8_code_bf16(v, divisor);
    else if constexpr (T == In::F16) return format::fp8_code_fp16(v, divisor);
    else return format::fp8_code_fp32(v, divisor);
}

// bf16 with a valid table (format/fp8_table.h, copied to shared memory per CTA): four codes per
// pair of words by lookup instead of a division each.
__global__ void __launch_bounds__(kThreads) fp8_table_kernel(const uint16_t* w, int64_t n, float divisor,
                                                              const format::Fp8CodeTable* table, uint8_t* codes) {
    __shared__ format::Fp8CodeTable t;
    const uint4* src = reinterpret_cast<const uint4*>(table);
    uint4* dst = reinterpret_cast<uint4*>(&t);
    for (int i = threadIdx.x; i < static_cast<int>(sizeof t / 16); i += blockDim.x) dst[i] = __ldg(src + i);
    __syncthreads();
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    const int64_t n8 = n / 8;
    const uint4* v = reinterpret_cast<const uint4*>(w);
    for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < n8; g += stride) {
        const uint4 q = __ldg(v + g);
        reinterpret_cast<uint2*>(codes)[g] =
            make_uint2(format::fp8_table_codes4(q.x, q.y, t, t.codes), format::fp8_table_codes4(q.z, q.w, t, t.codes));
    }
    if (blockIdx.x == 0)
        for (int64_t i = n8 * 8 + threadIdx.x; i < n; i += blockDim.x)
            codes[i] = fp8_code<In::BF16>(codec::bf16_to_float(w[i]), divisor);
}

template <In T>
__global__ void __launch_bounds__(kThreads) fp8_kernel(const void* w, int64_t n, float divisor, uint8_t* codes) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    const int64_t n8 = n / 8;
    for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < n8; g += stride) {
        float x[8];
        load_elems<T, 8>(w, g * 8, x);
        uint32_t lo = 0, hi = 0;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            lo |= static_cast<uint32_t>(fp8_code<T>(x[j], divisor)) << (8 * j);
            hi |= static_cast<uint32_t>(fp8_code<T>(x[4 + j], divisor)) << (8 * j);
        }
        reinterpret_cast<uint2*>(codes)[g] = make_uint2(lo, hi);
    }
    if (blockIdx.x == 0)
        for (int64_t i = n8 * 8 + threadIdx.x; i < n; i += blockDim.x) codes[i] = fp8_code<T>(load_elem<T>(w, i), divisor);
}

// ---- MX: one thread per 32-element block.
template <In T>
__device__ __forceinline__ float mx_block_amax(const float (&x)[32]) {
    float a = 0.0f;
#pragma unroll
    for (int j = 0; j < 32; ++j) a = fmaxf(a, codec::abs_f32(x[j]));
    return a;
}

template <In T>
__global__ void __launch_bounds__(kThreads) mxfp4_kernel(const void* w, int64_t n_blocks, uint4* packed, uint8_t* scales) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < n_blocks; b += stride) {
        float x[32];
        load_elems<T, 32>(w, b * 32, x);
        const int e = format::mx_block_exponent(mx_block_amax<T>(x) * format::kRecip6);
        const float pow2 = format::mx_pow2(e);
        uint32_t word[4] = {0, 0, 0, 0};
#pragma unroll
        for (int j = 0; j < 32; ++j) word[j / 8] |= static_cast<uint32_t>(format::mxfp4_nibble(x[j], pow2)) << (4 * (j % 8));
        packed[b] = make_uint4(word[0], word[1], word[2], word[3]);
        scales[b] = codec::e8m0_from_exponent(e);
    }
}

template <In T>
__global__ void __launch_bounds__(kThreads) mxfp8_kernel(const void* w, int64_t n_blocks, uint4* codes, uint8_t* scales) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < n_blocks; b += stride) {
        float x[32];
        load_elems<T, 32>(w, b * 32, x);
        const int e = format::mx_block_exponent(mx_block_amax<T>(x) * format::kRecip448);
        const float inv = format::mx_pow2(-e);
        uint32_t word[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma unroll
        for (int j = 0; j < 32; ++j) word[j / 4] |= static_cast<uint32_t>(format::mxfp8_code(x[j], inv)) << (8 * (j % 4));
        codes[2 * b] = make_uint4(word[0], word[1], word[2], word[3]);
        codes[2 * b + 1] = make_uint4(word[4], word[5], word[6], word[7]);
        scales[b] = codec::e8m0_from_exponent(e);
    }
}

// bf16 MXFP8 through the process-wide tables (format/mx_tables.h): block exponent from the amax
// pattern, four codes per two words by lookup; blocks whose exponent the tables do not cover are
// computed.
__device__ format::MxTables g_mx_tables;

// Block b's 32 bf16 patterns as 16 words; returns the block's max magnitude pattern.
__device__ __forceinline__ uint32_t load_mx_block_bf16(const uint4* v, int64_t b, uint32_t (&raw)[16]) {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
        const uint4 q = __ldg(v + 4 * b + k);
        raw[4 * k] = q.x, raw[4 * k + 1] = q.y, raw[4 * k + 2] = q.z, raw[4 * k + 3] = q.w;
    }
    uint32_t m = 0;
#pragma unroll
    for (int k = 0; k < 16; ++k) m = __vmaxu2(m, raw[k] & 0x7FFF7FFFu);
    return max(m & 0xFFFFu, m >> 16);
}

__global__ void __launch_bounds__(kThreads) mxfp8_table_kernel(const uint16_t* w, int64_t n_blocks, uint4* codes,
                                                                uint8_t* scales) {
    __shared__ __align__(16) uint8_t table[format::kMxfp8CodeLen + 16];
    const uint4* src = reinterpret_cast<const uint4*>(g_mx_tables.codes);
    for (int i = threadIdx.x; i < (format::kMxfp8CodeLen + 16) / 16; i += blockDim.x)
        reinterpret_cast<uint4*>(table)[i] = src[i];
    const uint32_t lo = g_mx_tables.lo, hi = g_mx_tables.hi;
    __syncthreads();
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    const uint4* v = reinterpret_cast<const uint4*>(w);
    for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < n_blocks; b += stride) {
        uint32_t raw[16];
        const int e = g_mx_tables.exponent[load_mx_block_bf16(v, b, raw)];
        uint32_t word[8];
        if (format::mxfp8_table_covers(e, lo, hi)) {
#pragma unroll
            for (int k = 0; k < 8; ++k) word[k] = format::mxfp8_table_codes4(raw[2 * k], raw[2 * k + 1], e, lo, hi, table);
        } else {
            const float inv = format::mx_pow2(-e);
#pragma unroll
            for (int k = 0; k < 8; ++k) {
                word[k] = 0;
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const uint32_t pair = raw[2 * k + j / 2];
                    const uint16_t h = static_cast<uint16_t>(j % 2 ? pair >> 16 : pair & 0xFFFFu);
                    word[k] |= static_cast<uint32_t>(format::mxfp8_code(codec::bf16_to_float(h), inv)) << (8 * j);
                }
            }
        }
        codes[2 * b] = make_uint4(word[0], word[1], word[2], word[3]);
        codes[2 * b + 1] = make_uint4(word[4], word[5], word[6], word[7]);
        scales[b] = codec::e8m0_from_exponent(e);
    }
}

// bf16 MXFP4 through the same tables: E2M1 index of each element by lookup (sign from the word).
__global__ void __launch_bounds__(kThreads) mxfp4_table_kernel(const uint16_t* w, int64_t n_blocks, uint4* packed,
                                                                uint8_t* scales) {
    __shared__ __align__(16) uint8_t table[2 * format::kMxfp4Half];
    const uint4* src = reinterpret_cast<const uint4*>(g_mx_tables.nibbles4);
    for (int i = threadIdx.x; i < 2 * format::kMxfp4Half / 16; i += blockDim.x) reinterpret_cast<uint4*>(table)[i] = src[i];
    const uint32_t lo4 = g_mx_tables.lo4, hi4 = g_mx_tables.hi4;
    __syncthreads();
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    const uint4* v = reinterpret_cast<const uint4*>(w);
    for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < n_blocks; b += stride) {
        uint32_t raw[16];
        const int e = g_mx_tables.exponent4[load_mx_block_bf16(v, b, raw)];
        uint32_t word[4] = {0, 0, 0, 0};
        if (format::mxfp4_table_covers(e, lo4, hi4)) {
#pragma unroll
            for (int k = 0; k < 16; ++k) word[k / 4] |= format::mxfp4_table_byte(raw[k], e, lo4, hi4, table) << (8 * (k % 4));
        } else {
            const float pow2 = format::mx_pow2(e);
#pragma unroll
            for (int j = 0; j < 32; ++j) {
                const uint16_t h = static_cast<uint16_t>(j % 2 ? raw[j / 2] >> 16 : raw[j / 2] & 0xFFFFu);
                word[j / 8] |= static_cast<uint32_t>(format::mxfp4_nibble(codec::bf16_to_float(h), pow2)) << (4 * (j % 8));
            }
        }
        packed[b] = make_uint4(word[0], word[1], word[2], word[3]);
        scales[b] = codec::e8m0_from_exponent(e);
    }
}

// The tables on the current device, copied once per device.
void ensure_mx_tables() {
    static std::mutex mu;
    static std::vector<bool> done;
    int dev = 0;
    MICROSCALE_CUDA_CHECK(cudaGetDevice(&dev));
    std::lock_guard<std::mutex> lock(mu);
    if (static_cast<size_t>(dev) < done.size() && done[static_cast<size_t>(dev)]) return;
    MICROSCALE_CUDA_CHECK(cudaMemcpyToSymbol(g_mx_tables, &format::mx_tables(), sizeof(format::MxTables)));
    // A copy from pageable memory may still be in flight when it returns, and the kernels run on
    // other (non-blocking) streams: wait for it before any kernel may read the tables.
    MICROSCALE_CUDA_CHECK(cudaDeviceSynchronize());
    if (done.size() <= static_cast<size_t>(dev)) done.resize(static_cast<size_t>(dev) + 1, false);
    done[static_cast<size_t>(dev)] = true;
}

// ---- decoders
__global__ void fp8_dequantize_kernel(const uint8_t* codes, float scale, int64_t n, float* out) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = codec::e4m3_to_float(codes[i]) * scale;
}

__global__ void mxfp4_dequantize_kernel(const uint8_t* packed, const uint8_t* scales, int64_t n_blocks, float* out) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n_blocks * 32; i += stride) {
        const uint8_t byte = packed[i / 2];
        const uint8_t nib = (i & 1) ? static_cast<uint8_t>(byte >> 4) : static_cast<uint8_t>(byte & 0xF);
        out[i] = codec::e2m1_to_float(nib) * codec::e8m0_to_float(scales[i / 32]);
    }
}

__global__ void mxfp8_dequantize_kernel(const uint8_t* codes, const uint8_t* scales, int64_t n_blocks, float* out) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n_blocks * 32; i += stride)
        out[i] = codec::e4m3_to_float(codes[i]) * codec::e8m0_to_float(scales[i / 32]);
}

}  // namespace

void launch_amax_bits(const void* w, DType dtype, int64_t n, uint32_t* out_bits, cudaStream_t stream) {
    if (n <= 0) return;
    if (dtype == DType::F32) amax_bits_kernel<true><<<grid_for(n / 4 + 1, kThreads), kThreads, 0, stream>>>(w, n, out_bits);
    else amax_bits_kernel<false><<<grid_for(n / 8 + 1, kThreads), kThreads, 0, stream>>>(w, n, out_bits);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

float amax_from_bits(uint32_t bits, DType dtype) {
    switch (dtype) {
        case DType::BF16: return bits >= 0x7F80u ? -1.0f : codec::bf16_to_float(static_cast<uint16_t>(bits));
        case DType::F16: return bits >= 0x7C00u ? -1.0f : codec::fp16_to_float(static_cast<uint16_t>(bits));
        default: return bits >= 0x7F800000u ? -1.0f : codec::bits_float(bits);
    }
}

void launch_fp8_quantize(const void* w, DType dtype, int64_t n, float scale, const format::Fp8CodeTable* table,
                         uint8_t* codes, cudaStream_t stream) {
    if (n <= 0) return;
    const int grid = grid_for(n / 8 + 1, kThreads);
    switch (dtype) {
        case DType::BF16:
            if (table) fp8_table_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const uint16_t*>(w), n, codec::round_to_bf16(scale), table, codes);
            else fp8_kernel<In::BF16><<<grid, kThreads, 0, stream>>>(w, n, codec::round_to_bf16(scale), codes);
            break;
        case DType::F16: fp8_kernel<In::F16><<<grid, kThreads, 0, stream>>>(w, n, codec::round_to_fp16(scale), codes); break;
        case DType::F32: fp8_kernel<In::F32><<<grid, kThreads, 0, stream>>>(w, n, scale, codes); break;
        default: throw Error("fp8 CUDA kernel: weight dtype must be BF16, F16 or F32");
    }
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_mxfp4_quantize(const void* w, DType dtype, int64_t n_blocks, uint8_t* packed, uint8_t* scales,
                           cudaStream_t stream) {
    if (n_blocks <= 0) return;
    const int grid = grid_for(n_blocks, kThreads);
    uint4* p = reinterpret_cast<uint4*>(packed);
    switch (dtype) {
        case DType::BF16:
            ensure_mx_tables();
            mxfp4_table_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const uint16_t*>(w), n_blocks, p, scales);
            break;
        case DType::F16: mxfp4_kernel<In::F16><<<grid, kThreads, 0, stream>>>(w, n_blocks, p, scales); break;
        case DType::F32: mxfp4_kernel<In::F32><<<grid, kThreads, 0, stream>>>(w, n_blocks, p, scales); break;
        default: throw Error("mxfp4 CUDA kernel: weight dtype must be BF16, F16 or F32");
    }
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_mxfp8_quantize(const void* w, DType dtype, int64_t n_blocks, uint8_t* codes, uint8_t* scales,
                           cudaStream_t stream) {
    if (n_blocks <= 0) return;
    const int grid = grid_for(n_blocks, kThreads);
    uint4* c = reinterpret_cast<uint4*>(codes);
    switch (dtype) {
        case DType::BF16:
            ensure_mx_tables();
            mxfp8_table_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const uint16_t*>(w), n_blocks, c, scales);
            break;
        case DType::F16: mxfp8_kernel<In::F16><<<grid, kThreads, 0, stream>>>(w, n_blocks, c, scales); break;
        case DType::F32: mxfp8_kernel<In::F32><<<grid, kThreads, 0, stream>>>(w, n_blocks, c, scales); break;
        default: throw Error("mxfp8 CUDA kernel: weight dtype must be BF16, F16 or F32");
    }
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_fp8_dequantize(const uint8_t* codes, float scale, int64_t n, float* out, cudaStream_t stream) {
    if (n <= 0) return;
    fp8_dequantize_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(codes, scale, n, out);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_mxfp4_dequantize(const uint8_t* packed, const uint8_t* scales, int64_t n_blocks, float* out,
                             cudaStream_t stream) {
    if (n_blocks <= 0) return;
    mxfp4_dequantize_kernel<<<grid_for(n_blocks * 32, kThreads), kThreads, 0, stream>>>(packed, scales, n_blocks, out);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_mxfp8_dequantize(const uint8_t* codes, const uint8_t* scales, int64_t n_blocks, float* out,
                             cudaStream_t stream) {
    if (n_blocks <= 0) return;
    mxfp8_dequantize_kernel<<<grid_for(n_blocks * 32, kThreads), kThreads, 0, stream>>>(codes, scales, n_blocks, out);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

}  // namespace microscale::cuda
