// Host side of GPU weight quantization: per-thread stream and grow-only device buffers, H2D of
// the weight, amax, the plan (computed on the host exactly as the CPU path does), the kernel,
// D2H of the result.
// No fmt here: its headers do not compile in nvcc's C++20 host pass.

#include <algorithm>
#include <exception>
#include <atomic>
#include <future>
#include <thread>
#include <cstring>
#include <memory>

#include "core/thread_pool.h"
#include "cuda/check.cuh"
#include "cuda/device.h"
#include "cuda/device_buffer.cuh"
#include "cuda/quantize_cuda.h"
#include "cuda/quantize_kernels.cuh"
#include "format/codec/bf16.h"
#include "format/fp8.h"
#include "format/fp8_table.h"
#include "format/mx.h"
#include "microscale/format.h"

namespace microscale::cuda {
namespace {


struct PinnedBuffer {
    void* ptr = nullptr;
    size_t bytes = 0;
    void reserve(size_t n) {
        if (n <= bytes) return;
        if (ptr) cudaFreeHost(ptr);
        ptr = nullptr;
        bytes = 0;
        MICROSCALE_CUDA_CHECK(cudaHostAlloc(&ptr, n, cudaHostAllocDefault));
        bytes = n;
    }
    uint8_t* bytes_ptr() const { return static_cast<uint8_t*>(ptr); }
    ~PinnedBuffer() {
        if (ptr) cudaFreeHost(ptr);
    }
};

constexpr size_t kChunk = size_t{32} << 20;  // staging granularity: DMA of chunk i overlaps the copy of i+1

// The next weight's upload, running on a background thread and a copy stream (quantize_weight's
// `next`).
struct Prefetch {
    const void* src = nullptr;
    size_t bytes = 0;
    DeviceBuffer dev;
    PinnedBuffer pinned;
    cudaStream_t stream = nullptr;
    cudaEvent_t done = nullptr;
    std::future<void> task;

    // Waits for the staging thread (rethrowing its error) and the copies it queued.
    void finish() {
        if (task.valid()) task.get();
        if (stream) MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(stream));
    }
    void finish_quietly() noexcept {
        try {
            finish();
        } catch (...) {
        }
        src = nullptr;
    }
    ~Prefetch() {
        finish_quietly();
        if (stream) cudaStreamDestroy(stream);
        if (done) cudaEventDestroy(done);
    }
};

// One per host thread: quantize_weight may be called from several threads.
struct Workspace {
    int device = -1;
    cudaStream_t stream = nullptr;
    DeviceBuffer input, out_a, out_b, small;
    PinnedBuffer staging;  // input on the way in, outputs on the way out
    Prefetch prefetch;
    ~Workspace() {
        prefetch.finish_quietly();
        if (stream) cudaStreamDestroy(stream);
    }
};

// memcpy over the pool's threads (plain memcpy without one).
void parallel_copy(uint8_t* dst, const uint8_t* src, size_t n, core::ThreadPool* pool) {
    constexpr size_t kPiece = size_t{2} << 20;
    const int64_t pieces = static_cast<int64_t>((n + kPiece - 1) / kPiece);
    if (!pool || pieces <= 1) {
        std::memcpy(dst, src, n);
        return;
    }
    pool->parallel_for(pieces, [&](int64_t i) {
        const size_t off = static_cast<size_t>(i) * kPiece;
        std::memcpy(dst + off, src + off, std::min(kPiece, n - off));
    });
}

// Pageable host memory (e.g. the mmap'd checkpoint) -> device through a pinned buffer of n bytes,
// chunk by chunk on `stream`: the DMA of each chunk overlaps the host copy of the next.
// copy(dst, src, len) does the host copies.
template <typename Copy>
void staged_upload(void* dst, const void* src, size_t n, PinnedBuffer& pinned, cudaStream_t stream, const Copy& copy) {
    pinned.reserve(n);
    const uint8_t* s = static_cast<const uint8_t*>(src);
    for (size_t off = 0; off < n; off += kChunk) {
        const size_t len = std::min(kChunk, n - off);
        copy(pinned.bytes_ptr() + off, s + off, len);
        MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(static_cast<uint8_t*>(dst) + off, pinned.bytes_ptr() + off, len,
                                              cudaMemcpyHostToDevice, stream));
    }
}

