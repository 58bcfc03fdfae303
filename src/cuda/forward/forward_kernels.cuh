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
// Causal GQA attention over a batch of sequences, offsets [seqs + 1] on the device, max_len the
// longest sequence. window > 0: a query sees at most `window` keys (itself included).
// head_dim <= 256.
void launch_causal_attention(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv,
                             const int64_t* offsets, int64_t seqs, int64_t max_len, int64_t heads,
                             int64_t kv_heads, int64_t head_dim, int64_t window, float scaling, float* out,
                             int64_t ldo, cudaStream_t stream);

}  // namespace microscale::cuda::fwd
