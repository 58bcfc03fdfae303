// NVFP4 weight quantization on the GPU: one thread per 16-element block, every search of the
// reference (docs/FORMATS.md). Block codes come from the shared nvfp4_block.h rules; elements are
// rounded with the division-free cut table of nvfp4_cuts.h (same nibbles and same losses as the
// reference's IEEE divisions), one table per CTA in shared memory, indexed by the E4M3 code.
// bf16 weights with the host-built lookup tables of nvfp4_lut.h (copied to shared memory per CTA)
// look each element up instead of comparing it seven times; codes the tables do not describe
// keep the cut path.
#include <algorithm>
#include <cstddef>

#include "cuda/check.cuh"
#include "cuda/launch.cuh"
#include "cuda/load.cuh"
#include "cuda/quantize_kernels.cuh"
#include "format/nvfp4_block.h"
#include "format/nvfp4_cuts.h"
#include "format/nvfp4_lut.h"

namespace microscale::cuda {
namespace {

using format::Nvfp4Scales;
using format::Nvfp4Search;

// Cut table row per E4M3 code: up[7], nonzero, value[8]; stride 17 floats so that threads
// reading rows of different codes fall on different shared-memory banks.
constexpr int kCutStride = 17;
constexpr int kPairStride = 8;  // E2m1PairCuts: 8 words, read as two 16-byte loads
constexpr int kCodes = 128;
constexpr int kThreads = 256;

__device__ void fill_cut_table(float* table, uint32_t* pair_table, const Nvfp4Scales& s) {
    static_assert(kPairStride == 8, "pair rows are read as two uint4");
    for (int code = threadIdx.x; code < kCodes; code += blockDim.x) {
        // Code 0x7F is E4M3 NaN and never chosen; its row is a harmless d = 0 row.
        const float d = code < 0x7F ? format::nvfp4_block_divisor(static_cast<uint8_t>(code), s) : 0.0f;
        const format::E2m1Cuts c = format::e2m1_cuts(d);
        float* row = table + code * kCutStride;
        for (int i = 0; i < 7; ++i) row[i] = c.up[i];
        row[7] = c.nonzero;
        for (int i = 0; i < 8; ++i) row[8 + i] = c.value[i];
        const format::E2m1PairCuts p = format::e2m1_pair_cuts(c);
        uint32_t* prow = pair_table + code * kPairStride;
        for (int i = 0; i < 7; ++i) prow[i] = p.up[i];
        prow[7] = p.nonzero;
    }
    __syncthreads();
}

// A code's pair cuts from its 16-byte-aligned row (two shared-memory loads).
__device__ __forceinline__ format::E2m1PairCuts load_pair_cuts(const uint32_t* pair_table, uint8_t code) {
    const uint4* row = reinterpret_cast<const uint4*>(pair_table + code * kPairStride);
    const uint4 a = row[0], b = row[1];
    format::E2m1PairCuts p;
    p.up[0] = a.x, p.up[1] = a.y, p.up[2] = a.z, p.up[3] = a.w;
    p.up[4] = b.x, p.up[5] = b.y, p.up[6] = b.z, p.nonzero = b.w;
    return p;
}

// == nvfp4_block_loss(x, divisor(code)).
__device__ __forceinline__ float block_loss(const float (&x)[16], const float* row) {
    float up[7];
#pragma unroll
    for (int i = 0; i < 7; ++i) up[i] = row[i];
    float loss = 0.0f;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
        const float mag = codec::abs_f32(x[j]);
        const float diff = mag - row[8 + format::e2m1_magnitude_cut(mag, up)];
        loss += diff * diff;
    }
    return loss;
}

// == nvfp4_encode_block(x, divisor(code)) as two little-endian 32-bit words (8 nibbles each).
__device__ __forceinline__ uint2 encode_block(const float (&x)[16], const float* row) {
    float up[7];
#pragma unroll
    for (int i = 0; i < 7; ++i) up[i] = row[i];
    const float nonzero = row[7];
    uint32_t word[2] = {0, 0};
#pragma unroll
    for (int j = 0; j < 16; ++j) {
        const float mag = codec::abs_f32(x[j]);
        const uint32_t neg = (x[j] < 0.0f && mag >= nonzero) ? 0x8u : 0x0u;
        word[j / 8] += (neg | format::e2m1_magnitude_cut(mag, up)) << (4 * (j % 8));
    }
    return make_uint2(word[0], word[1]);
}

// The same two words for bf16 input straight from the loaded bits, two elements per operation.
__device__ __forceinline__ uint2 encode_block_bf16(const uint32_t (&raw)[8], const format::E2m1PairCuts& p) {
    uint32_t word[2] = {0, 0};
#pragma unroll
    for (int k = 0; k < 8; ++k) word[k / 4] |= format::e2m1_byte_bf16_pair(raw[k], p) << (8 * (k % 4));
    return make_uint2(word[0], word[1]);
}

__device__ __forceinline__ void load_raw16_bf16(const void* w, int64_t b, uint32_t (&raw)[8]) {
    const uint4* p = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(w) + b * 16);
    const uint4 q0 = __ldg(p), q1 = __ldg(p + 1);
    raw[0] = q0.x, raw[1] = q0.y, raw[2] = q0.z, raw[3] = q0.w;
    raw[4] = q1.x, raw[5] = q1.y, raw[6] = q1.z, raw[7] = q1.w;
}