// The current weight's upload, its host copies on the caller's pool.
void upload(Workspace& ws, void* dst, const void* src, size_t n, core::ThreadPool* pool) {
    staged_upload(dst, src, n, ws.staging, ws.stream,
                  [pool](uint8_t* d, const uint8_t* from, size_t len) { parallel_copy(d, from, len, pool); });
}

// memcpy on `threads` threads of their own (the caller's pool is busy with the current weight).
void threaded_copy(uint8_t* dst, const uint8_t* src, size_t n, unsigned threads) {
    constexpr size_t kPiece = size_t{2} << 20;
    const size_t pieces = (n + kPiece - 1) / kPiece;
    const unsigned t_count = static_cast<unsigned>(std::min<size_t>(threads, std::max<size_t>(pieces, 1)));
    std::atomic<size_t> next{0};
    const auto work = [&] {
        for (size_t i = next++; i < pieces; i = next++) {
            const size_t off = i * kPiece;
            std::memcpy(dst + off, src + off, std::min(kPiece, n - off));
        }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < t_count; ++t) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
}

// Starts the upload of `next` into the prefetch buffers (after any earlier one has finished).
void start_prefetch(Workspace& ws, const format::WeightView& next) {
    Prefetch& pf = ws.prefetch;
    pf.finish();
    const size_t n = static_cast<size_t>(next.rows * next.cols) * dtype_size(next.dtype);
    if (!pf.stream) {
        MICROSCALE_CUDA_CHECK(cudaStreamCreateWithFlags(&pf.stream, cudaStreamNonBlocking));
        MICROSCALE_CUDA_CHECK(cudaEventCreateWithFlags(&pf.done, cudaEventDisableTiming));
    }
    pf.dev.reserve((n + 255) & ~size_t{255});
    pf.src = next.data;
    pf.bytes = n;
    const int device = ws.device;
    const unsigned threads = std::clamp(std::thread::hardware_concurrency() / 4, 1u, 4u);
    pf.task = std::async(std::launch::async, [&pf, src = next.data, device, n, threads] {
        MICROSCALE_CUDA_CHECK(cudaSetDevice(device));
        staged_upload(pf.dev.ptr, src, n, pf.pinned, pf.stream, [threads](uint8_t* d, const uint8_t* from, size_t len) {
            threaded_copy(d, from, len, threads);
        });
        MICROSCALE_CUDA_CHECK(cudaEventRecord(pf.done, pf.stream));
    });
}

Workspace& workspace_storage() {
    thread_local Workspace ws;
    return ws;
}

Workspace& workspace() {
    Workspace& ws = workspace_storage();
    const int dev = selected_device();
    MICROSCALE_CUDA_CHECK(cudaSetDevice(dev));
    if (ws.device != dev) {
        // A different GPU than last time on this thread: start over on that device.
        ws.~Workspace();
        new (&ws) Workspace();
        ws.device = dev;
        MICROSCALE_CUDA_CHECK(cudaStreamCreateWithFlags(&ws.stream, cudaStreamNonBlocking));
    }
    return ws;
}

size_t round_up(size_t n) { return (n + 255) & ~size_t{255}; }

}  // namespace

