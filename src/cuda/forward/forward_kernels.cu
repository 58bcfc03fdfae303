// Forward-pass kernels, written to be obviously the CPU's math (src/model/forward/ops.cpp) in the
// same fp32 operation order where it is cheap to keep it: RMSNorm as w * (x * (1 / sqrt(mean +
// eps))), RoPE as x1*c - x2*s / x2*c + x1*s, SwiGLU as g / (1 + exp(-g)) * u. Reductions (sums of
// squares, softmax sums) run in a different order than the CPU, so results agree to rounding, not
// bits. The attention kernel is a plain tiled one with online softmax (v1: correctness first):
// a block is 16 query rows of one head of one sequence, one warp per query row; key/value tiles
// of 32 rows are staged in shared memory, lane j scores key j of the tile, and every lane keeps
// head_dim/32 output accumulators.
// No fmt here: its headers do not compile in nvcc's C++20 host pass.
#include <cmath>

#include "cuda/check.cuh"
#include "cuda/forward/forward_kernels.cuh"
#include "format/codec/bf16.h"

namespace microscale::cuda::fwd {
namespace {

constexpr unsigned kFull = 0xffffffffu;
constexpr int kThreads = 256;

__device__ inline float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
    return v;
}

__device__ inline float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
    return v;
}

// Sum (or max) over the block, returned to every thread. blockDim.x is a multiple of 32.
template <bool kMax>
__device__ float block_reduce(float v) {
    __shared__ float part[32];
    const int lane = static_cast<int>(threadIdx.x & 31), warp = static_cast<int>(threadIdx.x >> 5);
    const int warps = static_cast<int>(blockDim.x >> 5);
    v = kMax ? warp_max(v) : warp_sum(v);
    __syncthreads();  // part[] may still be read by a previous call
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float w = lane < warps ? part[lane] : 0.0f;  // 0 is the identity of both (max over |x| >= 0)
        w = kMax ? warp_max(w) : warp_sum(w);
        if (lane == 0) part[0] = w;
    }
    __syncthreads();
    return part[0];
}

unsigned grid_for(int64_t n) {
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > (1 << 20) ? (1 << 20) : blocks));
}

__global__ void k_rms_norm(const float* x, int64_t dim, int64_t ldx, const float* w, float eps, float* y,
                           int64_t ldy) {
    const float* xr = x + static_cast<int64_t>(blockIdx.x) * ldx;
    float* yr = y + static_cast<int64_t>(blockIdx.x) * ldy;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_reduce<false>(ss);
    const float mean = ss / static_cast<float>(dim);
    const float r = 1.0f / sqrtf(mean + eps);
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = w[i] * (xr[i] * r);
}

// One warp per (row, head).
__global__ void k_head_rms_norm(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t ldx,
                                const float* w, float eps) {
    const int64_t task = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (task >= rows * heads) return;
    const int lane = static_cast<int>(threadIdx.x & 31);
    float* p = x + (task / heads) * ldx + (task % heads) * head_dim;
    float ss = 0.0f;
    for (int64_t i = lane; i < head_dim; i += 32) ss += p[i] * p[i];
    ss = warp_sum(ss);
    const float r = 1.0f / sqrtf(ss / static_cast<float>(head_dim) + eps);
    for (int64_t i = lane; i < head_dim; i += 32) p[i] = w[i] * (p[i] * r);
}

__global__ void k_rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t ldx, const float* cos,
                       const float* sin, int64_t half) {
    const int64_t n = rows * heads * half;
    for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
         idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t i = idx % half, h = (idx / half) % heads, t = idx / (half * heads);
        float* p = x + t * ldx + h * head_dim;
        const float c = cos[t * half + i], s = sin[t * half + i];
        const float x1 = p[i], x2 = p[i + half];
        p[i] = x1 * c - x2 * s;
        p[i + half] = x2 * c + x1 * s;
    }
}

__global__ void k_swiglu(const float* gu, int64_t rows, int64_t inter, float* out) {
    const int64_t n = rows * inter;
    for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
         idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t r = idx / inter, i = idx % inter;
        const float g = gu[r * 2 * inter + i], u = gu[r * 2 * inter + inter + i];
        out[idx] = g / (1.0f + expf(-g)) * u;
    }
}

