#include "pipeline/reconstruction.h"

#include <algorithm>
#include <vector>

#include "format/codec/bf16.h"
#include "format/codec/e2m1.h"
#include "format/codec/e4m3.h"
#include "format/codec/e8m0.h"
#include "format/mx.h"
#include "format/nvfp4_block.h"
#include "microscale/error.h"

namespace microscale::pipeline {
namespace {

// Row r of w as fp32 (exact). bf16, the common case, is a plain shift the compiler vectorizes;
// WeightView::at switches on the dtype per element.
void load_row(const format::WeightView& w, int64_t r, float* out) {
    if (w.dtype == DType::BF16) {
        const uint16_t* p = static_cast<const uint16_t*>(w.data) + r * w.cols;
        for (int64_t c = 0; c < w.cols; ++c) out[c] = codec::bf16_to_float(p[c]);
    } else {
        w.load(r, 0, w.cols, out);
    }
}

// sum (a-b)^2 and sum a^2 in double over 8 independent lanes (vectorizable without reassociating
// a single sum), then the lanes in order: a fixed order, so the value is reproducible.
void squared_sums(const float* a, const float* b, int64_t n, double& num, double& den) {
    constexpr int kLanes = 8;
    double sn[kLanes] = {}, sd[kLanes] = {};
    int64_t c = 0;
    for (; c + kLanes <= n; c += kLanes)
        for (int l = 0; l < kLanes; ++l) {
            const double o = a[c + l], d = o - double(b[c + l]);
            sn[l] += d * d;
            sd[l] += o * o;
        }
    for (; c < n; ++c) {
        const double o = a[c], d = o - double(b[c]);
        sn[0] += d * d;
        sd[0] += o * o;
    }
    num = den = 0.0;
    for (int l = 0; l < kLanes; ++l) {
        num += sn[l];
        den += sd[l];
    }
}

}  // namespace

void dequantize_row(const format::QuantizedView& q, int64_t r, float* out) {
    const int64_t cols = q.cols;
    switch (q.format) {
        case Format::NVFP4:
        case Format::W4A16_NVFP4: {
            const uint8_t* p = q.data + r * cols / 2;
            const uint8_t* s = q.block_scales + r * (cols / format::kNvfp4Block);
            float lut[16];  // the block's 16 decoded values, RN(E2M1[n] * d) as dequantize does
            for (int64_t b = 0; b < cols / format::kNvfp4Block; ++b) {
                const float d = codec::e4m3_to_float(s[b]) * q.global_scale;
                for (int n = 0; n < 16; ++n) lut[n] = codec::e2m1_to_float(static_cast<uint8_t>(n)) * d;
                for (int j = 0; j < format::kNvfp4Block / 2; ++j) {
                    const uint8_t byte = p[b * format::kNvfp4Block / 2 + j];
                    out[b * format::kNvfp4Block + 2 * j] = lut[byte & 0xF];
                    out[b * format::kNvfp4Block + 2 * j + 1] = lut[byte >> 4];
                }
            }
            return;
        }
        case Format::FP8:
            for (int64_t c = 0; c < cols; ++c) out[c] = codec::e4m3_to_float(q.data[r * cols + c]) * q.global_scale;
            return;
        case Format::MXFP4: {
            const uint8_t* p = q.data + r * cols / 2;
            for (int64_t c = 0; c < cols; ++c) {
                const float s = codec::e8m0_to_float(q.block_scales[r * (cols / format::kMxBlock) + c / format::kMxBlock]);
                const uint8_t nib = (c & 1) ? static_cast<uint8_t>(p[c / 2] >> 4) : static_cast<uint8_t>(p[c / 2] & 0xF);
                out[c] = codec::e2m1_to_float(nib) * s;
            }
            return;
        }
        case Format::MXFP8:
            for (int64_t c = 0; c < cols; ++c) {
                const float s = codec::e8m0_to_float(q.block_scales[r * (cols / format::kMxBlock) + c / format::kMxBlock]);
                out[c] = codec::e4m3_to_float(q.data[r * cols + c]) * s;
            }
            return;
        default: throw Error("dequantize_row: not a quantized format");
    }
}

SampledError::SampledError(const format::WeightView& w, int64_t max_rows)
    : w_(w), n_(w.rows > 0 && w.cols > 0 && max_rows > 0 ? std::min(w.rows, max_rows) : 0),
      num_(static_cast<size_t>(n_)), den_(static_cast<size_t>(n_)) {}

void SampledError::measure(const format::QuantizedView& q, int64_t r0, int64_t r1) {
    if (n_ == 0 || r1 <= r0) return;
    // Sample i is row i * rows / n_ (evenly spaced, deterministic); it lies in [r0, r1) exactly
    // when i * rows >= r0 * n_ and i * rows < r1 * n_.
    const int64_t rows = w_.rows;
    const int64_t i0 = (r0 * n_ + rows - 1) / rows, i1 = std::min(n_, (r1 * n_ + rows - 1) / rows);
    if (i0 >= i1) return;
    std::vector<float> orig(static_cast<size_t>(w_.cols)), deq(static_cast<size_t>(w_.cols));
    for (int64_t i = i0; i < i1; ++i) {
        const int64_t r = i * rows / n_;
        load_row(w_, r, orig.data());
        dequantize_row(q, r, deq.data());
        squared_sums(orig.data(), deq.data(), w_.cols, num_[static_cast<size_t>(i)], den_[static_cast<size_t>(i)]);
    }
}

ReconstructionError SampledError::result() const {
    double sn = 0.0, sd = 0.0;
    for (int64_t i = 0; i < n_; ++i) {
        sn += num_[static_cast<size_t>(i)];
        sd += den_[static_cast<size_t>(i)];
    }
    ReconstructionError e;
    e.rows = n_;
    e.rel_mse = sd > 0.0 ? sn / sd : 0.0;
    return e;
}

ReconstructionError sampled_relative_mse(const format::WeightView& w, const format::QuantizedWeight& q,
                                         int64_t max_rows, core::ThreadPool* pool) {
    SampledError err(w, max_rows);
    // A few sampled rows per task: one task per row costs more in scheduling than the row itself.
    constexpr int64_t kRowsPerTask = 8;
    const int64_t n = std::min(w.rows, std::max<int64_t>(max_rows, 0));
    const int64_t n_tasks = n > 0 && w.cols > 0 ? (n + kRowsPerTask - 1) / kRowsPerTask : 0;
    const format::QuantizedView v = format::view_of(q);
    // Task t covers the input rows of samples [t * 8, (t + 1) * 8).
    auto task = [&](int64_t t) {
        const int64_t i0 = t * kRowsPerTask, i1 = std::min(n, (t + 1) * kRowsPerTask);
        err.measure(v, i0 * w.rows / n, i1 == n ? w.rows : i1 * w.rows / n);
    };
    if (pool && n_tasks > 1) pool->parallel_for(n_tasks, task);
    else for (int64_t t = 0; t < n_tasks; ++t) task(t);
    return err.result();
}

}  // namespace microscale::pipeline