format::QuantizedWeight quantize_weight(const format::WeightView& w, const format::WeightQuantSpec& spec,
                                        core::ThreadPool* pool, const format::WeightView* next) {
    const FormatInfo& info = format_info(spec.format);
    if (spec.format == Format::BF16) throw Error("tensor " + w.describe() + ": bf16 is not a quantized format");
    format::validate_weight(w, info.block_elems, info.name);
    Workspace& ws = workspace();
    const int64_t n = w.rows * w.cols;
    const size_t in_bytes = static_cast<size_t>(n) * dtype_size(w.dtype);
    ws.small.reserve(128 * 1024);  // amax bits, multipliers and the NVFP4 lookup tables
    Prefetch& pf = ws.prefetch;
    if (pf.task.valid() && pf.src == w.data && pf.bytes == in_bytes) {
        // Uploaded while the previous weight was quantized: its buffer becomes the input.
        pf.task.get();
        MICROSCALE_CUDA_CHECK(cudaStreamWaitEvent(ws.stream, pf.done, 0));
        ws.input.swap(pf.dev);
        pf.src = nullptr;
    } else {
        pf.finish();  // a hint not taken: its buffers are free again
        pf.src = nullptr;
        ws.input.reserve(round_up(in_bytes));
        upload(ws, ws.input.ptr, w.data, in_bytes, pool);
    }
    if (next && next->data && next->rows > 0 && next->cols > 0) start_prefetch(ws, *next);
    // An error below must not leave the prefetch reading memory the caller is about to unmap.
    struct DropPrefetchOnError {
        Prefetch& pf;
        int exceptions = std::uncaught_exceptions();
        ~DropPrefetchOnError() {
            if (std::uncaught_exceptions() > exceptions) pf.finish_quietly();
        }
    } drop_on_error{pf};

    format::QuantizedWeight q;
    q.format = spec.format;
    q.rows = w.rows;
    q.cols = w.cols;
    if (spec.known_amax) {
        q.amax = *spec.known_amax;
    } else {
        uint32_t* d_bits = ws.small.as<uint32_t>();
        MICROSCALE_CUDA_CHECK(cudaMemsetAsync(d_bits, 0, sizeof(uint32_t), ws.stream));
        launch_amax_bits(ws.input.ptr, w.dtype, n, d_bits, ws.stream);
        uint32_t bits = 0;
        MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(&bits, d_bits, sizeof bits, cudaMemcpyDeviceToHost, ws.stream));
        MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(ws.stream));
        q.amax = amax_from_bits(bits, w.dtype);
        if (q.amax < 0.0f) format::amax_rows_ref(w, 0, w.rows);  // throws, naming the first NaN/Inf
    }

    switch (spec.format) {
        case Format::NVFP4:
        case Format::W4A16_NVFP4: {
            const format::Nvfp4Plan plan = format::nvfp4_plan(spec.nvfp4, q.amax);
            q.global_scale = plan.scales.wsf2;
            const int64_t n_blocks = n / format::kNvfp4Block;
            q.data.resize(static_cast<size_t>(n / 2));
            q.block_scales.resize(static_cast<size_t>(n_blocks));
            // ws.small: [amax bits | multipliers | lookup tables (bf16 only)].
            const size_t mb = plan.multipliers.size() * sizeof(float);
            const size_t lut_at = round_up(64 + mb);
            const bool with_lut = w.dtype == DType::BF16;
            ws.small.reserve(lut_at + (with_lut ? sizeof(format::Nvfp4Lut) : 0));
            float* d_mult = nullptr;
            if (mb) {
                d_mult = reinterpret_cast<float*>(ws.small.as<uint8_t>() + 64);
                MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(d_mult, plan.multipliers.data(), mb, cudaMemcpyHostToDevice, ws.stream));
            }
            format::Nvfp4Lut* d_lut = nullptr;
            if (with_lut) {
                // Pageable source: the copy is staged before cudaMemcpyAsync returns, so the
                // thread's host tables can be rebuilt by the next call.
                thread_local std::unique_ptr<format::Nvfp4Lut> host_lut = std::make_unique<format::Nvfp4Lut>();
                format::nvfp4_lut_build(plan, *host_lut);
                d_lut = reinterpret_cast<format::Nvfp4Lut*>(ws.small.as<uint8_t>() + lut_at);
                MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(d_lut, host_lut.get(), sizeof(format::Nvfp4Lut), cudaMemcpyHostToDevice, ws.stream));
            }
            ws.out_a.reserve(round_up(q.data.size()));
            ws.out_b.reserve(round_up(q.block_scales.size()));
            launch_nvfp4_quantize(ws.input.ptr, w.dtype, n_blocks, plan, d_mult, d_lut, ws.out_a.as<uint8_t>(),
                                  ws.out_b.as<uint8_t>(), ws.stream);
            break;
        }
        case Format::FP8: {
            q.global_scale = format::fp8_weight_scale(spec.fp8_amax.value_or(q.amax));
            q.data.resize(static_cast<size_t>(n));
            ws.out_a.reserve(round_up(q.data.size()));
            format::Fp8CodeTable* d_table = nullptr;
            if (w.dtype == DType::BF16) {
                thread_local std::unique_ptr<format::Fp8CodeTable> host_table = std::make_unique<format::Fp8CodeTable>();
                format::fp8_table_build(DType::BF16, codec::round_to_bf16(q.global_scale), *host_table);
                if (host_table->valid) {
                    d_table = reinterpret_cast<format::Fp8CodeTable*>(ws.small.as<uint8_t>() + 256);
                    MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(d_table, host_table.get(), sizeof(format::Fp8CodeTable),
                                                          cudaMemcpyHostToDevice, ws.stream));
                }
            }
            launch_fp8_quantize(ws.input.ptr, w.dtype, n, q.global_scale, d_table, ws.out_a.as<uint8_t>(), ws.stream);
            break;
        }
        case Format::MXFP4:
        case Format::MXFP8: {
            const bool fp4 = spec.format == Format::MXFP4;
            const int64_t n_blocks = n / format::kMxBlock;
            q.data.resize(static_cast<size_t>(fp4 ? n / 2 : n));
            q.block_scales.resize(static_cast<size_t>(n_blocks));
            ws.out_a.reserve(round_up(q.data.size()));
            ws.out_b.reserve(round_up(q.block_scales.size()));
            if (fp4) launch_mxfp4_quantize(ws.input.ptr, w.dtype, n_blocks, ws.out_a.as<uint8_t>(), ws.out_b.as<uint8_t>(), ws.stream);
            else launch_mxfp8_quantize(ws.input.ptr, w.dtype, n_blocks, ws.out_a.as<uint8_t>(), ws.out_b.as<uint8_t>(), ws.stream);
            break;
        }
        default: throw Error("tensor " + w.describe() + ": unsupported format " + std::string(info.name) + " on CUDA");
    }
    // Results come back through the staging buffer (the input in it is no longer needed once the
    // stream reaches this point, which the synchronisation below guarantees).
    const size_t nd = q.data.size(), ns = q.block_scales.size();
    ws.staging.reserve(std::max(in_bytes, nd + ns));
    if (nd) MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(ws.staging.ptr, ws.out_a.ptr, nd, cudaMemcpyDeviceToHost, ws.stream));
    if (ns)
        MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(ws.staging.bytes_ptr() + nd, ws.out_b.ptr, ns, cudaMemcpyDeviceToHost, ws.stream));
    MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(ws.stream));
    parallel_copy(q.data.data(), ws.staging.bytes_ptr(), nd, pool);
    if (ns) std::memcpy(q.block_scales.data(), ws.staging.bytes_ptr() + nd, ns);
    return q;
}

