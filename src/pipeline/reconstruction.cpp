#include "pipeline/reconstruction.h"

#include <vector>

#include "format/codec/e2m1.h"
#include "format/codec/e4m3.h"
#include "format/codec/e8m0.h"
#include "format/mx.h"
#include "format/nvfp4_block.h"
#include "microscale/error.h"

namespace microscale::pipeline {

void dequantize_row(const format::QuantizedWeight& q, int64_t r, float* out) {
    const int64_t cols = q.cols;
    switch (q.format) {
        case Format::NVFP4:
        case Format::W4A16_NVFP4: {
            const uint8_t* p = q.data.data() + r * cols / 2;
            const uint8_t* s = q.block_scales.data() + r * (cols / format::kNvfp4Block);
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
            for (int64_t c = 0; c < cols; ++c) out[c] = codec::e4m3_to_float(q.data[static_cast<size_t>(r * cols + c)]) * q.global_scale;
            return;
        case Format::MXFP4: {
            const uint8_t* p = q.data.data() + r * cols / 2;
            for (int64_t c = 0; c < cols; ++c) {
                const float s = codec::e8m0_to_float(q.block_scales[static_cast<size_t>(r * (cols / format::kMxBlock) + c / format::kMxBlock)]);
                const uint8_t nib = (c & 1) ? static_cast<uint8_t>(p[c / 2] >> 4) : static_cast<uint8_t>(p[c / 2] & 0xF);
                out[c] = codec::e2m1_to_float(nib) * s;
            }
            return;
        }
        case Format::MXFP8:
            for (int64_t c = 0; c < cols; ++c) {
                const float s = codec::e8m0_to_float(q.block_scales[static_cast<size_t>(r * (cols / format::kMxBlock) + c / format::kMxBlock)]);
                out[c] = codec::e4m3_to_float(q.data[static_cast<size_t>(r * cols + c)]) * s;
            }
            return;
        default: throw Error("dequantize_row: not a quantized format");
    }
}

ReconstructionError sampled_relative_mse(const format::WeightView& w, const format::QuantizedWeight& q,
                                         int64_t max_rows, core::ThreadPool* pool) {
    ReconstructionError e;
    if (w.rows == 0 || w.cols == 0) return e;
    const int64_t n = std::min(w.rows, max_rows);
    std::vector<double> num(static_cast<size_t>(n)), den(static_cast<size_t>(n));
    auto row = [&](int64_t i) {
        const int64_t r = i * w.rows / n;  // evenly spaced, deterministic
        std::vector<float> orig(static_cast<size_t>(w.cols)), deq(static_cast<size_t>(w.cols));
        w.load(r, 0, w.cols, orig.data());
        dequantize_row(q, r, deq.data());
        double a = 0.0, b = 0.0;
        for (int64_t c = 0; c < w.cols; ++c) {
            const double d = double(orig[static_cast<size_t>(c)]) - deq[static_cast<size_t>(c)];
            a += d * d;
            b += double(orig[static_cast<size_t>(c)]) * orig[static_cast<size_t>(c)];
        }
        num[static_cast<size_t>(i)] = a;
        den[static_cast<size_t>(i)] = b;
    };
    if (pool) pool->parallel_for(n, row);
    else for (int64_t i = 0; i < n; ++i) row(i);
    double sn = 0.0, sd = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        sn += num[static_cast<size_t>(i)];
        sd += den[static_cast<size_t>(i)];
    }
    e.rows = n;
    e.rel_mse = sd > 0.0 ? sn / sd : 0.0;
    return e;
}

}  // namespace microscale::pipeline
