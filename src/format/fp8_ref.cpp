// FP8 per-tensor scalar reference.
#include "format/fp8.h"

#include <cmath>
#include <vector>

#include "format/codec/e4m3.h"
#include "format/fp8_element.h"
#include "format/nvfp4_block.h"

namespace microscale::format {

float fp8_weight_scale(float amax) { return amax > 0.0f ? amax * kRecip448 : 1.0f; }

float fp8_search_amax(const WeightView& w, float amax, std::span<const float> multipliers) {
    float best_amax = amax;
    double best_loss = INFINITY;
    std::vector<uint8_t> codes(static_cast<size_t>(w.cols));
    for (float k : multipliers) {
        const float cand = amax * k;
        const float scale = fp8_weight_scale(cand);
        double loss = 0.0;
        for (int64_t r = 0; r < w.rows; ++r) {
            quantize_fp8_rows_ref(w, scale, r, r + 1, codes.data());
            float row_loss = 0.0f;
            for (int64_t c = 0; c < w.cols; ++c) {
                const float d = w.at(r, c) - codec::e4m3_to_float(codes[static_cast<size_t>(c)]) * scale;
                row_loss += d * d;
            }
            loss += row_loss;
        }
        if (loss < best_loss) {
            best_loss = loss;
            best_amax = cand;
        }
    }
    return best_amax;
}

void quantize_fp8_rows_ref(const WeightView& w, float scale, int64_t r0, int64_t r1, uint8_t* codes) {
    const float s_bf16 = codec::round_to_bf16(scale);
    const float s_fp16 = codec::round_to_fp16(scale);
    for (int64_t r = r0; r < r1; ++r) {
        uint8_t* out = codes + (r - r0) * w.cols;
        for (int64_t c = 0; c < w.cols; ++c) {
            const float v = w.at(r, c);
            switch (w.dtype) {
                case DType::BF16: out[c] = fp8_code_bf16(v, s_bf16); break;
                case DType::F16: out[c] = fp8_code_fp16(v, s_fp16); break;
                default: out[c] = fp8_code_fp32(v, scale); break;
            }
        }
    }
}

void dequantize_fp8_ref(std::span<const uint8_t> codes, float scale, float* out) {
    for (size_t i = 0; i < codes.size(); ++i) out[i] = codec::e4m3_to_float(codes[i]) * scale;
}

}  // namespace microscale::format
