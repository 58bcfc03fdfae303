// One Llama-family decoder layer (architectures.md §2 op order): its weights as fp32 copies loaded
// from the checkpoint on their own, so a calibration runner can hold one layer at a time, and its
// forward pass over a batch of token sequences with observer hooks on every linear's input and on
// the post-RoPE keys and values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "model/forward/config.h"
#include "model/layout.h"

namespace microscale::model {

// A batch of sequences laid out row after row: sequence s is rows [offsets[s], offsets[s+1]),
// at positions 0..len-1. offsets[0] = 0; offsets.back() is the token count.
struct TokenBatch {
    std::vector<int64_t> offsets{0};

    int64_t tokens() const { return offsets.back(); }
    int64_t sequences() const { return static_cast<int64_t>(offsets.size()) - 1; }
    int64_t max_length() const;
    void add(int64_t length) { offsets.push_back(offsets.back() + length); }
};

struct LinearWeights {
    int linear = -1;               // index into ModelLayout::linears
    std::string name;              // on-disk module name
    Role role = Role::LINEAR_OTHER;
    int64_t out = 0, in = 0;
    std::vector<float> weight;     // [out, in], fp32 copy; a runner may replace it (fake-quant)
    std::vector<float> bias;       // [out] or empty
};

struct DecoderLayerWeights {
    int layer = -1;
    std::vector<float> input_norm, post_attention_norm;  // [H]
    std::vector<float> q_norm, k_norm;                   // [head_dim] (qwen3) or empty
    // This layer's linears in layout order: q, k, v (or qkv), o, gate, up (or gate_up), down.
    std::vector<LinearWeights> linears;

    const LinearWeights* find(Role role) const;  // nullptr when absent
    const LinearWeights& at(Role role) const;    // throws when absent
    uint64_t bytes() const;
};

// Sees activations as the layer computes them, on the calling thread, for all rows of the batch
// at once. The pointers are valid only during the call.
class LayerObserver {
public:
    virtual ~LayerObserver() = default;
    // The input of `linear` ([rows, linear.in], row stride ld): for q/k/v (and gate/up) the same
    // buffer is shown once per linear.
    virtual void linear_input(const LinearWeights& linear, const float* x, int64_t rows, int64_t ld) {
        (void)linear, (void)x, (void)rows, (void)ld;
    }
    // Keys after k_norm and RoPE, and values, each [rows, kv_heads * head_dim] with row stride ld:
    // what a KV cache stores (k_bmm / v_bmm quantizer inputs).
    virtual void key_values(int layer, const float* k, const float* v, int64_t rows, int64_t cols,
                            int64_t ld) {
        (void)layer, (void)k, (void)v, (void)rows, (void)cols, (void)ld;
    }
    // Deployment's input quantizer (microscale eval): return x to feed the GEMM unchanged, or
    // write the replacement into `scratch` ([rows, ld], same stride) and return scratch.data()
    // (or a buffer of the observer's own that stays valid until its next call).
    // Called after linear_input; q/k/v (gate/up) each receive the original shared buffer.
    virtual const float* transform_linear_input(const LinearWeights& linear, const float* x,
                                                int64_t rows, int64_t ld, std::vector<float>& scratch) {
        (void)linear, (void)rows, (void)ld, (void)scratch;
        return x;
    }
    // A KV-cache quantizer: may rewrite the keys and values in place, after key_values.
    virtual void transform_key_values(int layer, float* k, float* v, int64_t rows, int64_t cols,
                                      int64_t ld) {
        (void)layer, (void)k, (void)v, (void)rows, (void)cols, (void)ld;
    }
};

// fp32 copy of a float tensor (F32, BF16, F16, F64), checked to have `numel` elements.
std::vector<float> load_tensor_f32(const io::Checkpoint& ckpt, const std::string& name, uint64_t numel);
// Rows [row0, row0 + rows) of a 2-D float tensor [*, cols] as fp32 into out[rows * cols].
void load_rows_f32(const io::Checkpoint& ckpt, const std::string& name, int64_t row0, int64_t rows,
                   int64_t cols, float* out);

// The fp32 weight [out, in] of `m`: a float tensor converted, or a quantized export decoded
// exactly as format::dequantize_weight defines it (compressed-tensors' inverted global scale is
// turned back into weight_scale_2 as RN(1/g), what vLLM does on load).
std::vector<float> load_linear_weight(const io::Checkpoint& ckpt, const LinearModule& m);
// A one-element F32 tensor's value.
float load_scalar_f32(const io::Checkpoint& ckpt, const std::string& name);

// The weights of decoder layer `layer` as `layout` names them.
DecoderLayerWeights load_decoder_layer(const io::Checkpoint& ckpt, const ModelLayout& layout,
                                       const ForwardConfig& config, int layer);

// hidden [batch.tokens(), H] is replaced by the layer's output.
void run_decoder_layer(const ForwardConfig& config, const DecoderLayerWeights& weights,
                       const TokenBatch& batch, float* hidden, core::ThreadPool& pool,
                       LayerObserver* observer = nullptr);

}  // namespace microscale::model
