#include "format/quantize.h"

#include <algorithm>
#include <fmt/core.h>
#include <functional>

#include "core/thread_pool.h"
#include "cuda/quantize_cuda.h"
#include "format/fp8.h"
#include "format/mx.h"
#include "microscale/error.h"

namespace microscale::format {
namespace {

// Rows per task: about 64K elements, so small tensors stay on one thread and big ones split.
int64_t rows_per_task(const WeightView& w) {
    return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, w.cols));
}

void for_row_chunks(const WeightView& w, core::ThreadPool* pool, const std::function<void(int64_t, int64_t)>& fn) {
    const int64_t step = rows_per_task(w);
    const int64_t n_tasks = (w.rows + step - 1) / step;
    auto task = [&](int64_t t) { fn(t * step, std::min(w.rows, (t + 1) * step)); };
    if (pool && n_tasks > 1) {
        pool->parallel_for(n_tasks, task);
    } else {
        for (int64_t t = 0; t < n_tasks; ++t) task(t);
    }
}

float amax_rows(const WeightView& w, Backend backend, int64_t r0, int64_t r1) {
    return backend == Backend::REF ? amax_rows_ref(w, r0, r1) : amax_rows_simd(w, r0, r1);
}

}  // namespace

float tensor_amax(const WeightView& w, Backend backend, core::ThreadPool* pool) {
    const int64_t step = rows_per_task(w);
    const int64_t n_tasks = (w.rows + step - 1) / step;
    std::vector<float> partial(static_cast<size_t>(std::max<int64_t>(n_tasks, 1)), 0.0f);
    for_row_chunks(w, pool, [&](int64_t r0, int64_t r1) { partial[static_cast<size_t>(r0 / step)] = amax_rows(w, backend, r0, r1); });
    return *std::max_element(partial.begin(), partial.end());
}

QuantizedView view_of(const QuantizedWeight& q) {
    return {q.format, q.rows, q.cols, q.data.data(), q.block_scales.empty() ? nullptr : q.block_scales.data(),
            q.global_scale, q.amax};
}

QuantizedSizes quantized_sizes(Format f, int64_t rows, int64_t cols) {
    const auto n = static_cast<size_t>(rows * cols);
    switch (f) {
        case Format::NVFP4: case Format::W4A16_NVFP4: return {n / 2, static_cast<size_t>(rows * (cols / kNvfp4Block))};
        case Format::FP8: return {n, 0};
        case Format::MXFP4: return {n / 2, static_cast<size_t>(rows * (cols / kMxBlock))};
        case Format::MXFP8: return {n, static_cast<size_t>(rows * (cols / kMxBlock))};
        default: return {};
    }
}

QuantizedWeight quantize_weight(const WeightView& w, const WeightQuantSpec& spec, Backend backend,
                                core::ThreadPool* pool, const WeightView* next) {
    if (backend == Backend::CUDA) return cuda::quantize_weight(w, spec, pool, next);
    if (spec.format == Format::BF16) throw Error(fmt::format("tensor {}: bf16 is not a quantized format", w.describe()));
    validate_weight(w, format_info(spec.format).block_elems, format_info(spec.format).name);  // before sizing
    const QuantizedSizes n = quantized_sizes(spec.format, w.rows, w.cols);
    QuantizedWeight q;
    q.data.resize(n.data);
    q.block_scales.resize(n.block_scales);
    const QuantizedView v = quantize_weight_to(w, spec, backend, pool, q.data.data(), q.block_scales.data());
    q.format = v.format;
    q.rows = v.rows;
    q.cols = v.cols;
    q.global_scale = v.global_scale;
    q.amax = v.amax;
    return q;
}

