// A read-only view of a row-major [rows, cols] weight in bf16, fp16 or fp32, plus the helpers
// every quantizer needs: element loads through the shared codecs and the finite-amax pass.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "format/codec/bf16.h"
#include "format/codec/fp16.h"
#include "microscale/dtype.h"

namespace microscale::format {

struct WeightView {
    const void* data = nullptr;
    DType dtype = DType::BF16;  // BF16, F16 or F32
    int64_t rows = 0;
    int64_t cols = 0;
    std::string_view name;      // on-disk tensor name, for error messages

    float at(int64_t r, int64_t c) const {
        const int64_t i = r * cols + c;
        switch (dtype) {
            case DType::BF16: return codec::bf16_to_float(static_cast<const uint16_t*>(data)[i]);
            case DType::F16: return codec::fp16_to_float(static_cast<const uint16_t*>(data)[i]);
            default: return static_cast<const float*>(data)[i];
        }
    }
    // Convert elements [c0, c0+n) of row r to fp32 (exact for every supported dtype).
    void load(int64_t r, int64_t c0, int64_t n, float* out) const {
        for (int64_t j = 0; j < n; ++j) out[j] = at(r, c0 + j);
    }
    std::string describe() const;  // "name [rows, cols] BF16"
};

// Throws microscale::Error unless dtype is BF16/F16/F32, rows/cols are non-negative and cols is
// a multiple of block (when block > 0). `format` names the target format in the message.
void validate_weight(const WeightView& w, int block, std::string_view format);

// max |w| over rows [r0, r1). Throws microscale::Error naming the tensor and the first NaN/Inf
// element: ModelOpt refuses such weights ("detected nan/inf values in amax") and so do we.
float amax_rows_ref(const WeightView& w, int64_t r0, int64_t r1);
// Same value (and the same error) with Highway SIMD.
float amax_rows_simd(const WeightView& w, int64_t r0, int64_t r1);

}  // namespace microscale::format
