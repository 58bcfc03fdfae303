// NVFP4 weight quantization (formats `nvfp4`, `w4a16_nvfp4`): configuration, tensor-level plan,
// the scalar reference (the spec) and the SIMD path that must produce the same bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "format/nvfp4_block.h"
#include "format/weight_view.h"

namespace microscale::format {

// How block scales are chosen (ModelOpt: block_sizes.type plus the calibration algorithm).
enum class Nvfp4Search : uint8_t {
    DYNAMIC_MAX,  // type: dynamic, algorithm max (NVFP4_DEFAULT_CFG, W4A16_NVFP4_CFG)
    STATIC_MAX,   // type: static, algorithm max
    MSE,          // type: static, multiplier sweep per block (four-over-six is MSE [1.0, 1.5] + m=256)
    FP8_SWEEP,    // type: static, the 126 positive E4M3 codes per block
};

struct MseSweep {
    double start = 0.25, stop = 4.0, step = 0.1;  // ModelOpt MseCalibConfig defaults
};

struct Nvfp4Config {
    Nvfp4Search search = Nvfp4Search::DYNAMIC_MAX;
    bool four_over_six = false;        // block_sizes.four_over_six: FP8 normaliser 256
    MseSweep mse;                      // used by MSE
    std::optional<float> global_amax;  // shared amax of a fused group; default max|W|

    // NVFP4_FOUR_OVER_SIX_CFG: static, m=256, mse multipliers [1.0, 1.5].
    static Nvfp4Config four_over_six_preset();
};

// Everything derived once per tensor before the row loop.
struct Nvfp4Plan {
    Nvfp4Search search;
    Nvfp4Scales scales;
    std::vector<float> multipliers;  // MSE candidates in order (empty otherwise)
};

// torch.linspace(start, stop, ceil((stop-start)/step)+1) in fp32 as the CUDA kernel computes it.
std::vector<float> mse_multipliers(const MseSweep& sweep);

Nvfp4Plan nvfp4_plan(const Nvfp4Config& cfg, float tensor_amax);

// Output of a whole-tensor quantization.
struct Nvfp4Tensor {
    int64_t rows = 0, cols = 0;
    std::vector<uint8_t> packed;  // [rows, cols/2] E2M1, low nibble = even column
    std::vector<uint8_t> scales;  // [rows, cols/16] E4M3 codes
    float global_scale = 0.0f;    // weight_scale_2
};

// The block code of one 16-element block under the plan's search (ties -> earliest candidate).
uint8_t nvfp4_choose_code_ref(const float* block16, const Nvfp4Plan& plan);

// Rows [r0, r1) of w into packed (cols/2 bytes a row) and scales (cols/16 bytes a row), which
// point at row r0 of the outputs. The reference: plain loops, the spec.
void quantize_nvfp4_rows_ref(const WeightView& w, const Nvfp4Plan& plan, int64_t r0, int64_t r1,
                             uint8_t* packed, uint8_t* scales);
// Same bytes, Highway SIMD with runtime dispatch.
void quantize_nvfp4_rows_simd(const WeightView& w, const Nvfp4Plan& plan, int64_t r0, int64_t r1,
                              uint8_t* packed, uint8_t* scales);

// Encode fp32 weights [rows, cols] with given block codes (GPTQ keeps the codes of its starting
// scales): the packed bytes quantize_nvfp4_rows_ref would write with those codes.
std::vector<uint8_t> encode_nvfp4_with_codes(std::span<const float> w, int64_t rows, int64_t cols,
                                             std::span<const uint8_t> codes, float global_scale);

// Decode to fp32: w_hat = RN(E2M1[nibble] * RN(float(code) * wsf2)).
void dequantize_nvfp4_ref(std::span<const uint8_t> packed, std::span<const uint8_t> scales, float global_scale,
                          int64_t rows, int64_t cols, float* out);

}  // namespace microscale::format
