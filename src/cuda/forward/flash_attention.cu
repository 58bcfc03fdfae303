// Causal GQA attention on the tensor cores (FlashAttention-2 style, sm_80+ mma.sync): bf16 Q, K
// and V, fp32 scores, fp32 online softmax, bf16 probabilities times bf16 V with fp32 accumulation,
// as torch's bf16 sdpa. A block is 4 warps of 16 or 32 query rows of one head of one sequence;
// K and V tiles of 64 keys are double-buffered in shared memory with cp.async (rows padded by 16
// bytes so ldmatrix reads are conflict-free), the next tile loading while this one computes. The output is normalised in fp32, its max |o| reduced for the
// o_proj input observer, and written as bf16: the o_proj GEMM's input.
//
// Fragment layouts are those of mma.m16n8k16 (PTX ISA "Matrix Fragments for mma.m16n8k16"):
// lane = 4g + t; the fp32 accumulator of a 16x8 tile holds rows g and g+8, columns 2t and 2t+1,
// which is the bf16 A-fragment layout of P for the next product.
// No fmt here: its headers do not compile in nvcc's C++20 host pass.
#include <cuda_bf16.h>

#include <cmath>
#include <string>

#include "cuda/check.cuh"
#include "cuda/forward/flash_attention.cuh"