// max |w| of a bf16 block from the raw words: an integer max of the magnitude patterns.
__device__ __forceinline__ uint32_t block_amax_bits_bf16(const uint32_t (&raw)[8]) {
    uint32_t m = 0;
#pragma unroll
    for (int k = 0; k < 8; ++k) m = __vmaxu2(m, raw[k] & 0x7FFF7FFFu);
    return max(m & 0xFFFFu, m >> 16);
}

// Candidate k's block code computed from the block amax a (the reference's arithmetic).
template <Nvfp4Search S>
__device__ __forceinline__ uint8_t computed_code(int k, float a, const Nvfp4Scales& s, const float* mult) {
    if constexpr (S == Nvfp4Search::DYNAMIC_MAX) return format::nvfp4_code_dynamic(a, s);
    else if constexpr (S == Nvfp4Search::STATIC_MAX) return format::nvfp4_code_static(a, s);
    else return format::nvfp4_code_static(a * __ldg(mult + k), s);
}

// The block code of the plan's search; code_of(k) gives candidate k's block code (max: k = 0;
// MSE: multiplier k), loss_of(code) a candidate's squared error.
template <Nvfp4Search S, typename Code, typename Loss>
__device__ __forceinline__ uint8_t choose_code(const Nvfp4Scales& s, int n_mult, const Code& code_of,
                                               const Loss& loss_of) {
    if (s.all_zero) return 0x38;
    if constexpr (S == Nvfp4Search::DYNAMIC_MAX || S == Nvfp4Search::STATIC_MAX) {
        return code_of(0);
    } else if constexpr (S == Nvfp4Search::MSE) {
        // A code met before has a loss >= the best so far, and only a strictly smaller loss wins,
        // so skipping repeats changes nothing.
        uint64_t seen_lo = 0, seen_hi = 0;  // codes 0-63, 64-127 (registers, not an indexed array)
        uint8_t best = 0;
        float best_loss = INFINITY;
        for (int k = 0; k < n_mult; ++k) {
            const uint8_t code = code_of(k);
            const uint64_t bit = uint64_t{1} << (code & 63);
            const bool high = code >= 64;
            if ((high ? seen_hi : seen_lo) & bit) continue;
            if (high) seen_hi |= bit;
            else seen_lo |= bit;
            const float loss = loss_of(code);
            if (loss < best_loss) {
                best_loss = loss;
                best = code;
            }
        }
        return best;
    } else {
        uint8_t best = 0x01;
        float best_loss = INFINITY;
        for (int code = 0x01; code <= 0x7E; ++code) {
            const float loss = loss_of(static_cast<uint8_t>(code));
            if (loss < best_loss) {
                best_loss = loss;
                best = static_cast<uint8_t>(code);
            }
        }
        return best;
    }
}

