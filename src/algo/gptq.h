// GPTQ with scales fixed before the column loop (ModelOpt 0.46 `gptq`, spec §5.5): the Hessian
// of each linear's input, its damped Cholesky inverse, and the column-by-column quantization with
// lazy block updates. The grid is fixed first (NVFP4 block codes from max, or from an earlier
// mse / four-over-six / fp8 sweep / local_hessian: "gptq after another algorithm"; or an FP8
// per-tensor scale), and the export then encodes the updated weights with exactly that grid.
// gptq() is the blocked fast path (row-parallel inside a block, sgemm between blocks);
// gptq_ref() is the plain column loop it is tested against (same math, different fp32 order).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "format/nvfp4_block.h"

namespace microscale::core {
class ThreadPool;
}

namespace microscale::algo {

// H = (2/n) sum x x^T over all n input rows, with ModelOpt's running-mean update per batch:
// H <- H * n/(n+b) + (2/(n+b)) X^T X (fp32, X [b, in]).
class HessianAccumulator {
public:
    explicit HessianAccumulator(int64_t in_features);
    void add(const float* x, int64_t rows, int64_t ld);
    const std::vector<float>& hessian() const { return h_; }  // [in, in], symmetric (both halves)
    int64_t samples() const { return n_; }
    int64_t in_features() const { return in_; }

private:
    int64_t in_, n_ = 0;
    std::vector<float> h_;
};

// The quantization grid GPTQ rounds onto, fixed before the column loop.
struct FixedGrid {
    enum class Kind : uint8_t { NVFP4, FP8 } kind = Kind::NVFP4;
    std::span<const uint8_t> codes;  // NVFP4: [out, in/16] E4M3 block codes; FP8: unused
    float scale = 0.0f;              // NVFP4: weight_scale_2; FP8: the per-tensor weight_scale

    static FixedGrid nvfp4(std::span<const uint8_t> codes, float wsf2) { return {Kind::NVFP4, codes, wsf2}; }
    static FixedGrid fp8(float weight_scale) { return {Kind::FP8, {}, weight_scale}; }
};

struct GptqOptions {
    double perc_damp = 0.01;  // damp = perc_damp * mean(diag H)
    int block_size = 128;     // lazy-update column block; a multiple of 16
    // Beyond ModelOpt (which has none): quantize columns in order of decreasing H[i,i]. The grid
    // stays the one fixed on the original column order (llm-compressor's "static" act order).
    bool act_order = false;
};

struct GptqResult {
    std::vector<float> weight;   // [out, in] updated weights (encode them with the fixed grid)
    double objective_rtn = 0.0;  // sum_rows (w - q_rtn)^T H (w - q_rtn), the starting grid as it is
    double objective_gptq = 0.0; // same for the GPTQ result's quantization
    int64_t dead_columns = 0;    // inputs whose Hessian diagonal was 0 (weights there are zeroed)
    bool identity_fallback = false;  // H was not positive definite even after damping
};

// w: [out, in] fp32. pool (optional) spreads the rows of each column block; BLAS may thread too.
GptqResult gptq(std::span<const float> w, int64_t out, int64_t in, std::span<const float> hessian,
                const FixedGrid& grid, const GptqOptions& opts = {}, core::ThreadPool* pool = nullptr);
// The plain reference: every column's error goes straight to all later columns (no lazy blocks).
GptqResult gptq_ref(std::span<const float> w, int64_t out, int64_t in, std::span<const float> hessian,
                    const FixedGrid& grid, const GptqOptions& opts = {});

// NVFP4 with fixed block codes (the original entry point).
inline GptqResult gptq_nvfp4(std::span<const float> w, int64_t out, int64_t in, std::span<const float> hessian,
                             std::span<const uint8_t> codes, float wsf2, const GptqOptions& opts = {}) {
    return gptq(w, out, in, hessian, FixedGrid::nvfp4(codes, wsf2), opts);
}

// Fake quantization onto a fixed grid. NVFP4: RN(E2M1[nibble(w/d)] * d), d = RN(code * wsf2).
// FP8: RN(E4M3[e4m3(clamp(RN(w/s)))] * s) (the fp32 rule of format/fp8.h, clamped to +-448).
void fake_quantize_fixed(std::span<const float> w, int64_t out, int64_t in, const FixedGrid& grid, std::span<float> q);
inline void fake_quantize_fixed(std::span<const float> w, int64_t out, int64_t in, std::span<const uint8_t> codes,
                                float wsf2, std::span<float> q) {
    fake_quantize_fixed(w, out, in, FixedGrid::nvfp4(codes, wsf2), q);
}

// E4M3 codes of fp32 weights under a fixed FP8 scale: exactly the values fake_quantize_fixed gives.
std::vector<uint8_t> encode_fp8_fixed(std::span<const float> w, float scale);

// sum over rows r of (w_r - q_r)^T H (w_r - q_r): fp32 GEMM per row chunk, summed in double.
double hessian_objective(std::span<const float> w, std::span<const float> q, int64_t out, int64_t in,
                         std::span<const float> hessian);

}  // namespace microscale::algo
