// Launchers of the forward-pass kernels (forward_kernels.cu). Row-major matrices with explicit
// row strides in elements, fp32 activations, everything on `stream`. Each launcher checks its
// launch; errors during execution surface at the next synchronising call.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace microscale::cuda::fwd {

// y[r] = w ⊙ (x[r] · rsqrt(mean(x[r]²) + eps)) over `dim`; y may alias x.
void launch_rms_norm(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* w, float eps,
                     float* y, int64_t ldy, cudaStream_t stream);
// The same over each of `heads` head_dim slices of every row, in place (qwen3 q/k_norm).
void launch_head_rms_norm(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t ldx,
                          const float* w, float eps, cudaStream_t stream);
// Half-split RoPE on the first 2*half dims of each head; row t uses cos/sin[t * half + i].
void launch_rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t ldx, const float* cos,
                 const float* sin, int64_t half, cudaStream_t stream);
// out[r, i] = silu(gu[r, i]) · gu[r, I + i], gu [rows, 2I], out [rows, I].
void launch_swiglu(const float* gu, int64_t rows, int64_t intermediate, float* out, cudaStream_t stream);
// y[r, c] += bias[c] for c < cols.
void launch_add_bias(float* y, int64_t rows, int64_t cols, int64_t ldy, const float* bias, cudaStream_t stream);
// dst[r, c] = bf16(src[r, c]) (round to nearest even), dst dense [rows, cols].
void launch_to_bf16(const float* src, int64_t rows, int64_t cols, int64_t lds, uint16_t* dst, cudaStream_t stream);
// *out_i = max(*out_i, max |x|) for each non-null out_i (x [rows, cols], stride ld); NaN ignored.
void launch_amax(const float* x, int64_t rows, int64_t cols, int64_t ld, float* out0, float* out1,
                 float* out2, cudaStream_t stream);
// Fused BF16-forward kernels: the fp32 result of the op above, its max |.| to each non-null
// observer, written as bf16 (RNE), dense [rows, cols] unless a stride is given.
void launch_rms_norm_bf16(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* w, float eps,
                          uint16_t* y, int64_t ldy, float* amax0, float* amax1, float* amax2, cudaStream_t stream);
// q|k|v rows [rows, q_dim + 2 kv_dim] (dense): RoPE on q and k heads, bf16 copy of the whole row;
// k_amax sees k after RoPE, v_amax sees v.
void launch_rope_qkv_bf16(const float* qkv, int64_t rows, int64_t q_dim, int64_t kv_dim, int64_t head_dim,
                          const float* cos, const float* sin, int64_t half, uint16_t* out, float* k_amax,
                          float* v_amax, cudaStream_t stream);
// gate|up is fp32 or (gu_bf16) bf16.
void launch_swiglu_bf16(const void* gu, bool gu_bf16, int64_t rows, int64_t intermediate, uint16_t* out, float* amax,
                        cudaStream_t stream);
// out[t, :] = fp32 of bf16 row ids[t] of table [*, dim] (ids already range-checked).
void launch_embed_bf16(const uint16_t* table, const int32_t* ids, int64_t tokens, int64_t dim, float* out,
                       cudaStream_t stream);
// Causal GQA attention over a batch of sequences, offsets [seqs + 1] on the device, max_len the
// longest sequence. window > 0: a query sees at most `window` keys (itself included).
// head_dim <= 256.
void launch_causal_attention(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv,
                             const int64_t* offsets, int64_t seqs, int64_t max_len, int64_t heads,
                             int64_t kv_heads, int64_t head_dim, int64_t window, float scaling, float* out,
                             int64_t ldo, cudaStream_t stream);

}  // namespace microscale::cuda::fwd