// The searches that evaluate block losses read the tables' decoded values; the max searches
// read the nibbles.
template <Nvfp4Search S>
constexpr size_t lut_smem_bytes() {
    return S == Nvfp4Search::DYNAMIC_MAX || S == Nvfp4Search::STATIC_MAX ? offsetof(format::Nvfp4Lut, values)
                                                                         : offsetof(format::Nvfp4Lut, rows);
}

__device__ void copy_lut(const format::Nvfp4Lut* lut, uint4* dst, size_t bytes) {
    const uint4* src = reinterpret_cast<const uint4*>(lut);
    for (size_t i = threadIdx.x; i < bytes / 16; i += blockDim.x) dst[i] = __ldg(src + i);
}

// LP: how many of a block's 8 bf16 pairs the encode looks up (the rest use the pair cuts): the
// lookups load the L1/shared-memory pipe, the cuts the integer pipe.
template <In T, Nvfp4Search S, int LP>
__global__ void __launch_bounds__(kThreads) nvfp4_quantize_kernel(const void* w, int64_t n_blocks, Nvfp4Scales s,
                                                                   const float* mult, int n_mult,
                                                                   const format::Nvfp4Lut* lut, uint2* packed,
                                                                   uint8_t* scales) {
    __shared__ float table[kCodes * kCutStride];
    __shared__ __align__(16) uint32_t pair_table[kCodes * kPairStride];
    extern __shared__ uint4 lut_smem[];  // the prefix of Nvfp4Lut this search reads (bf16 with tables)
    const bool use_lut = T == In::BF16 && lut != nullptr;
    // Every code on the tables (the usual case): the cut tables are never read, so skip them.
    const bool cuts_needed = !use_lut || LP < 8 || __ldg(&lut->regular_codes) < format::kLutCodes - 1;
    if (use_lut) copy_lut(lut, lut_smem, lut_smem_bytes<S>());
    if (cuts_needed) fill_cut_table(table, pair_table, s);  // ends with __syncthreads()
    else __syncthreads();
    const uint8_t* lut_base = reinterpret_cast<const uint8_t*>(lut_smem);
    const auto* lut_amax = reinterpret_cast<const format::Nvfp4LutAmaxTable*>(lut_base);
    const auto* lut_codes = reinterpret_cast<const format::Nvfp4LutCode*>(lut_base + offsetof(format::Nvfp4Lut, codes));
    const auto* lut_scales = reinterpret_cast<const float*>(lut_base + offsetof(format::Nvfp4Lut, code_scales));
    const uint8_t* lut_amax_codes = lut_base + offsetof(format::Nvfp4Lut, amax_codes);
    const uint8_t* lut_nibbles = lut_base + offsetof(format::Nvfp4Lut, nibbles);
    const auto* lut_values = reinterpret_cast<const float*>(lut_base + offsetof(format::Nvfp4Lut, values));
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if constexpr (T == In::BF16) {
        // The next block's load is issued before this block's arithmetic, so every thread keeps
        // a load in flight while it computes.
        uint32_t next[8];
        if (first < n_blocks) load_raw16_bf16(w, first, next);
        for (int64_t b = first; b < n_blocks; b += stride) {
            uint32_t raw[8];
#pragma unroll
            for (int k = 0; k < 8; ++k) raw[k] = next[k];
            if (b + stride < n_blocks) load_raw16_bf16(w, b + stride, next);
            const uint32_t abits = block_amax_bits_bf16(raw);
            const float a = codec::bf16_to_float(static_cast<uint16_t>(abits));
            const auto code_of = [&](int k) {
                if (use_lut && k < format::kLutAmaxTables) {
                    const int c = format::nvfp4_lut_amax_code(abits, lut_amax[k], lut_amax_codes + k * format::kLutAmaxLen);
                    if (c >= 0) return static_cast<uint8_t>(c);
                }
                return computed_code<S>(k, a, s, mult);
            };
            const uint8_t code = choose_code<S>(s, n_mult, code_of, [&](uint8_t c) {
                if (use_lut) {
                    const format::Nvfp4LutCode lc = lut_codes[c];
                    if (format::nvfp4_lut_regular(lc)) return format::nvfp4_lut_loss_bf16(raw, lc, lut_values, lut_scales[c]);
                }
                return format::nvfp4_block_loss_bf16(raw, load_pair_cuts(pair_table, c), table + c * kCutStride + 8);
            });
            const format::Nvfp4LutCode lc = use_lut ? lut_codes[code] : format::Nvfp4LutCode{};
            if (use_lut && format::nvfp4_lut_regular(lc)) {
                uint32_t word[2] = {0, 0};
                format::E2m1PairCuts p{};
                if constexpr (LP < 8) p = load_pair_cuts(pair_table, code);
#pragma unroll
                for (int k = 0; k < 8; ++k) {
                    const uint32_t byte = k < LP ? format::nvfp4_lut_byte_bf16_pair(raw[k], lc, lut_nibbles)
                                                 : format::e2m1_byte_bf16_pair(raw[k], p);
                    word[k / 4] |= byte << (8 * (k % 4));
                }
                packed[b] = make_uint2(word[0], word[1]);
            } else {
                packed[b] = encode_block_bf16(raw, load_pair_cuts(pair_table, code));
            }
            scales[b] = code;
        }
    } else {
        for (int64_t b = first; b < n_blocks; b += stride) {
            float x[16];
            load_elems<T, 16>(w, b * 16, x);
            float a = 0.0f;
#pragma unroll
            for (int j = 0; j < 16; ++j) a = fmaxf(a, codec::abs_f32(x[j]));
            const uint8_t code = choose_code<S>(
                s, n_mult, [&](int k) { return computed_code<S>(k, a, s, mult); },
                [&](uint8_t c) { return block_loss(x, table + c * kCutStride); });
            packed[b] = encode_block(x, table + code * kCutStride);
            scales[b] = code;
        }
    }
}