__global__ void k_add_bias(float* y, int64_t rows, int64_t cols, int64_t ldy, const float* bias) {
    const int64_t n = rows * cols;
    for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
         idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t r = idx / cols, c = idx % cols;
        y[r * ldy + c] += bias[c];
    }
}

__global__ void k_to_bf16(const float* src, int64_t rows, int64_t cols, int64_t lds, uint16_t* dst) {
    const int64_t n = rows * cols;
    for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
         idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t r = idx / cols, c = idx % cols;
        dst[idx] = codec::bf16_from_float(src[r * lds + c]);
    }
}

// Non-negative floats order like their bit patterns, so an unsigned atomicMax is a float max.
__global__ void k_amax(const float* x, int64_t rows, int64_t cols, int64_t ld, float* out0, float* out1,
                       float* out2) {
    const int64_t n = rows * cols;
    float m = 0.0f;
    for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
         idx += static_cast<int64_t>(gridDim.x) * blockDim.x)
        m = fmaxf(m, fabsf(x[(idx / cols) * ld + idx % cols]));  // fmaxf drops NaN, as std::fmax
    m = block_reduce<true>(m);
    if (threadIdx.x == 0) {
        const unsigned bits = __float_as_uint(m);
        if (out0) atomicMax(reinterpret_cast<unsigned*>(out0), bits);
        if (out1) atomicMax(reinterpret_cast<unsigned*>(out1), bits);
        if (out2) atomicMax(reinterpret_cast<unsigned*>(out2), bits);
    }
}

// --- fused kernels of the BF16 forward: one pass each instead of op + amax + bf16 cast ---

__device__ inline void atomic_amax3(float m, float* a0, float* a1, float* a2) {
    const unsigned bits = __float_as_uint(m);
    if (a0) atomicMax(reinterpret_cast<unsigned*>(a0), bits);
    if (a1) atomicMax(reinterpret_cast<unsigned*>(a1), bits);
    if (a2) atomicMax(reinterpret_cast<unsigned*>(a2), bits);
}

// N consecutive values as fp32 (N = 8: one or two 16-byte loads; the caller guarantees alignment).
template <int N>
__device__ inline void load_n(const float* __restrict__ p, float v[N]) {
    if constexpr (N == 8) {
        const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
    } else {
        for (int i = 0; i < N; ++i) v[i] = p[i];
    }
}
template <int N>
__device__ inline void load_n(const uint16_t* __restrict__ p, float v[N]) {
    if constexpr (N == 8) {
        const uint4 a = *reinterpret_cast<const uint4*>(p);
        const uint32_t w[4] = {a.x, a.y, a.z, a.w};
        for (int i = 0; i < 4; ++i) {
            v[2 * i] = codec::bf16_to_float(static_cast<uint16_t>(w[i] & 0xffffu));
            v[2 * i + 1] = codec::bf16_to_float(static_cast<uint16_t>(w[i] >> 16));
        }
    } else {
        for (int i = 0; i < N; ++i) v[i] = codec::bf16_to_float(p[i]);
    }
}
// bf16 (RNE) of N values, one 16-byte store for N = 8.
template <int N>
__device__ inline void store_bf16_n(uint16_t* __restrict__ p, const float v[N]) {
    if constexpr (N == 8) {
        uint32_t w[4];
        for (int i = 0; i < 4; ++i)
            w[i] = static_cast<uint32_t>(codec::bf16_from_float(v[2 * i])) |
                   (static_cast<uint32_t>(codec::bf16_from_float(v[2 * i + 1])) << 16);
        *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
    } else {
        for (int i = 0; i < N; ++i) p[i] = codec::bf16_from_float(v[i]);
    }
}

