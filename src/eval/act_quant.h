// Running a quantized export as deployed, on the CPU forward pass: the activation and KV-cache
// quantizers a serving engine applies around the GEMMs and the attention, as fake quant in fp32
// (docs/FORMATS.md, "Activation fake quantization in eval"). Weights are decoded at load time by
// model::load_linear_weight; this file only touches activations.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "microscale/format.h"
#include "model/forward/decoder_layer.h"
#include "model/layout.h"

namespace microscale::eval {

// Dynamic NVFP4 of [rows, cols] (row stride ld) into out (same stride; may alias x): per row,
// 16-element blocks (a partial last block as if zero-padded) under global scale `input_scale`,
// exactly the weight export's dynamic rule with wsf2 = input_scale:
//   code = e4m3(clamp(a_b / RN(6 * input_scale), 2^-9, 448)) (1 when a_b = 0),
//   d = RN(float(code) * input_scale), x_hat = RN(E2M1(x / d) * d).
void fake_quant_nvfp4(const float* x, int64_t rows, int64_t cols, int64_t ld, float input_scale, float* out);

// Per-tensor FP8 E4M3: x_hat = RN(float(e4m3(clamp(x / scale, -448, 448))) * scale).
float fake_quant_fp8_value(float x, float scale);
void fake_quant_fp8(const float* x, int64_t rows, int64_t cols, int64_t ld, float scale, float* out);

struct DeployOptions {
    bool act_quant = true;  // NVFP4 W4A4 / FP8 W8A8 input quantizers (off: weight-only)
    bool kv_quant = true;   // FP8 KV cache from k_scale / v_scale
};

// What the observer applies, for the report.
struct DeployCounts {
    int quantized_weights = 0;  // linears decoded from quantized tensors
    int nvfp4_inputs = 0, fp8_inputs = 0;
    int kv_layers = 0;
};

// A LayerObserver that fake-quantizes each linear's input by the format its export declares
// (NVFP4 with input_scale: dynamic NVFP4; FP8 with input_scale: static FP8; otherwise
// untouched) and the post-RoPE keys/values of layers with k_scale / v_scale (FP8). Scales are
// read once from the checkpoint; non-positive or non-finite scales are errors.
class DeployedQuantization final : public model::LayerObserver {
public:
    DeployedQuantization(const model::ModelLayout& layout, const io::Checkpoint& ckpt,
                         const DeployOptions& opts);

    const float* transform_linear_input(const model::LinearWeights& linear, const float* x, int64_t rows,
                                        int64_t ld, std::vector<float>& scratch) override;
    void transform_key_values(int layer, float* k, float* v, int64_t rows, int64_t cols,
                              int64_t ld) override;

    const DeployCounts& counts() const { return counts_; }
    std::string describe() const;  // one line: "12 quantized linears, 10 NVFP4 inputs, ..."

private:
    struct InputQuant {
        Format format = Format::BF16;  // BF16: pass through
        float scale = 0.0f;
    };
    struct KvQuant {
        float k_scale = 0.0f, v_scale = 0.0f;  // 0: that tensor is not quantized
    };
    std::vector<InputQuant> inputs_;  // per ModelLayout::linears index
    std::vector<KvQuant> kv_;         // per decoder layer
    DeployCounts counts_;
};

}  // namespace microscale::eval
