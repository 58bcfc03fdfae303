// GPTQ for NVFP4 weights with fixed block scales (ModelOpt 0.46 `gptq`, spec §5.5): the Hessian
// of each linear's input, its damped Cholesky inverse, and the column-by-column quantization with
// lazy block updates. The block codes are fixed before the column loop (from max, or from an
// earlier mse / four-over-six / fp8 sweep: "gptq after another algorithm"), and the export then
// encodes the updated weights with exactly those codes.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "format/nvfp4_block.h"

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
    std::vector<float> h_, scratch_;
};

struct GptqOptions {
    double perc_damp = 0.01;  // damp = perc_damp * mean(diag H)
    int block_size = 128;     // lazy-update column block; a multiple of 16
};

struct GptqResult {
    std::vector<float> weight;   // [out, in] updated weights (encode them with the fixed codes)
    double objective_rtn = 0.0;  // sum_rows (w - q_rtn)^T H (w - q_rtn), the starting scales as they are
    double objective_gptq = 0.0; // same for the GPTQ result's quantization
    int64_t dead_columns = 0;    // inputs whose Hessian diagonal was 0 (weights there are zeroed)
    bool identity_fallback = false;  // H was not positive definite even after damping
};

// w: [out, in] fp32; codes: [out, in/16] fixed E4M3 block codes; wsf2 the global scale.
GptqResult gptq_nvfp4(std::span<const float> w, int64_t out, int64_t in, std::span<const float> hessian,
                      std::span<const uint8_t> codes, float wsf2, const GptqOptions& opts = {});

// Fake quantization with fixed codes: RN(E2M1[nibble(w/d)] * d), d = RN(code * wsf2).
void fake_quantize_fixed(std::span<const float> w, int64_t out, int64_t in, std::span<const uint8_t> codes,
                         float wsf2, std::span<float> q);

// sum over rows r of (w_r - q_r)^T H (w_r - q_r), in double.
double hessian_objective(std::span<const float> w, std::span<const float> q, int64_t out, int64_t in,
                         std::span<const float> hessian);

}  // namespace microscale::algo
