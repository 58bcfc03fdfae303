// Reconstruction error of a quantized weight for the quantize report, measured on evenly spaced
// sampled rows so it costs a small fraction of the quantization itself.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"
#include "format/quantize.h"

namespace microscale::pipeline {

// Rows per tensor the quantize report measures (evenly spaced): 32 rows of >= 1K columns estimate
// the relative MSE to about a percent, at ~1% of the quantization's cost (128 rows cost ~5%).
inline constexpr int64_t kErrorRows = 32;

struct ReconstructionError {
    double rel_mse = 0.0;  // sum (w - w_hat)^2 / sum w^2 (0 when the tensor is all zero)
    int64_t rows = 0;      // rows measured
};

// Rows are spread over pool (may be null); partial sums are added in row order, so the value
// does not depend on the thread count.
ReconstructionError sampled_relative_mse(const format::WeightView& w, const format::QuantizedWeight& q,
                                         int64_t max_rows, core::ThreadPool* pool);

// Decode row r of q into out (cols floats), exactly as dequantize_weight would.
void dequantize_row(const format::QuantizedWeight& q, int64_t r, float* out);

}  // namespace microscale::pipeline