// Persistent grid: as many CTAs as fit on the GPU at once (each fills its cut table once).
template <typename K>
int resident_grid(K kernel, int64_t n_items, size_t dynamic_smem) {
    int dev = 0, sms = 0, per_sm = 0;
    MICROSCALE_CUDA_CHECK(cudaGetDevice(&dev));
    MICROSCALE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    MICROSCALE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, dynamic_smem));
    const int64_t want = (n_items + kThreads - 1) / kThreads;
    return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(want, int64_t{sms} * std::max(per_sm, 1))));
}

// The encode's lookup/cut split per search, measured on the H200 (docs/BENCHMARKS.md): the max
// searches run fastest with half the pairs looked up (L1 and integer pipe both ~70-80% busy); the
// loss searches already load the L1 pipe with their value lookups, so their encode uses cuts.
template <Nvfp4Search S>
constexpr int lut_pairs() {
    return S == Nvfp4Search::DYNAMIC_MAX || S == Nvfp4Search::STATIC_MAX ? 4 : 0;
}

template <In T, Nvfp4Search S>
void launch_search(const void* w, int64_t n_blocks, const format::Nvfp4Plan& plan, const float* mult,
                   const format::Nvfp4Lut* lut, uint2* p, uint8_t* scales, cudaStream_t stream) {
    auto kernel = nvfp4_quantize_kernel<T, S, T == In::BF16 ? lut_pairs<S>() : 8>;
    const size_t smem = T == In::BF16 && lut ? lut_smem_bytes<S>() : 0;
    if (smem > 48 * 1024)  // above the default limit only when asked for
        MICROSCALE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    const int grid = resident_grid(kernel, n_blocks, smem);
    kernel<<<grid, kThreads, smem, stream>>>(w, n_blocks, plan.scales, mult, static_cast<int>(plan.multipliers.size()),
                                             T == In::BF16 ? lut : nullptr, p, scales);
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

template <In T>
void launch_typed(const void* w, int64_t n_blocks, const format::Nvfp4Plan& plan, const float* mult,
                  const format::Nvfp4Lut* lut, uint8_t* packed, uint8_t* scales, cudaStream_t stream) {
    uint2* p = reinterpret_cast<uint2*>(packed);
    switch (plan.search) {
        case Nvfp4Search::DYNAMIC_MAX: launch_search<T, Nvfp4Search::DYNAMIC_MAX>(w, n_blocks, plan, mult, lut, p, scales, stream); break;
        case Nvfp4Search::STATIC_MAX: launch_search<T, Nvfp4Search::STATIC_MAX>(w, n_blocks, plan, mult, lut, p, scales, stream); break;
        case Nvfp4Search::MSE: launch_search<T, Nvfp4Search::MSE>(w, n_blocks, plan, mult, lut, p, scales, stream); break;
        case Nvfp4Search::FP8_SWEEP: launch_search<T, Nvfp4Search::FP8_SWEEP>(w, n_blocks, plan, mult, lut, p, scales, stream); break;
    }
}

__global__ void nvfp4_dequantize_kernel(const uint2* packed, const uint8_t* scales, float global_scale,
                                        int64_t n_blocks, float4* out) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < n_blocks; b += stride) {
        const float d = codec::e4m3_to_float(scales[b]) * global_scale;
        const uint2 q = packed[b];
        const uint64_t word = static_cast<uint64_t>(q.x) | (static_cast<uint64_t>(q.y) << 32);
        float v[16];
#pragma unroll
        for (int j = 0; j < 16; ++j) v[j] = codec::e2m1_to_float(static_cast<uint8_t>((word >> (4 * j)) & 0xF)) * d;
#pragma unroll
        for (int k = 0; k < 4; ++k) out[4 * b + k] = make_float4(v[4 * k], v[4 * k + 1], v[4 * k + 2], v[4 * k + 3]);
    }
}

}  // namespace