// One block per row: the fp32 RMSNorm of k_rms_norm, its max |y| to the observers, y as bf16.
// N = 8 when dim and the row strides are multiples of 8 (vector loads and stores).
template <int N>
__global__ void k_rms_norm_bf16(const float* __restrict__ x, int dim, int64_t ldx, const float* __restrict__ w,
                                float eps, uint16_t* __restrict__ y, int64_t ldy, float* a0, float* a1, float* a2) {
    const float* xr = x + static_cast<int64_t>(blockIdx.x) * ldx;
    uint16_t* yr = y + static_cast<int64_t>(blockIdx.x) * ldy;
    float ss = 0.0f;
    for (int i = static_cast<int>(threadIdx.x) * N; i < dim; i += static_cast<int>(blockDim.x) * N) {
        float v[N];
        load_n<N>(xr + i, v);
        for (int e = 0; e < N; ++e) ss += v[e] * v[e];
    }
    ss = block_reduce<false>(ss);
    const float r = 1.0f / sqrtf(ss / static_cast<float>(dim) + eps);
    float m = 0.0f;
    for (int i = static_cast<int>(threadIdx.x) * N; i < dim; i += static_cast<int>(blockDim.x) * N) {
        float v[N], g[N];
        load_n<N>(xr + i, v);
        load_n<N>(w + i, g);
        for (int e = 0; e < N; ++e) {
            v[e] = g[e] * (v[e] * r);
            m = fmaxf(m, fabsf(v[e]));
        }
        store_bf16_n<N>(yr + i, v);
    }
    if (a0 || a1 || a2) {
        m = block_reduce<true>(m);
        if (threadIdx.x == 0) atomic_amax3(m, a0, a1, a2);
    }
}

// One block per row of q|k|v (fp32, dense, ld = qd + 2 kvd): RoPE on the q and k heads as k_rope,
// the whole row written as bf16, max |k| (after RoPE) and max |v| to the KV observers. Each
// thread takes N consecutive columns; N = 8 needs head_dim and half to be multiples of 8, so that
// a chunk never straddles the rotated halves.
template <int N>
__global__ void k_rope_qkv_bf16(const float* __restrict__ qkv, int ld, int qd, int kvd, int head_dim, int half,
                                const float* __restrict__ cos, const float* __restrict__ sin,
                                uint16_t* __restrict__ out, float* k_amax, float* v_amax) {
    const int64_t t = blockIdx.x;
    const float* row = qkv + t * ld;
    const float* cs = cos + t * half;
    const float* sn = sin + t * half;
    float km = 0.0f, vm = 0.0f;
    for (int col = static_cast<int>(threadIdx.x) * N; col < ld; col += static_cast<int>(blockDim.x) * N) {
        float x[N];
        load_n<N>(row + col, x);
        if (col < qd + kvd) {
            const int dd = col % head_dim;  // qd is a multiple of head_dim
            if (dd < 2 * half) {
                const bool first = dd < half;
                const int i = first ? dd : dd - half;
                float other[N], c[N], sv[N];
                load_n<N>(row + (first ? col + half : col - half), other);
                load_n<N>(cs + i, c);
                load_n<N>(sn + i, sv);
                // first half: x1 c - x2 s (x1 = x); second half: x2 c + x1 s (x2 = x)
                for (int e = 0; e < N; ++e) x[e] = first ? x[e] * c[e] - other[e] * sv[e] : x[e] * c[e] + other[e] * sv[e];
            }
            if (col >= qd)
                for (int e = 0; e < N; ++e) km = fmaxf(km, fabsf(x[e]));
        } else {
            for (int e = 0; e < N; ++e) vm = fmaxf(vm, fabsf(x[e]));
        }
        store_bf16_n<N>(out + t * ld + col, x);
    }
    if (k_amax) {
        km = block_reduce<true>(km);
        if (threadIdx.x == 0) atomic_amax3(km, k_amax, nullptr, nullptr);
    }
    if (v_amax) {
        vm = block_reduce<true>(vm);
        if (threadIdx.x == 0) atomic_amax3(vm, v_amax, nullptr, nullptr);
    }
}