void wait_prefetch() noexcept { workspace_storage().prefetch.finish_quietly(); }

std::vector<float> dequantize_weight(const format::QuantizedWeight& q) {
    Workspace& ws = workspace();
    const int64_t n = q.rows * q.cols;
    std::vector<float> out(static_cast<size_t>(n));
    if (n == 0) return out;
    ws.input.reserve(round_up(q.data.size()));
    ws.out_b.reserve(round_up(q.block_scales.size() + 1));
    ws.out_a.reserve(round_up(out.size() * sizeof(float)));
    MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(ws.input.ptr, q.data.data(), q.data.size(), cudaMemcpyHostToDevice, ws.stream));
    if (!q.block_scales.empty())
        MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(ws.out_b.ptr, q.block_scales.data(), q.block_scales.size(),
                                              cudaMemcpyHostToDevice, ws.stream));
    const uint8_t* in = ws.input.as<uint8_t>();
    const uint8_t* sc = ws.out_b.as<uint8_t>();
    float* o = ws.out_a.as<float>();
    switch (q.format) {
        case Format::NVFP4:
        case Format::W4A16_NVFP4: launch_nvfp4_dequantize(in, sc, q.global_scale, n / format::kNvfp4Block, o, ws.stream); break;
        case Format::FP8: launch_fp8_dequantize(in, q.global_scale, n, o, ws.stream); break;
        case Format::MXFP4: launch_mxfp4_dequantize(in, sc, n / format::kMxBlock, o, ws.stream); break;
        case Format::MXFP8: launch_mxfp8_dequantize(in, sc, n / format::kMxBlock, o, ws.stream); break;
        default: throw Error("dequantize on CUDA: not a quantized format");
    }
    MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(out.data(), o, out.size() * sizeof(float), cudaMemcpyDeviceToHost, ws.stream));
    MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(ws.stream));
    return out;
}

}  // namespace microscale::cuda