QuantizedView quantize_weight_to(const WeightView& w, const WeightQuantSpec& spec, Backend backend,
                                 core::ThreadPool* pool, uint8_t* data, uint8_t* block_scales, const RowsDone& on_rows) {
    const FormatInfo& info = format_info(spec.format);
    if (backend == Backend::CUDA) throw Error(fmt::format("tensor {}: quantize_weight_to runs on the CPU only", w.describe()));
    if (spec.format == Format::BF16) throw Error(fmt::format("tensor {}: bf16 is not a quantized format", w.describe()));
    validate_weight(w, info.block_elems, info.name);
    QuantizedView q;
    q.format = spec.format;
    q.rows = w.rows;
    q.cols = w.cols;
    q.data = data;
    q.block_scales = quantized_sizes(spec.format, w.rows, w.cols).block_scales ? block_scales : nullptr;
    q.amax = spec.known_amax ? *spec.known_amax : tensor_amax(w, backend, pool);
    const bool simd = backend == Backend::SIMD;
    // Each chunk of rows is quantized, then handed to on_rows while it is hot in cache.
    auto rows = [&](const std::function<void(int64_t, int64_t)>& quantize) {
        for_row_chunks(w, pool, [&](int64_t r0, int64_t r1) {
            quantize(r0, r1);
            if (on_rows) on_rows(q, r0, r1);
        });
    };
    switch (spec.format) {
        case Format::NVFP4:
        case Format::W4A16_NVFP4: {
            const Nvfp4Plan plan = nvfp4_plan(spec.nvfp4, q.amax);
            q.global_scale = plan.scales.wsf2;
            rows([&](int64_t r0, int64_t r1) {
                uint8_t* p = data + r0 * (w.cols / 2);
                uint8_t* s = block_scales + r0 * (w.cols / kNvfp4Block);
                if (simd) quantize_nvfp4_rows_simd(w, plan, r0, r1, p, s);
                else quantize_nvfp4_rows_ref(w, plan, r0, r1, p, s);
            });
            break;
        }
        case Format::FP8: {
            q.global_scale = fp8_weight_scale(spec.fp8_amax.value_or(q.amax));
            rows([&](int64_t r0, int64_t r1) {
                uint8_t* c = data + r0 * w.cols;
                if (simd) quantize_fp8_rows_simd(w, q.global_scale, r0, r1, c);
                else quantize_fp8_rows_ref(w, q.global_scale, r0, r1, c);
            });
            break;
        }
        case Format::MXFP4: {
            rows([&](int64_t r0, int64_t r1) {
                uint8_t* p = data + r0 * (w.cols / 2);
                uint8_t* s = block_scales + r0 * (w.cols / kMxBlock);
                if (simd) quantize_mxfp4_rows_simd(w, r0, r1, p, s);
                else quantize_mxfp4_rows_ref(w, r0, r1, p, s);
            });
            break;
        }
        case Format::MXFP8: {
            rows([&](int64_t r0, int64_t r1) {
                uint8_t* c = data + r0 * w.cols;
                uint8_t* s = block_scales + r0 * (w.cols / kMxBlock);
                if (simd) quantize_mxfp8_rows_simd(w, r0, r1, c, s);
                else quantize_mxfp8_rows_ref(w, r0, r1, c, s);
            });
            break;
        }
        default: throw Error(fmt::format("tensor {}: unsupported format {}", w.describe(), info.name));
    }
    return q;
}

std::vector<float> dequantize_weight(const QuantizedWeight& q) {
    std::vector<float> out(static_cast<size_t>(q.rows * q.cols));
    switch (q.format) {
        case Format::NVFP4:
        case Format::W4A16_NVFP4:
            dequantize_nvfp4_ref(q.data, q.block_scales, q.global_scale, q.rows, q.cols, out.data());
            break;
        case Format::FP8: dequantize_fp8_ref(q.data, q.global_scale, out.data()); break;
        case Format::MXFP4: dequantize_mxfp4_ref(q.data, q.block_scales, q.rows, q.cols, out.data()); break;
        case Format::MXFP8: dequantize_mxfp8_ref(q.data, q.block_scales, q.rows, q.cols, out.data()); break;
        default: throw Error("dequantize_weight: not a quantized format");
    }
    return out;
}

}  // namespace microscale::format
