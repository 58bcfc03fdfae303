// FP8 per-tensor scalar reference.
#include "format/fp8.h"

#include "format/codec/e4m3.h"
#include "format/nvfp4_block.h"

namespace microscale::format {

float fp8_weight_scale(float amax) { return amax > 0.0f ? amax * kRecip448 : 1.0f; }

void quantize_fp8_rows_ref(const WeightView& w, float scale, int64_t r0, int64_t r1, uint8_t* codes) {
    // PyTorch CUDA computes bf16[..] / fp32 0-dim as a bf16 op: the divisor is loaded as bf16
    // and the quotient rounded to bf16 before the e4m3 cast (verified, spec §10.1).
    const float s_bf16 = codec::round_to_bf16(scale);
    const float s_fp16 = codec::round_to_fp16(scale);
    for (int64_t r = r0; r < r1; ++r) {
        uint8_t* out = codes + (r - r0) * w.cols;
        for (int64_t c = 0; c < w.cols; ++c) {
            const float v = w.at(r, c);
            float q;
            switch (w.dtype) {
                case DType::BF16: q = codec::round_to_bf16(v / s_bf16); break;
                case DType::F16: q = codec::round_to_fp16(v / s_fp16); break;
                default: q = v / scale; break;
            }
            out[c] = codec::e4m3_from_float(q);
        }
    }
}

void dequantize_fp8_ref(std::span<const uint8_t> codes, float scale, float* out) {
    for (size_t i = 0; i < codes.size(); ++i) out[i] = codec::e4m3_to_float(codes[i]) * scale;
}

}  // namespace microscale::format