// One block per row: silu(g) · u as k_swiglu (gate|up fp32 or bf16), its max |.| to the
// down_proj observer, bf16 out. N = 8 when the intermediate size is a multiple of 8.
template <int N, class In>
__global__ void k_swiglu_bf16(const In* __restrict__ gu, int inter, uint16_t* __restrict__ out, float* amax) {
    const int64_t r = blockIdx.x;
    const In* g = gu + r * 2 * inter;
    const In* u = g + inter;
    uint16_t* o = out + r * inter;
    float m = 0.0f;
    for (int i = static_cast<int>(threadIdx.x) * N; i < inter; i += static_cast<int>(blockDim.x) * N) {
        float gv[N], uv[N];
        load_n<N>(g + i, gv);
        load_n<N>(u + i, uv);
        for (int e = 0; e < N; ++e) {
            gv[e] = gv[e] / (1.0f + expf(-gv[e])) * uv[e];
            m = fmaxf(m, fabsf(gv[e]));
        }
        store_bf16_n<N>(o + i, gv);
    }
    if (amax) {
        m = block_reduce<true>(m);
        if (threadIdx.x == 0) atomic_amax3(m, amax, nullptr, nullptr);
    }
}

// One block per token: out[t] = fp32(table[ids[t]]) (bf16 rows of `dim`).
__global__ void k_embed_bf16(const uint16_t* table, const int32_t* ids, int dim, float* out) {
    const int64_t t = blockIdx.x;
    const uint16_t* row = table + static_cast<int64_t>(ids[t]) * dim;
    for (int i = static_cast<int>(threadIdx.x); i < dim; i += static_cast<int>(blockDim.x))
        out[t * dim + i] = codec::bf16_to_float(row[i]);
}

constexpr int kAttnQ = 16;    // query rows per block, one warp each
constexpr int kAttnK = 32;    // keys per shared-memory tile, one per lane
constexpr int kAttnMaxD = 256;

size_t attention_smem_bytes(int64_t d) {
    return static_cast<size_t>(kAttnK * (d + 1) + kAttnK * d + kAttnQ * d) * sizeof(float);
}

__global__ void __launch_bounds__(kAttnQ * 32) k_causal_attention(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv,
                                   const int64_t* offsets, int64_t heads, int64_t kv_heads, int64_t d,
                                   int64_t window, float scaling, float* out, int64_t ldo) {
    extern __shared__ float smem[];
    float* ks = smem;                     // [kAttnK][d + 1] (odd stride: lane j reads row j conflict-free)
    float* vs = ks + kAttnK * (d + 1);    // [kAttnK][d]
    float* qs = vs + kAttnK * d;          // [kAttnQ][d]
    const int64_t s = blockIdx.z, h = blockIdx.y;
    const int64_t row0 = offsets[s], len = offsets[s + 1] - row0;
    const int64_t q0 = static_cast<int64_t>(blockIdx.x) * kAttnQ;
    if (q0 >= len) return;  // uniform over the block
    const int warp = static_cast<int>(threadIdx.x >> 5), lane = static_cast<int>(threadIdx.x & 31);
    const int64_t kvh = h / (heads / kv_heads);
    const int64_t i = q0 + warp;  // this warp's query position in the sequence
    const bool active = i < len;  // uniform over the warp
    const int64_t j0 = window > 0 ? (i - window + 1 > 0 ? i - window + 1 : 0) : 0;

    for (int64_t idx = threadIdx.x; idx < kAttnQ * d; idx += blockDim.x) {
        const int64_t r = idx / d, c = idx % d;
        qs[idx] = q0 + r < len ? q[(row0 + q0 + r) * ldq + h * d + c] : 0.0f;
    }
    // Keys any query of the block can see.
    const int64_t jhi = (q0 + kAttnQ - 1 < len - 1) ? q0 + kAttnQ - 1 : len - 1;
    const int64_t jlo = window > 0 ? (q0 - window + 1 > 0 ? q0 - window + 1 : 0) : 0;

    float m = -INFINITY, l = 0.0f;
    float acc[kAttnMaxD / 32];
#pragma unroll
    for (int e = 0; e < kAttnMaxD / 32; ++e) acc[e] = 0.0f;

    for (int64_t t0 = jlo; t0 <= jhi; t0 += kAttnK) {
        __syncthreads();  // the previous tile (and qs on the first pass) is complete / consumed
        for (int64_t idx = threadIdx.x; idx < kAttnK * d; idx += blockDim.x) {
            const int64_t r = idx / d, c = idx % d, j = t0 + r;
            float kx = 0.0f, vx = 0.0f;
            if (j <= jhi) {
                kx = k[(row0 + j) * ldkv + kvh * d + c];
                vx = v[(row0 + j) * ldkv + kvh * d + c];
            }
            ks[r * (d + 1) + c] = kx;
            vs[r * d + c] = vx;
        }
        __syncthreads();
        if (!active) continue;
        const int64_t j = t0 + lane;
        float score = -INFINITY;
        if (j >= j0 && j <= i) {
            const float* qr = qs + warp * d;
            const float* kr = ks + lane * (d + 1);
            float dot = 0.0f;
            for (int64_t c = 0; c < d; ++c) dot += qr[c] * kr[c];
            score = dot * scaling;
        }
        const float tile_max = warp_max(score);
        if (tile_max == -INFINITY) continue;  // no visible key in this tile for this query
        const float m_new = fmaxf(m, tile_max);
        const float p = score == -INFINITY ? 0.0f : expf(score - m_new);
        const float corr = m == -INFINITY ? 0.0f : expf(m - m_new);
        l = l * corr + warp_sum(p);
#pragma unroll
        for (int e = 0; e < kAttnMaxD / 32; ++e) acc[e] *= corr;
        for (int jj = 0; jj < kAttnK; ++jj) {
            const float pj = __shfl_sync(kFull, p, jj);
            if (pj == 0.0f) continue;
#pragma unroll
            for (int e = 0; e < kAttnMaxD / 32; ++e) {
                const int64_t c = lane + 32 * e;
                if (c < d) acc[e] += pj * vs[jj * d + c];
            }
        }
        m = m_new;
    }
    if (!active) return;
#pragma unroll
    for (int e = 0; e < kAttnMaxD / 32; ++e) {
        const int64_t c = lane + 32 * e;
        if (c < d) out[(row0 + i) * ldo + h * d + c] = acc[e] / l;
    }
}

}  // namespace

