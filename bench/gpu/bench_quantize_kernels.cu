// GPU benchmark of the weight-format kernels against the device-to-device copy roofline of the
// same GPU: medians of CUDA-event timings after warm-up, one weight shape, every format/search.
//
//   microscale_gpu_bench [--rows 14336] [--cols 4096] [--iters 20] [--save-weights FILE]
//
// Effective bandwidth counts the bytes each kernel must move: 2 B read + 0.5625 B written per
// element for NVFP4 (+1 B for FP8, +0.53 for MXFP8, +0.53 for MXFP4), plus 2 B more when the
// tensor amax pass runs first. --save-weights writes the bf16 tensor (raw, row-major) so that
// tools/bench_torch_quant.py times PyTorch on exactly the same values.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cuda/check.cuh"
#include "cuda/quantize_kernels.cuh"
#include "format/nvfp4.h"
#include "format/codec/bf16.h"
#include "format/fp8_table.h"
#include "format/nvfp4_lut.h"

using namespace microscale;
using namespace microscale::format;
using namespace microscale::cuda;

namespace {

// The NVFP4 kernel's memory traffic without its arithmetic: per 16-element block read 32 B, write
// 8 B + 1 B, in the quantize kernel's thread-per-block order (coalesced = false) or with each
// warp's loads fully coalesced (thread t reads 16-byte chunks t and 32 + t of the warp's 1 KiB).
// What the access pattern alone allows on this GPU.
__global__ void __launch_bounds__(256) traffic_kernel(const uint4* w, int64_t n_blocks, uint2* packed, uint8_t* scales,
                                                      bool coalesced) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    const int lane = threadIdx.x & 31;
    for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < n_blocks; b += stride) {
        uint4 q0, q1;
        if (coalesced) {
            const int64_t warp0 = (b - lane) * 2;  // first 16-byte chunk of the warp's 32 blocks
            q0 = __ldg(w + warp0 + lane);
            q1 = __ldg(w + warp0 + 32 + lane);
        } else {
            q0 = __ldg(w + 2 * b);
            q1 = __ldg(w + 2 * b + 1);
        }
        const uint32_t x = q0.x ^ q0.y ^ q0.z ^ q0.w, y = q1.x ^ q1.y ^ q1.z ^ q1.w;
        packed[b] = make_uint2(x, y);
        scales[b] = static_cast<uint8_t>(x ^ y);
    }
}

// Heavy-tailed bf16 values from a hash: Student-t(3)-like tails, a few outlier columns.
__global__ void fill_weights(uint16_t* w, int64_t rows, int64_t cols, uint32_t seed) {
    const int64_t n = rows * cols;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        uint32_t h = static_cast<uint32_t>(i) * 0x9E3779B1u ^ seed;
        h ^= h >> 16; h *= 0x85EBCA6Bu; h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16;
        const float u1 = (static_cast<float>(h & 0xFFFF) + 0.5f) / 65536.0f;
        const float u2 = (static_cast<float>(h >> 16) + 0.5f) / 65536.0f;
        const float g = sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
        const float t = g / sqrtf(0.3f + 2.7f * u1);  // heavier tails than a Gaussian
        const int64_t c = i % cols;
        const float gain = (c % 97 == 13) ? 12.0f : 1.0f;
        const float v = 0.02f * t * gain;
        uint32_t b;
        memcpy(&b, &v, 4);
        w[i] = static_cast<uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
    }
}

float median(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Median milliseconds of fn over iters runs after 3 warm-ups.
float time_ms(const std::function<void()>& fn, int iters, cudaStream_t s) {
    cudaEvent_t a, b;
    MICROSCALE_CUDA_CHECK(cudaEventCreate(&a));
    MICROSCALE_CUDA_CHECK(cudaEventCreate(&b));
    for (int i = 0; i < 3; ++i) fn();
    MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(s));
    std::vector<float> t;
    for (int i = 0; i < iters; ++i) {
        MICROSCALE_CUDA_CHECK(cudaEventRecord(a, s));
        fn();
        MICROSCALE_CUDA_CHECK(cudaEventRecord(b, s));
        MICROSCALE_CUDA_CHECK(cudaEventSynchronize(b));
        float ms = 0;
        MICROSCALE_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms);
    }
    MICROSCALE_CUDA_CHECK(cudaEventDestroy(a));
    MICROSCALE_CUDA_CHECK(cudaEventDestroy(b));
    return median(t);
}

