// NVFP4 per-block arithmetic shared by the scalar reference, the SIMD tails and the CUDA kernels.
// docs/FORMATS.md gives the formulas; spec nvfp4-modelopt.md §1.2-1.5, §5.2-5.3, §10.
// Every expression here is one IEEE fp32 operation at a time: keep these TUs free of FMA
// contraction and fast-math, or the bytes stop matching ModelOpt's GPU export.
#pragma once

#include "format/codec/e2m1.h"
#include "format/codec/e4m3.h"
#include "format/codec/hd.h"

namespace microscale::format {

inline constexpr int kNvfp4Block = 16;

// Reciprocals as PyTorch CUDA applies a Python-scalar divisor (spec §10.2): x / c == x * RN(1/c).
inline constexpr float kRecip6 = 1.0f / 6.0f;          // 0x3E2AAAAB
inline constexpr float kRecip2688 = 1.0f / 2688.0f;    // 0x39C30C31: 1/(6*448)
inline constexpr float kRecip1536 = 1.0f / 1536.0f;    // 1/(6*256), four-over-six
inline constexpr float kRecip448 = 1.0f / 448.0f;      // 0x3B124925

MICROSCALE_HD inline float clamp_e4m3_scale(float s) {
    return s < codec::kE4M3MinSubnormal ? codec::kE4M3MinSubnormal : (s > codec::kE4M3Max ? codec::kE4M3Max : s);
}

// Tensor-level constants, derived once per weight (or fused group).
struct Nvfp4Scales {
    float global_amax;   // A
    float m_fp8;         // 448, or 256 with four_over_six
    float wsf2;          // weight_scale_2 = RN(A * RN(1/(6m)))
    float six_wsf2;      // RN(6 * wsf2), the dynamic-path divisor
    float static_denom;  // RN(A * RN(1/6)), the static-path divisor
    bool all_zero;       // A == 0: the sane all-zero encoding of docs/FORMATS.md
};

MICROSCALE_HD inline Nvfp4Scales nvfp4_scales(float global_amax, bool four_over_six) {
    Nvfp4Scales s;
    s.global_amax = global_amax;
    s.m_fp8 = four_over_six ? 256.0f : 448.0f;
    s.all_zero = !(global_amax > 0.0f);
    s.wsf2 = s.all_zero ? 1.0f : global_amax * (four_over_six ? kRecip1536 : kRecip2688);
    s.six_wsf2 = 6.0f * s.wsf2;
    s.static_denom = global_amax * kRecip6;
    return s;
}

// Block code on the dynamic export path (§1.3a) from the block amax.
MICROSCALE_HD inline uint8_t nvfp4_code_dynamic(float block_amax, const Nvfp4Scales& s) {
    if (s.all_zero) return 0x38;
    float v = block_amax / s.six_wsf2;
    if (v == 0.0f) v = 1.0f;
    return codec::e4m3_from_float(clamp_e4m3_scale(v));
}

// Block code on the static export path (§1.3b) from a calibrated per-block amax.
MICROSCALE_HD inline uint8_t nvfp4_code_static(float block_amax, const Nvfp4Scales& s) {
    if (s.all_zero) return 0x38;
    float v = block_amax * kRecip6;
    if (v == 0.0f) v = 1.0f;
    return codec::e4m3_from_float(clamp_e4m3_scale((v * s.m_fp8) / s.static_denom));
}

// The element divisor of a block: RN(float(code) * wsf2).
MICROSCALE_HD inline float nvfp4_block_divisor(uint8_t code, const Nvfp4Scales& s) {
    return codec::e4m3_to_float(code) * s.wsf2;
}

// Quantize 16 values with divisor d and pack them: byte j = nib[2j] | nib[2j+1] << 4.
MICROSCALE_HD inline void nvfp4_encode_block(const float* w, float d, uint8_t* packed8) {
    for (int j = 0; j < kNvfp4Block / 2; ++j) {
        const uint8_t lo = codec::e2m1_from_float(w[2 * j] / d);
        const uint8_t hi = codec::e2m1_from_float(w[2 * j + 1] / d);
        packed8[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
}

// Squared error of the block as exported with divisor d, summed in fp32 in element order.
MICROSCALE_HD inline float nvfp4_block_loss(const float* w, float d) {
    float loss = 0.0f;
    for (int j = 0; j < kNvfp4Block; ++j) {
        const float q = codec::e2m1_to_float(codec::e2m1_from_float(w[j] / d)) * d;
        const float diff = w[j] - q;
        loss += diff * diff;
    }
    return loss;
}

}  // namespace microscale::format
