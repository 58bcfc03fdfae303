// Whole-tensor weight quantization for every format of the table: picks the backend, computes
// the amax, spreads rows over the thread pool and returns the exported tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
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

// Borrowed quantized bytes (a QuantizedWeight's vectors or memory passed to quantize_weight_to).
struct QuantizedView {
    Format format = Format::BF16;
    int64_t rows = 0, cols = 0;
    const uint8_t* data = nullptr;          // layouts as in QuantizedWeight
    const uint8_t* block_scales = nullptr;  // null when the format has none
    float global_scale = 0.0f;
    float amax = 0.0f;
};
QuantizedView view_of(const QuantizedWeight& q);

// Byte counts of QuantizedWeight::data and ::block_scales for a rows x cols weight in format f.
struct QuantizedSizes {
    size_t data = 0, block_scales = 0;
};
QuantizedSizes quantized_sizes(Format f, int64_t rows, int64_t cols);

// Throws microscale::Error naming the tensor on bad shape, dtype or non-finite values.
// pool may be null (single thread). next (CUDA only, a hint): the weight the caller quantizes
// next on this thread; its copy to the GPU starts once w's input is there (cuda::quantize_weight).
QuantizedWeight quantize_weight(const WeightView& w, const WeightQuantSpec& spec, Backend backend,
                                core::ThreadPool* pool, const WeightView* next = nullptr);

// The same bytes as quantize_weight (REF or SIMD), written into caller memory of quantized_sizes()
// bytes: every byte is written, so the memory may be uninitialised (no zero-fill, no copy).
// on_rows(r0, r1), when set, runs on the worker right after rows [r0, r1) are complete, while they
// are still in cache. Returns the view of what was written.
using RowsDone = std::function<void(const QuantizedView& q, int64_t r0, int64_t r1)>;
QuantizedView quantize_weight_to(const WeightView& w, const WeightQuantSpec& spec, Backend backend,
                                 core::ThreadPool* pool, uint8_t* data, uint8_t* block_scales,
                                 const RowsDone& on_rows = {});

// max|W| over the tensor, rejecting NaN/Inf; parallel over rows when pool is given.
float tensor_amax(const WeightView& w, Backend backend, core::ThreadPool* pool);

// fp32 decode of what quantize_weight produced.
std::vector<float> dequantize_weight(const QuantizedWeight& q);

}  // namespace microscale::format