struct Mode {
    std::string name;
    int kind;  // 0 nvfp4, 1 fp8, 2 mxfp4, 3 mxfp8
    Nvfp4Config cfg;
    double out_bytes_per_elem;
    int candidates;  // NVFP4 block-scale candidates evaluated per block (1 for max)
    bool lut = true;  // NVFP4: the bf16 lookup tables (false: the seven-compare cut path)
};

}  // namespace

int main(int argc, char** argv) {
    int64_t rows = 14336, cols = 4096;
    int iters = 20;
    std::string save;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&] {
            if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", a.c_str()); std::exit(2); }
            return std::string(argv[++i]);
        };
        if (a == "--rows") rows = std::stoll(next());
        else if (a == "--cols") cols = std::stoll(next());
        else if (a == "--iters") iters = std::stoi(next());
        else if (a == "--save-weights") save = next();
        else { std::fprintf(stderr, "usage: %s [--rows R] [--cols C] [--iters N] [--save-weights FILE]\n", argv[0]); return 2; }
    }
    try {
        cudaDeviceProp prop{};
        MICROSCALE_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        cudaStream_t s;
        MICROSCALE_CUDA_CHECK(cudaStreamCreate(&s));
        const int64_t n = rows * cols;

        // Copy roofline: device-to-device cudaMemcpy of 1 GiB (read + write counted).
        const size_t copy_bytes = size_t{1} << 30;
        void *ca, *cb;
        MICROSCALE_CUDA_CHECK(cudaMalloc(&ca, copy_bytes));
        MICROSCALE_CUDA_CHECK(cudaMalloc(&cb, copy_bytes));
        MICROSCALE_CUDA_CHECK(cudaMemsetAsync(ca, 1, copy_bytes, s));
        const float copy_ms = time_ms([&] { MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(cb, ca, copy_bytes, cudaMemcpyDeviceToDevice, s)); }, iters, s);
        const double copy_gbs = 2.0 * static_cast<double>(copy_bytes) / (copy_ms * 1e6);
        MICROSCALE_CUDA_CHECK(cudaFree(ca));
        MICROSCALE_CUDA_CHECK(cudaFree(cb));

        uint16_t* w;
        uint8_t *out, *sc;
        uint32_t* bits;
        float* mult;
        MICROSCALE_CUDA_CHECK(cudaMalloc(&w, static_cast<size_t>(n) * 2));
        MICROSCALE_CUDA_CHECK(cudaMalloc(&out, static_cast<size_t>(n)));
        MICROSCALE_CUDA_CHECK(cudaMalloc(&sc, static_cast<size_t>(n / 16)));
        MICROSCALE_CUDA_CHECK(cudaMalloc(&bits, 4));
        MICROSCALE_CUDA_CHECK(cudaMalloc(&mult, 4096 * 4));
        Nvfp4Lut* lut;
        uint8_t *ref_out, *ref_sc;  // the cut path's bytes, to check the tables give the same
        MICROSCALE_CUDA_CHECK(cudaMalloc(&lut, sizeof(Nvfp4Lut)));
        MICROSCALE_CUDA_CHECK(cudaMalloc(&ref_out, static_cast<size_t>(n / 2)));
        MICROSCALE_CUDA_CHECK(cudaMalloc(&ref_sc, static_cast<size_t>(n / 16)));
        auto host_lut = std::make_unique<Nvfp4Lut>();
        fill_weights<<<prop.multiProcessorCount * 8, 256, 0, s>>>(w, rows, cols, 1234u);
        MICROSCALE_CUDA_CHECK_LAUNCH();
        MICROSCALE_CUDA_CHECK(cudaMemsetAsync(bits, 0, 4, s));
        launch_amax_bits(w, DType::BF16, n, bits, s);
        uint32_t hbits = 0;
        MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(&hbits, bits, 4, cudaMemcpyDeviceToHost, s));
        MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(s));
        const float amax = amax_from_bits(hbits, DType::BF16);
        // The FP8 code table for this tensor's scale (as quantize_weight builds it).
        Fp8CodeTable* fp8_table;
        MICROSCALE_CUDA_CHECK(cudaMalloc(&fp8_table, sizeof(Fp8CodeTable)));
        {
            auto t = std::make_unique<Fp8CodeTable>();
            fp8_table_build(DType::BF16, codec::round_to_bf16(amax / 448.0f), *t);
            if (!t->valid) throw std::runtime_error("fp8 table not valid for this tensor");
            MICROSCALE_CUDA_CHECK(cudaMemcpy(fp8_table, t.get(), sizeof(Fp8CodeTable), cudaMemcpyHostToDevice));
        }
        if (!save.empty()) {
            std::vector<uint16_t> host(static_cast<size_t>(n));
            MICROSCALE_CUDA_CHECK(cudaMemcpy(host.data(), w, host.size() * 2, cudaMemcpyDeviceToHost));
            FILE* f = std::fopen(save.c_str(), "wb");
            if (!f || std::fwrite(host.data(), 2, host.size(), f) != host.size()) { std::perror(save.c_str()); return 1; }
            std::fclose(f);
        }

        Nvfp4Config dyn, smax, mse, sweep;
        smax.search = Nvfp4Search::STATIC_MAX;
        mse.search = Nvfp4Search::MSE;
        sweep.search = Nvfp4Search::FP8_SWEEP;
        const std::vector<Mode> modes = {
            {"nvfp4 max (dynamic)", 0, dyn, 0.5625, 1},
            {"  same, cut path", 0, dyn, 0.5625, 1, false},
            {"nvfp4 max (static)", 0, smax, 0.5625, 1},
            {"nvfp4 four-over-six", 0, Nvfp4Config::four_over_six_preset(), 0.5625, 2},
            {"  same, cut path", 0, Nvfp4Config::four_over_six_preset(), 0.5625, 2, false},
            {"nvfp4 fp8 sweep (126)", 0, sweep, 0.5625, 126},
            {"nvfp4 mse (39)", 0, mse, 0.5625, 39},
            {"fp8 per-tensor", 1, {}, 1.0, 0},
            {"  same, computed", 1, {}, 1.0, 0, false},
            {"mxfp4", 2, {}, 0.5 + 1.0 / 32, 0},
            {"mxfp8", 3, {}, 1.0 + 1.0 / 32, 0},
        };
        std::printf("device: %s, %d SMs; weight [%lld, %lld] bf16 (%.1f MiB), amax %.6g; medians of %d runs\n", prop.name,
                    prop.multiProcessorCount, static_cast<long long>(rows), static_cast<long long>(cols),
                    static_cast<double>(n) * 2 / 1048576.0, amax, iters);
        std::printf("copy roofline (D2D cudaMemcpy 1 GiB, read+write): %.0f GB/s\n\n", copy_gbs);
        std::printf("%-24s %10s %10s %8s %12s %10s %8s %14s\n", "kernel", "ms", "GB/s", "%copy", "ms(+amax)", "GB/s", "%copy",
                    "Gblock-cand/s");
        {
            // The tensor-amax pass alone (a read of the weight), which the "+amax" columns add.
            const float ms = time_ms([&] {
                MICROSCALE_CUDA_CHECK(cudaMemsetAsync(bits, 0, 4, s));
                launch_amax_bits(w, DType::BF16, n, bits, s);
            }, iters, s);
            const double gbs = static_cast<double>(n) * 2.0 / (ms * 1e6);
            std::printf("%-24s %10.3f %10.0f %7.1f%%\n", "amax pass (read only)", ms, gbs, 100.0 * gbs / copy_gbs);
            for (bool coalesced : {false, true}) {
                int per_sm = 0;
                MICROSCALE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, traffic_kernel, 256, 0));
                const int grid = prop.multiProcessorCount * per_sm;
                const float tms = time_ms([&] {
                    traffic_kernel<<<grid, 256, 0, s>>>(reinterpret_cast<const uint4*>(w), n / 16,
                                                        reinterpret_cast<uint2*>(out), sc, coalesced);
                }, iters, s);
                const double tg = static_cast<double>(n) * 2.5625 / (tms * 1e6);
                std::printf("%-24s %10.3f %10.0f %7.1f%%\n", coalesced ? "traffic only, coalesced" : "traffic only (no math)",
                            tms, tg, 100.0 * tg / copy_gbs);
            }
        }
        for (const Mode& m : modes) {
            const Nvfp4Plan plan = nvfp4_plan(m.cfg, amax);
            if (!plan.multipliers.empty())
                MICROSCALE_CUDA_CHECK(cudaMemcpy(mult, plan.multipliers.data(), plan.multipliers.size() * 4, cudaMemcpyHostToDevice));
            double build_us = 0;
            if (m.kind == 0) {
                const auto t0 = std::chrono::steady_clock::now();
                nvfp4_lut_build(plan, *host_lut);
                build_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
                MICROSCALE_CUDA_CHECK(cudaMemcpy(lut, host_lut.get(), sizeof(Nvfp4Lut), cudaMemcpyHostToDevice));
            }
            const Nvfp4Lut* use_lut = m.lut ? lut : nullptr;
            auto kernel = [&] {
                switch (m.kind) {
                    case 0: launch_nvfp4_quantize(w, DType::BF16, n / 16, plan, mult, use_lut, out, sc, s); break;
                    case 1: launch_fp8_quantize(w, DType::BF16, n, amax / 448.0f, m.lut ? fp8_table : nullptr, out, s); break;
                    case 2: launch_mxfp4_quantize(w, DType::BF16, n / 32, out, sc, s); break;
                    default: launch_mxfp8_quantize(w, DType::BF16, n / 32, out, sc, s); break;
                }
            };
            auto with_amax = [&] {
                MICROSCALE_CUDA_CHECK(cudaMemsetAsync(bits, 0, 4, s));
                launch_amax_bits(w, DType::BF16, n, bits, s);
                kernel();
            };
            const float k_ms = time_ms(kernel, iters, s);
            const bool needs_amax = m.kind <= 1;
            const float a_ms = needs_amax ? time_ms(with_amax, iters, s) : k_ms;
            const double elems = static_cast<double>(n);
            const double k_gbs = elems * (2.0 + m.out_bytes_per_elem) / (k_ms * 1e6);
            const double a_gbs = elems * (2.0 + m.out_bytes_per_elem + (needs_amax ? 2.0 : 0.0)) / (a_ms * 1e6);
            const double evals = m.candidates > 0 ? elems / 16 * m.candidates / (k_ms * 1e6) : 0.0;
            std::printf("%-24s %10.3f %10.0f %7.1f%% %12.3f %10.0f %7.1f%% %14.2f", m.name.c_str(), k_ms, k_gbs,
                        100.0 * k_gbs / copy_gbs, a_ms, a_gbs, 100.0 * a_gbs / copy_gbs, evals);
            if (m.kind == 0 && m.lut) {
                // The same bytes as the cut path (the gpu tests check both against the CPU reference).
                launch_nvfp4_quantize(w, DType::BF16, n / 16, plan, mult, nullptr, ref_out, ref_sc, s);
                MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(s));
                std::vector<uint8_t> a(static_cast<size_t>(n / 2 + n / 16)), b(a.size());
                MICROSCALE_CUDA_CHECK(cudaMemcpy(a.data(), out, n / 2, cudaMemcpyDeviceToHost));
                MICROSCALE_CUDA_CHECK(cudaMemcpy(a.data() + n / 2, sc, n / 16, cudaMemcpyDeviceToHost));
                MICROSCALE_CUDA_CHECK(cudaMemcpy(b.data(), ref_out, n / 2, cudaMemcpyDeviceToHost));
                MICROSCALE_CUDA_CHECK(cudaMemcpy(b.data() + n / 2, ref_sc, n / 16, cudaMemcpyDeviceToHost));
                const bool same = std::memcmp(a.data(), b.data(), a.size()) == 0;
                std::printf("   tables: %d rows, %d/127 codes, host build %.0f us, bytes %s", host_lut->rows,
                            host_lut->regular_codes, build_us, same ? "== cut path" : "DIFFER from the cut path");
                if (!same) throw std::runtime_error("lookup-table bytes differ from the cut path");
            }
            std::printf("\n");
        }
        std::printf("\n(GB/s = bytes the kernel must move / time: 2 B read + output bytes per element, +2 B for the amax pass.\n"
                    " Gblock-cand/s = 16-element blocks x scale candidates evaluated per ns.)\n");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "microscale_gpu_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