namespace microscale::cuda::fwd {
namespace {

constexpr int kWarps = 4;
constexpr int kBc = 64;  // keys per tile
constexpr unsigned kFull = 0xffffffffu;

__device__ inline uint32_t smem_addr(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

__device__ inline void ldmatrix_x4(uint32_t r[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}

__device__ inline void ldmatrix_x4_trans(uint32_t r[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}

// c += a · b, a 16x16 bf16 (row), b 16x8 bf16 (col), c 16x8 fp32.
__device__ inline void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ inline void cp_async16(void* smem, const void* gmem) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(smem)), "l"(gmem));
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ inline void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// 2^x for the softmax, flushing results below 2^-126 to 0 (one MUFU op; exp2f keeps denormals
// at several instructions more, and a probability that small cannot change a bf16 product).
__device__ inline float exp2_ftz(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// Two fp32 values as one bf16x2 register, lo in the low half (round to nearest even).
__device__ inline uint32_t pack_bf16(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
}

// kBc rows x D bf16 from global (row stride ld elements) into shared (row stride D + 8); rows at
// or past `valid` are zero (their scores are masked, and 0 x garbage could be NaN).
template <int D, int kRows>
__device__ inline void load_rows(uint16_t* dst, const uint16_t* src, int64_t ld, int valid) {
    constexpr int kChunks = D / 8;  // 16-byte chunks per row
    for (int c = static_cast<int>(threadIdx.x); c < kRows * kChunks; c += kWarps * 32) {
        const int r = c / kChunks, col = (c % kChunks) * 8;
        uint16_t* d = dst + r * (D + 8) + col;
        if (r < valid) cp_async16(d, src + r * ld + col);
        else *reinterpret_cast<uint4*>(d) = make_uint4(0, 0, 0, 0);
    }
}

// MT: 16-row query tiles per warp. Two share every K and V fragment read from shared memory
// (half the ldmatrix traffic per mma), at the cost of registers: used for D <= 64.
template <int D, int MT>
__global__ void __launch_bounds__(kWarps * 32)
    k_flash_attention(const uint16_t* __restrict__ q, int64_t ldq, const uint16_t* __restrict__ k,
                      const uint16_t* __restrict__ v, int64_t ldkv, const int64_t* __restrict__ offsets,
                      int64_t heads, int64_t kv_heads, int64_t window, float scale_log2, uint16_t* __restrict__ out,
                      int64_t ldo, float* amax) {
    constexpr int S = D + 8;  // shared row stride in elements
    constexpr int kBr = 16 * MT * kWarps;
    extern __shared__ __align__(16) uint16_t smem[];
    uint16_t* Qs = smem;
    uint16_t* KV = Qs + kBr * S;  // two stages of [K tile | V tile]
    const auto Ks = [&](int stage) { return KV + stage * 2 * kBc * S; };
    const auto Vs = [&](int stage) { return KV + stage * 2 * kBc * S + kBc * S; };

    const int64_t s = blockIdx.z, h = blockIdx.y;
    const int64_t row0 = offsets[s], len = offsets[s + 1] - row0;
    const int64_t q0 = static_cast<int64_t>(gridDim.x - 1 - blockIdx.x) * kBr;  // long rows first
    if (q0 >= len) return;
    const int warp = static_cast<int>(threadIdx.x >> 5), lane = static_cast<int>(threadIdx.x & 31);
    const int g = lane >> 2, t = lane & 3;
    const int64_t kvh = h / (heads / kv_heads);
    const int64_t jhi = q0 + kBr - 1 < len - 1 ? q0 + kBr - 1 : len - 1;  // last key any row sees
    const int64_t jlo = window > 0 ? (q0 - window + 1 > 0 ? q0 - window + 1 : 0) : 0;
    const uint16_t* kbase = k + row0 * ldkv + kvh * D;
    const uint16_t* vbase = v + row0 * ldkv + kvh * D;
    const auto issue_tile = [&](int64_t t0, int stage) {
        const int valid = static_cast<int>(jhi - t0 + 1 < kBc ? jhi - t0 + 1 : kBc);
        load_rows<D, kBc>(Ks(stage), kbase + t0 * ldkv, ldkv, valid);
        load_rows<D, kBc>(Vs(stage), vbase + t0 * ldkv, ldkv, valid);
        cp_async_commit();
    };

    load_rows<D, kBr>(Qs, q + (row0 + q0) * ldq + h * D, ldq, static_cast<int>(len - q0 < kBr ? len - q0 : kBr));
    issue_tile(jlo, 0);  // one group: Q and the first tile

    // Rows of this thread: qi[mt][0] = row g, qi[mt][1] = row g + 8 of the warp's tile mt.
    const int64_t warp_lo = q0 + warp * 16 * MT, warp_hi = warp_lo + 16 * MT - 1;
    uint32_t qf[MT][D / 16][4];
    float o[MT][D / 8][4];
    float m[MT][2], l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
        m[mt][0] = m[mt][1] = -INFINITY;
        l[mt][0] = l[mt][1] = 0.0f;
#pragma unroll
        for (int n = 0; n < D / 8; ++n) o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0.0f;
    }

    int stage = 0;
    for (int64_t t0 = jlo; t0 <= jhi; t0 += kBc, stage ^= 1) {
        const bool more = t0 + kBc <= jhi;
        if (more) issue_tile(t0 + kBc, stage ^ 1);  // its buffer was released at the end of the last pass
        if (more) cp_async_wait<1>();
        else cp_async_wait<0>();
        __syncthreads();
        if (t0 == jlo) {
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int kk = 0; kk < D / 16; ++kk)
                    ldmatrix_x4(qf[mt][kk], Qs + (warp * 16 * MT + mt * 16 + (lane & 15)) * S + kk * 16 + 8 * (lane >> 4));
        }
        // A warp whose rows all precede the tile, or all left the window, skips it.
        const bool skip = t0 > warp_hi || (window > 0 && t0 + kBc - 1 < warp_lo - window + 1);
        if (!skip) {
            const uint16_t* Kt = Ks(stage);
            const uint16_t* Vt = Vs(stage);
            float sc[MT][kBc / 8][4];
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int n = 0; n < kBc / 8; ++n) sc[mt][n][0] = sc[mt][n][1] = sc[mt][n][2] = sc[mt][n][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
                for (int np = 0; np < kBc / 16; ++np) {
                    uint32_t b[4];
                    const int mid = lane >> 3, r = lane & 7;
                    ldmatrix_x4(b, Kt + (np * 16 + r + 8 * (mid >> 1)) * S + kk * 16 + 8 * (mid & 1));
#pragma unroll
                    for (int mt = 0; mt < MT; ++mt) {
                        mma_bf16(sc[mt][2 * np], qf[mt][kk], b[0], b[1]);
                        mma_bf16(sc[mt][2 * np + 1], qf[mt][kk], b[2], b[3]);
                    }
                }
            }
            // Mask (raw scores): key j is visible to query i iff j <= i and, with a window,
            // j > i - window. Only tiles that cross the diagonal or the window edge need it.
            const bool edge = t0 + kBc - 1 > warp_lo || (window > 0 && t0 < warp_hi - window + 1);
            if (edge) {  // in 32-bit offsets from t0: |i - t0| < window + 2 kBr
                const int w = window > 0 && window < (1 << 30) ? static_cast<int>(window) : (1 << 30);
                const int i0 = static_cast<int>(warp_lo - t0) + g;
#pragma unroll
                for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                    for (int n = 0; n < kBc / 8; ++n)
#pragma unroll
                        for (int e = 0; e < 4; ++e) {
                            const int j = n * 8 + 2 * t + (e & 1), i = i0 + mt * 16 + (e < 2 ? 0 : 8);
                            if (j > i || j <= i - w) sc[mt][n][e] = -INFINITY;
                        }
            }
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
                for (int half = 0; half < 2; ++half) {  // row g (accumulator entries 0, 1) and g + 8 (2, 3)
                    float mx = -INFINITY;
#pragma unroll
                    for (int n = 0; n < kBc / 8; ++n) mx = fmaxf(mx, fmaxf(sc[mt][n][2 * half], sc[mt][n][2 * half + 1]));
                    mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, 1));
                    mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, 2));
                    const float mo = m[mt][half], mn = fmaxf(mo, mx);
                    // Nothing visible yet: the max stays -inf and every p is 0.
                    const float base = mn == -INFINITY ? 0.0f : mn * scale_log2;
                    const float corr = mo == -INFINITY ? 0.0f : exp2_ftz(__fmaf_rn(mo, scale_log2, -base));
                    m[mt][half] = mn;
                    float sum = 0.0f;
#pragma unroll
                    for (int n = 0; n < kBc / 8; ++n)
#pragma unroll
                        for (int e = 2 * half; e < 2 * half + 2; ++e) {
                            const float p = exp2_ftz(__fmaf_rn(sc[mt][n][e], scale_log2, -base));
                            sc[mt][n][e] = p;
                            sum += p;
                        }
                    l[mt][half] = __fmaf_rn(l[mt][half], corr, sum);  // per-thread partial; the row's 4 threads add up at the end
#pragma unroll
                    for (int n = 0; n < D / 8; ++n) {
                        o[mt][n][2 * half] *= corr;
                        o[mt][n][2 * half + 1] *= corr;
                    }
                }
            }
            // O += P V, P (bf16) straight from the score accumulators.