void launch_rms_norm(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* w, float eps, float* y,
                     int64_t ldy, cudaStream_t stream) {
    if (rows <= 0) return;
    k_rms_norm<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, dim, ldx, w, eps, y, ldy);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_head_rms_norm(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t ldx, const float* w,
                          float eps, cudaStream_t stream) {
    const int64_t tasks = rows * heads;
    if (tasks <= 0) return;
    const int64_t per_block = kThreads / 32;
    k_head_rms_norm<<<static_cast<unsigned>((tasks + per_block - 1) / per_block), kThreads, 0, stream>>>(
        x, rows, heads, head_dim, ldx, w, eps);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t ldx, const float* cos,
                 const float* sin, int64_t half, cudaStream_t stream) {
    if (rows <= 0) return;
    k_rope<<<grid_for(rows * heads * half), kThreads, 0, stream>>>(x, rows, heads, head_dim, ldx, cos, sin, half);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_swiglu(const float* gu, int64_t rows, int64_t intermediate, float* out, cudaStream_t stream) {
    if (rows <= 0) return;
    k_swiglu<<<grid_for(rows * intermediate), kThreads, 0, stream>>>(gu, rows, intermediate, out);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_add_bias(float* y, int64_t rows, int64_t cols, int64_t ldy, const float* bias, cudaStream_t stream) {
    if (rows <= 0) return;
    k_add_bias<<<grid_for(rows * cols), kThreads, 0, stream>>>(y, rows, cols, ldy, bias);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_to_bf16(const float* src, int64_t rows, int64_t cols, int64_t lds, uint16_t* dst, cudaStream_t stream) {
    if (rows <= 0) return;
    k_to_bf16<<<grid_for(rows * cols), kThreads, 0, stream>>>(src, rows, cols, lds, dst);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_amax(const float* x, int64_t rows, int64_t cols, int64_t ld, float* out0, float* out1, float* out2,
                 cudaStream_t stream) {
    if (rows <= 0 || cols <= 0) return;
    const int64_t n = rows * cols;
    const unsigned blocks = grid_for(n) > 1024 ? 1024 : grid_for(n);
    k_amax<<<blocks, kThreads, 0, stream>>>(x, rows, cols, ld, out0, out1, out2);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_rms_norm_bf16(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* w, float eps,
                          uint16_t* y, int64_t ldy, float* amax0, float* amax1, float* amax2, cudaStream_t stream) {
    if (rows <= 0) return;
    const unsigned grid = static_cast<unsigned>(rows);
    const int d = static_cast<int>(dim);
    if (dim % 8 == 0 && ldx % 8 == 0 && ldy % 8 == 0)
        k_rms_norm_bf16<8><<<grid, kThreads, 0, stream>>>(x, d, ldx, w, eps, y, ldy, amax0, amax1, amax2);
    else
        k_rms_norm_bf16<1><<<grid, kThreads, 0, stream>>>(x, d, ldx, w, eps, y, ldy, amax0, amax1, amax2);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_rope_qkv_bf16(const float* qkv, int64_t rows, int64_t q_dim, int64_t kv_dim, int64_t head_dim,
                          const float* cos, const float* sin, int64_t half, uint16_t* out, float* k_amax,
                          float* v_amax, cudaStream_t stream) {
    if (rows <= 0) return;
    const int ld = static_cast<int>(q_dim + 2 * kv_dim), qd = static_cast<int>(q_dim), kvd = static_cast<int>(kv_dim);
    const int d = static_cast<int>(head_dim), hf = static_cast<int>(half);
    const unsigned grid = static_cast<unsigned>(rows);
    if (head_dim % 8 == 0 && half % 8 == 0)
        k_rope_qkv_bf16<8><<<grid, kThreads, 0, stream>>>(qkv, ld, qd, kvd, d, hf, cos, sin, out, k_amax, v_amax);
    else
        k_rope_qkv_bf16<1><<<grid, kThreads, 0, stream>>>(qkv, ld, qd, kvd, d, hf, cos, sin, out, k_amax, v_amax);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_swiglu_bf16(const void* gu, bool gu_bf16, int64_t rows, int64_t intermediate, uint16_t* out, float* amax,
                        cudaStream_t stream) {
    if (rows <= 0) return;
    const int inter = static_cast<int>(intermediate);
    const unsigned grid = static_cast<unsigned>(rows);
    const bool vec = intermediate % 8 == 0;
    const auto* g16 = static_cast<const uint16_t*>(gu);
    const auto* g32 = static_cast<const float*>(gu);
    if (gu_bf16 && vec) k_swiglu_bf16<8><<<grid, kThreads, 0, stream>>>(g16, inter, out, amax);
    else if (gu_bf16) k_swiglu_bf16<1><<<grid, kThreads, 0, stream>>>(g16, inter, out, amax);
    else if (vec) k_swiglu_bf16<8><<<grid, kThreads, 0, stream>>>(g32, inter, out, amax);
    else k_swiglu_bf16<1><<<grid, kThreads, 0, stream>>>(g32, inter, out, amax);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_embed_bf16(const uint16_t* table, const int32_t* ids, int64_t tokens, int64_t dim, float* out,
                       cudaStream_t stream) {
    if (tokens <= 0) return;
    k_embed_bf16<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(table, ids, static_cast<int>(dim), out);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

void launch_causal_attention(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv,
                             const int64_t* offsets, int64_t seqs, int64_t max_len, int64_t heads, int64_t kv_heads,
                             int64_t head_dim, int64_t window, float scaling, float* out, int64_t ldo,
                             cudaStream_t stream) {
    if (seqs <= 0 || max_len <= 0) return;
    if (head_dim > kAttnMaxD || head_dim < 1)
        throw Error("GPU attention: head_dim " + std::to_string(head_dim) + " is not in [1, 256]");
    if (seqs > 65535 || heads > 65535)
        throw Error("GPU attention: at most 65535 sequences per batch and 65535 heads");
    const size_t smem = attention_smem_bytes(head_dim);
    if (smem > 48 * 1024)
        MICROSCALE_CUDA_CHECK(cudaFuncSetAttribute(k_causal_attention, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                   static_cast<int>(smem)));
    const dim3 grid(static_cast<unsigned>((max_len + kAttnQ - 1) / kAttnQ), static_cast<unsigned>(heads),
                    static_cast<unsigned>(seqs));
    k_causal_attention<<<grid, kAttnQ * 32, smem, stream>>>(q, ldq, k, v, ldkv, offsets, heads, kv_heads, head_dim,
                                                            window, scaling, out, ldo);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

}  // namespace microscale::cuda::fwd
