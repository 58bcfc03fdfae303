// Tensor-core causal GQA attention (flash_attention.cu) for the BF16 forward: bf16 q/k/v in,
// bf16 out, fp32 softmax. Same sequence layout and masking as launch_causal_attention.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace microscale::cuda::fwd {

// Head sizes with a compiled kernel (32, 64, 80, 96, 128); others use the fp32 kernel.
bool flash_attention_supported(int64_t head_dim);

// out[row, h*d + c] = bf16(softmax(q_h k_hᵀ · scaling, causal, window) v_h) for the rows of each
// sequence (offsets [seqs + 1] on the device). Row strides ldq/ldkv in elements, multiples of 8.
// amax (optional, device): max(*amax, max |fp32 output|), the o_proj input observer.
void launch_flash_attention(const uint16_t* q, int64_t ldq, const uint16_t* k, const uint16_t* v, int64_t ldkv,
                            const int64_t* offsets, int64_t seqs, int64_t max_len, int64_t heads, int64_t kv_heads,
                            int64_t head_dim, int64_t window, float scaling, uint16_t* out, int64_t ldo, float* amax,
                            cudaStream_t stream);

}  // namespace microscale::cuda::fwd