#pragma unroll
            for (int kk = 0; kk < kBc / 16; ++kk) {
                uint32_t a[MT][4];
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    a[mt][0] = pack_bf16(sc[mt][2 * kk][0], sc[mt][2 * kk][1]);
                    a[mt][1] = pack_bf16(sc[mt][2 * kk][2], sc[mt][2 * kk][3]);
                    a[mt][2] = pack_bf16(sc[mt][2 * kk + 1][0], sc[mt][2 * kk + 1][1]);
                    a[mt][3] = pack_bf16(sc[mt][2 * kk + 1][2], sc[mt][2 * kk + 1][3]);
                }
#pragma unroll
                for (int dp = 0; dp < D / 16; ++dp) {
                    uint32_t b[4];
                    const int mid = lane >> 3, r = lane & 7;
                    ldmatrix_x4_trans(b, Vt + (kk * 16 + r + 8 * (mid & 1)) * S + dp * 16 + 8 * (mid >> 1));
#pragma unroll
                    for (int mt = 0; mt < MT; ++mt) {
                        mma_bf16(o[mt][2 * dp], a[mt], b[0], b[1]);
                        mma_bf16(o[mt][2 * dp + 1], a[mt], b[2], b[3]);
                    }
                }
            }
        }
        __syncthreads();  // every warp is done with this stage before the next pass refills it
    }

    float mx = 0.0f;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            float sum = l[mt][half];
            sum += __shfl_xor_sync(kFull, sum, 1);
            sum += __shfl_xor_sync(kFull, sum, 2);
            const int64_t i = warp_lo + mt * 16 + g + 8 * half;
            if (i >= len) continue;
            const float r = 1.0f / sum;
            uint16_t* dst = out + (row0 + i) * ldo + h * D + 2 * t;
#pragma unroll
            for (int n = 0; n < D / 8; ++n) {
                const float x = o[mt][n][2 * half] * r, y = o[mt][n][2 * half + 1] * r;
                mx = fmaxf(mx, fmaxf(fabsf(x), fabsf(y)));
                *reinterpret_cast<uint32_t*>(dst + n * 8) = pack_bf16(x, y);
            }
        }
    if (amax) {
        for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, off));
        if (lane == 0) atomicMax(reinterpret_cast<unsigned*>(amax), __float_as_uint(mx));
    }
}

