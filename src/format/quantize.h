// Whole-tensor weight quantization for every format of the table: picks the backend, computes
// the amax, spreads rows over the thread pool and returns the exported tensors.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "format/nvfp4.h"
#include "format/weight_view.h"
#include "microscale/format.h"

namespace microscale::core {
class ThreadPool;
}

namespace microscale::format {

// REF: the scalar reference (the spec); SIMD: Highway, same bytes; CUDA: the selected GPU, same bytes.
enum class Backend : uint8_t { REF, SIMD, CUDA };

struct WeightQuantSpec {
    Format format = Format::NVFP4;
    Nvfp4Config nvfp4;          // NVFP4 / W4A16_NVFP4: search, four-over-six, shared global amax
    std::optional<float> fp8_amax;  // FP8: amax chosen by a search (default max|W|)
    std::optional<float> known_amax;  // max|W| already measured (and checked finite) by the caller
};

struct QuantizedWeight {
    Format format = Format::BF16;
    int64_t rows = 0, cols = 0;
    std::vector<uint8_t> data;          // NVFP4/MXFP4: [rows, cols/2] packed E2M1; FP8/MXFP8: [rows, cols] E4M3
    std::vector<uint8_t> block_scales;  // NVFP4: [rows, cols/16] E4M3; MX: [rows, cols/32] E8M0; FP8: empty
    float global_scale = 0.0f;          // NVFP4 weight_scale_2, FP8 weight_scale; unused for MX
    float amax = 0.0f;                  // max |W| of this tensor
};

// Throws microscale::Error naming the tensor on bad shape, dtype or non-finite values.
// pool may be null (single thread).
QuantizedWeight quantize_weight(const WeightView& w, const WeightQuantSpec& spec, Backend backend,
                                core::ThreadPool* pool);

// max|W| over the tensor, rejecting NaN/Inf; parallel over rows when pool is given.
float tensor_amax(const WeightView& w, Backend backend, core::ThreadPool* pool);

// fp32 decode of what quantize_weight produced.
std::vector<float> dequantize_weight(const QuantizedWeight& q);

}  // namespace microscale::format
