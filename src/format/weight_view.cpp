#include "format/weight_view.h"

#include <fmt/core.h>

#include "format/codec/hd.h"
#include "microscale/error.h"

namespace microscale::format {

std::string WeightView::describe() const {
    return fmt::format("'{}' [{}, {}] {}", name, rows, cols, dtype_name(dtype));
}

void validate_weight(const WeightView& w, int block, std::string_view format) {
    if (w.dtype != DType::BF16 && w.dtype != DType::F16 && w.dtype != DType::F32)
        throw Error(fmt::format("tensor {}: {} quantization needs BF16, F16 or F32 input", w.describe(), format));
    if (w.rows < 0 || w.cols < 0 || (w.rows * w.cols > 0 && w.data == nullptr))
        throw Error(fmt::format("tensor {}: invalid shape or missing data", w.describe()));
    if (block > 0 && w.cols % block != 0)
        throw Error(fmt::format("tensor {}: {} needs the last dimension to be a multiple of {}, got {}; "
                                "exclude this layer or use --skip-incompatible",
                                w.describe(), format, block, w.cols));
}

float amax_rows_ref(const WeightView& w, int64_t r0, int64_t r1) {
    float amax = 0.0f;
    for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = 0; c < w.cols; ++c) {
            const float v = w.at(r, c);
            if (!codec::is_finite_f32(v))
                throw Error(fmt::format("tensor {}: non-finite weight {} at [{}, {}]; refusing to quantize",
                                        w.describe(), v, r, c));
            const float a = codec::abs_f32(v);
            if (a > amax) amax = a;
        }
    }
    return amax;
}

}  // namespace microscale::format