template <int D, int MT>
void launch_mt(const uint16_t* q, int64_t ldq, const uint16_t* k, const uint16_t* v, int64_t ldkv,
              const int64_t* offsets, int64_t seqs, int64_t max_len, int64_t heads, int64_t kv_heads, int64_t window,
              float scaling, uint16_t* out, int64_t ldo, float* amax, cudaStream_t stream);

template <int D>
void launch_d(const uint16_t* q, int64_t ldq, const uint16_t* k, const uint16_t* v, int64_t ldkv,
              const int64_t* offsets, int64_t seqs, int64_t max_len, int64_t heads, int64_t kv_heads, int64_t window,
              float scaling, uint16_t* out, int64_t ldo, float* amax, cudaStream_t stream) {
    // Two row tiles per warp measured 11% faster at D = 64 on the H200; at D >= 96 they spill.
    constexpr int MT = D <= 64 ? 2 : 1;
    return launch_mt<D, MT>(q, ldq, k, v, ldkv, offsets, seqs, max_len, heads, kv_heads, window, scaling, out, ldo, amax, stream);
}

template <int D, int MT>
void launch_mt(const uint16_t* q, int64_t ldq, const uint16_t* k, const uint16_t* v, int64_t ldkv,
              const int64_t* offsets, int64_t seqs, int64_t max_len, int64_t heads, int64_t kv_heads, int64_t window,
              float scaling, uint16_t* out, int64_t ldo, float* amax, cudaStream_t stream) {
    constexpr int kBr = 16 * MT * kWarps;
    const size_t smem = static_cast<size_t>(kBr + 4 * kBc) * (D + 8) * sizeof(uint16_t);
    if (smem > 48 * 1024)
        MICROSCALE_CUDA_CHECK(cudaFuncSetAttribute(k_flash_attention<D, MT>,
                                                   cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    const dim3 grid(static_cast<unsigned>((max_len + kBr - 1) / kBr), static_cast<unsigned>(heads),
                    static_cast<unsigned>(seqs));
    const float scale_log2 = static_cast<float>(static_cast<double>(scaling) * 1.4426950408889634);
    k_flash_attention<D, MT><<<grid, kWarps * 32, smem, stream>>>(q, ldq, k, v, ldkv, offsets, heads, kv_heads,
                                                                 window, scale_log2, out, ldo, amax);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

}  // namespace

bool flash_attention_supported(int64_t head_dim) {
    return head_dim == 32 || head_dim == 64 || head_dim == 80 || head_dim == 96 || head_dim == 128;
}

void launch_flash_attention(const uint16_t* q, int64_t ldq, const uint16_t* k, const uint16_t* v, int64_t ldkv,
                            const int64_t* offsets, int64_t seqs, int64_t max_len, int64_t heads, int64_t kv_heads,
                            int64_t head_dim, int64_t window, float scaling, uint16_t* out, int64_t ldo, float* amax,
                            cudaStream_t stream) {
    if (seqs <= 0 || max_len <= 0) return;
    if (seqs > 65535 || heads > 65535)
        throw Error("GPU attention: at most 65535 sequences per batch and 65535 heads");
    if (ldq % 8 || ldkv % 8 || ldo % 2)
        throw Error("GPU flash attention: row strides must be multiples of 8 elements");
    switch (head_dim) {
        case 32: return launch_d<32>(q, ldq, k, v, ldkv, offsets, seqs, max_len, heads, kv_heads, window, scaling, out, ldo, amax, stream);
        case 64: return launch_d<64>(q, ldq, k, v, ldkv, offsets, seqs, max_len, heads, kv_heads, window, scaling, out, ldo, amax, stream);
        case 80: return launch_d<80>(q, ldq, k, v, ldkv, offsets, seqs, max_len, heads, kv_heads, window, scaling, out, ldo, amax, stream);
        case 96: return launch_d<96>(q, ldq, k, v, ldkv, offsets, seqs, max_len, heads, kv_heads, window, scaling, out, ldo, amax, stream);
        case 128: return launch_d<128>(q, ldq, k, v, ldkv, offsets, seqs, max_len, heads, kv_heads, window, scaling, out, ldo, amax, stream);
        default: throw Error("GPU flash attention: head_dim " + std::to_string(head_dim) + " is not 32, 64, 80, 96 or 128");
    }
}

}  // namespace microscale::cuda::fwd
