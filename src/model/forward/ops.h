// CPU kernels of the Llama-family forward pass (architectures.md §1), fp32 activations and fp32
// accumulation. Matrices are row-major with an explicit row stride (`ld*`, in elements) so that
// q|k|v and gate|up can live side by side in one buffer. Every kernel splits its work over the
// pool by rows, heads or output features; each index writes only its own outputs.
//
// GEMMs go through cblas_sgemm. The pool is the only source of parallelism: the first call sets
// OpenBLAS's own thread count to 1 (its threads would fight the pool's).
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "model/forward/config.h"

namespace microscale::model {

// Cross-checking the GPU forward's BF16-GEMM mode (docs/GPU_FORWARD.md): when on, linear() rounds
// its input x to bf16 (round to nearest even) before the GEMM, causal_attention its q, k and v,
// and swiglu its gate and up inputs, as the GPU does, so the two can be compared tightly (the GPU's bf16 softmax probabilities
// are not emulated). Process-wide, off by default; tests only.
void set_emulate_bf16_gemm_inputs(bool on);

// y[r, 0:out] = x[r, 0:in] · W[out, in]ᵀ (+ bias[out]) for r < rows.
void linear(const float* x, int64_t rows, int64_t in, int64_t ldx, const float* w, int64_t out,
            const float* bias, float* y, int64_t ldy, core::ThreadPool& pool);

// y[r] = w ⊙ (x[r] · rsqrt(mean(x[r]²) + eps)) over `dim` elements; y may alias x.
void rms_norm(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* w, float eps,
              float* y, int64_t ldy, core::ThreadPool& pool);

// RMSNorm over each head of `heads` consecutive head_dim slices of every row (qwen3 q/k_norm).
void head_rms_norm(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t ldx,
                   const float* w, float eps, core::ThreadPool& pool);

// The rotary frequencies inv[rotary_dim/2] of `rope` for a sequence of `seq_len` tokens (dynamic
// NTK depends on it) and the attention factor that multiplies cos and sin. fp32, in the order of
// transformers' modeling_rope_utils.
struct RopeFrequencies {
    std::vector<float> inv_freq;
    float attention_scaling = 1.0f;
};
RopeFrequencies rope_frequencies(const RopeConfig& rope, int64_t rotary_dim,
                                 int64_t max_position_embeddings, int64_t seq_len);

// cos/sin [positions, rotary_dim/2] for positions 0..positions-1, attention factor applied.
struct RopeTable {
    int64_t positions = 0, half = 0;
    std::vector<float> cos, sin;
};
RopeTable rope_table(const RopeFrequencies& f, int64_t positions);

// Half-split ("rotate_half") RoPE on the first rotary_dim dims of each head of rows
// [0, tokens), the row t at position pos0 + t; dims rotary_dim..head_dim pass through.
void apply_rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t ldx,
                const RopeTable& table, int64_t pos0, core::ThreadPool& pool);

// out[r, i] = silu(gu[r, i]) · gu[r, I + i] for the gate|up rows of `gu` ([rows, 2I]).
void swiglu(const float* gu, int64_t rows, int64_t intermediate, float* out, core::ThreadPool& pool);

// Causal GQA attention over the sequences of a batch: sequence s is rows
// [offsets[s], offsets[s+1]) of q ([*, heads*d], stride ldq), k and v ([*, kv_heads*d], stride
// ldkv), written to out ([*, heads*d], stride ldo). Query head h reads KV head h / (heads /
// kv_heads). window > 0: a query sees at most `window` keys, itself included. Softmax in fp32
// with scores scaled by `scaling`.
void causal_attention(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv,
                      const std::vector<int64_t>& offsets, int64_t heads, int64_t kv_heads,
                      int64_t head_dim, int64_t window, float scaling, float* out, int64_t ldo,
                      core::ThreadPool& pool);

}  // namespace microscale::model