void launch_nvfp4_quantize(const void* w, DType dtype, int64_t n_blocks, const format::Nvfp4Plan& plan,
                           const float* multipliers, const format::Nvfp4Lut* lut, uint8_t* packed, uint8_t* scales,
                           cudaStream_t stream) {
    if (n_blocks <= 0) return;
    switch (dtype) {
        case DType::BF16: launch_typed<In::BF16>(w, n_blocks, plan, multipliers, lut, packed, scales, stream); break;
        case DType::F16: launch_typed<In::F16>(w, n_blocks, plan, multipliers, nullptr, packed, scales, stream); break;
        case DType::F32: launch_typed<In::F32>(w, n_blocks, plan, multipliers, nullptr, packed, scales, stream); break;
        default: throw Error("nvfp4 CUDA kernel: weight dtype must be BF16, F16 or F32");
    }
}

void launch_nvfp4_dequantize(const uint8_t* packed, const uint8_t* scales, float global_scale, int64_t n_blocks,
                             float* out, cudaStream_t stream) {
    if (n_blocks <= 0) return;
    nvfp4_dequantize_kernel<<<grid_for(n_blocks, 256), 256, 0, stream>>>(reinterpret_cast<const uint2*>(packed), scales,
                                                                          global_scale, n_blocks,
                                                                          reinterpret_cast<float4*>(out));
    MICROSCALE_CUDA_CHECK_LAUNCH();
}

}  // namespace microscale::cuda
