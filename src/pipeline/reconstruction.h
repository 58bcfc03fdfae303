// Reconstruction error of a quantized weight for the quantize report, measured on evenly spaced
// sampled rows so it costs a small fraction of the quantization itself.
#pragma once

#include <cstdint>
#include <vector>

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

// The error on up to max_rows evenly spaced rows, measured piece by piece as rows are produced
// (quantize_weight_to's on_rows), so it runs on the workers while the rows are in cache.
class SampledError {
public:
    SampledError(const format::WeightView& w, int64_t max_rows);
    // Measures the sampled rows inside [r0, r1), which q must hold. Disjoint ranges may run
    // concurrently; each row writes only its own slot.
    void measure(const format::QuantizedView& q, int64_t r0, int64_t r1);
    // Per-row sums added in row order: the same value for any split of the rows and thread count.
    ReconstructionError result() const;

private:
    const format::WeightView& w_;
    int64_t n_ = 0;  // rows sampled
    std::vector<double> num_, den_;
};

// Rows are spread over pool (may be null); the same value as SampledError.
ReconstructionError sampled_relative_mse(const format::WeightView& w, const format::QuantizedWeight& q,
                                         int64_t max_rows, core::ThreadPool* pool);

// Decode row r of q into out (cols floats), exactly as dequantize_weight would.
void dequantize_row(const format::QuantizedView& q, int64_t r, float* out);

}  // namespace microscale::pipeline
