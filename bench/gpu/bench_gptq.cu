// GPU GPTQ benchmark (cuda::gptq, NVFP4 fixed grid, block 128): CUDA-event medians after warm-up,
// one line per shape (out x in; in is the Hessian's size, so 4096x14336 is a down_proj).
//
//   microscale_gpu_bench_gptq [--shapes 4096x4096,4096x14336,14336x4096] [--iters 5] [--block 128]
//                             [--act-order] [--no-host]
//
// "resident" times cuda::gptq_device with the tensors already on the GPU and without the two
// objectives: the same work as tools/bench_torch_gptq.py (Hessian preparation, Cholesky inverse,
// column loop, lazy updates). "+objectives" adds the two sum_r e^T H e objectives (two more
// out x in x in sgemms); "host api" is cuda::gptq from host buffers, as the pipeline calls it
// (pageable copies of W and H in, W out), timed on the host. The Hessian is 2/n X^T X of n = 512
// random rows (damping makes it definite); GPTQ's cost does not depend on its values.
// MICROSCALE_GPTQ_PROFILE=1 makes every cuda::gptq call print its phases' GPU times on stderr.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/check.cuh"
#include "cuda/gptq_cuda.h"
#include "format/nvfp4_block.h"

using namespace microscale;

namespace {

// Deterministic hash "random" numbers, fast enough for 58M-element weights on the host.
uint32_t mix(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}
float gauss(uint64_t i, uint32_t seed) {
    const uint32_t h1 = mix(static_cast<uint32_t>(i) * 0x9E3779B1u ^ seed ^ static_cast<uint32_t>(i >> 32));
    const uint32_t h2 = mix(h1 ^ 0x68E31DA4u);
    const float u1 = (static_cast<float>(h1 >> 8) + 0.5f) / 16777216.0f;
    const float u2 = (static_cast<float>(h2 >> 8) + 0.5f) / 16777216.0f;
    return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.2831853f * u2);
}

float median(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

#define BENCH_CUBLAS_CHECK(call)                                                        \
    do {                                                                                \
        if ((call) != CUBLAS_STATUS_SUCCESS) {                                          \
            std::fprintf(stderr, "cuBLAS call failed: %s\n", #call);                    \
            std::exit(1);                                                               \
        }                                                                               \
    } while (0)

struct Shape {
    int64_t out, in;
};

std::vector<Shape> parse_shapes(const std::string& s) {
    std::vector<Shape> v;
    size_t pos = 0;
    while (pos < s.size()) {
        size_t comma = s.find(',', pos);
        if (comma == std::string::npos) comma = s.size();
        const std::string item = s.substr(pos, comma - pos);
        const size_t x = item.find('x');
        if (x == std::string::npos) {
            std::fprintf(stderr, "bad shape %s (want OUTxIN)\n", item.c_str());
            std::exit(2);
        }
        v.push_back({std::atoll(item.substr(0, x).c_str()), std::atoll(item.substr(x + 1).c_str())});
        pos = comma + 1;
    }
    return v;
}

void bench_shape(const Shape& sh, int iters, const algo::GptqOptions& opts, bool host_api, cudaStream_t stream,
                 cublasHandle_t blas) {
    const int64_t out = sh.out, in = sh.in, n_rows = 512;
    // Weights: 0.02 * Gaussian / sqrt(mixing) (heavier tails), every 97th column x12.
    std::vector<float> w(static_cast<size_t>(out * in));
    for (int64_t i = 0; i < out * in; ++i) {
        const float g = gauss(static_cast<uint64_t>(i), 1u);
        const float u = (static_cast<float>(mix(static_cast<uint32_t>(i) ^ 0xABCDu) >> 8) + 0.5f) / 16777216.0f;
        w[static_cast<size_t>(i)] = 0.02f * g / std::sqrt(0.3f + 2.7f * u) * ((i % in) % 97 == 13 ? 12.0f : 1.0f);
    }
    float amax = 0;
    for (float v : w) amax = std::fmax(amax, std::fabs(v));
    const format::Nvfp4Scales s = format::nvfp4_scales(amax, false);
    std::vector<uint8_t> codes(static_cast<size_t>(out * in / 16));
    for (int64_t r = 0; r < out; ++r)
        for (int64_t b = 0; b < in / 16; ++b) {
            float m = 0;
            for (int j = 0; j < 16; ++j) m = std::fmax(m, std::fabs(w[static_cast<size_t>(r * in + b * 16 + j)]));
            codes[static_cast<size_t>(r * (in / 16) + b)] = format::nvfp4_code_static(m, s);
        }
    std::vector<float> x(static_cast<size_t>(n_rows * in));
    for (int64_t i = 0; i < n_rows * in; ++i) x[static_cast<size_t>(i)] = gauss(static_cast<uint64_t>(i), 2u);

    float *d_w, *d_out, *d_h, *d_x;
    uint8_t* d_codes;
    MICROSCALE_CUDA_CHECK(cudaMalloc(&d_w, w.size() * 4));
    MICROSCALE_CUDA_CHECK(cudaMalloc(&d_out, w.size() * 4));
    MICROSCALE_CUDA_CHECK(cudaMalloc(&d_h, static_cast<size_t>(in * in) * 4));
    MICROSCALE_CUDA_CHECK(cudaMalloc(&d_x, x.size() * 4));
    MICROSCALE_CUDA_CHECK(cudaMalloc(&d_codes, codes.size()));
    MICROSCALE_CUDA_CHECK(cudaMemcpy(d_w, w.data(), w.size() * 4, cudaMemcpyHostToDevice));
    MICROSCALE_CUDA_CHECK(cudaMemcpy(d_x, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
    MICROSCALE_CUDA_CHECK(cudaMemcpy(d_codes, codes.data(), codes.size(), cudaMemcpyHostToDevice));
    // H = 2/n X^T X: row-major X [n, in] is column-major X^T; H = (X^T)(X^T)^T.
    const float alpha = 2.0f / static_cast<float>(n_rows), beta = 0.0f;
    BENCH_CUBLAS_CHECK(cublasSetStream(blas, stream));
    BENCH_CUBLAS_CHECK(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_T, static_cast<int>(in), static_cast<int>(in),
                                   static_cast<int>(n_rows), &alpha, d_x, static_cast<int>(in), d_x,
                                   static_cast<int>(in), &beta, d_h, static_cast<int>(in)));
    MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(stream));

    cudaEvent_t a, b;
    MICROSCALE_CUDA_CHECK(cudaEventCreate(&a));
    MICROSCALE_CUDA_CHECK(cudaEventCreate(&b));
    algo::GptqResult last;
    auto time_resident = [&](bool objectives) {
        for (int i = 0; i < 2; ++i)
            last = cuda::gptq_device(d_w, d_out, out, in, d_h, d_codes, algo::FixedGrid::Kind::NVFP4, s.wsf2, opts,
                                     objectives, stream);
        std::vector<float> t;
        for (int i = 0; i < iters; ++i) {
            MICROSCALE_CUDA_CHECK(cudaEventRecord(a, stream));
            last = cuda::gptq_device(d_w, d_out, out, in, d_h, d_codes, algo::FixedGrid::Kind::NVFP4, s.wsf2, opts,
                                     objectives, stream);
            MICROSCALE_CUDA_CHECK(cudaEventRecord(b, stream));
            MICROSCALE_CUDA_CHECK(cudaEventSynchronize(b));
            float ms = 0;
            MICROSCALE_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
            t.push_back(ms);
        }
        return median(t);
    };
    const float resident = time_resident(false);
    const float with_obj = time_resident(true);
    const double rtn = last.objective_rtn, gq = last.objective_gptq;
    const bool fallback = last.identity_fallback;
    float host_ms = -1.0f;
    if (host_api) {
        std::vector<float> h(static_cast<size_t>(in * in));
        MICROSCALE_CUDA_CHECK(cudaMemcpy(h.data(), d_h, h.size() * 4, cudaMemcpyDeviceToHost));
        const algo::FixedGrid grid = algo::FixedGrid::nvfp4(codes, s.wsf2);
        (void)cuda::gptq(w, out, in, h, grid, opts);
        std::vector<float> t;
        for (int i = 0; i < std::max(3, iters / 2); ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            (void)cuda::gptq(w, out, in, h, grid, opts);
            t.push_back(std::chrono::duration<float, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        host_ms = median(t);
    }
    std::printf("gptq %5lldx%-5lld nvfp4 block %d%s: resident %9.2f ms | +objectives %9.2f ms | host api %9.2f ms | "
                "objective gptq/rtn %.4f%s\n",
                static_cast<long long>(out), static_cast<long long>(in), opts.block_size,
                opts.act_order ? " act_order" : "", resident, with_obj, host_ms, rtn > 0 ? gq / rtn : 0.0,
                fallback ? " (IDENTITY FALLBACK)" : "");
    std::fflush(stdout);
    MICROSCALE_CUDA_CHECK(cudaEventDestroy(a));
    MICROSCALE_CUDA_CHECK(cudaEventDestroy(b));
    cudaFree(d_w);
    cudaFree(d_out);
    cudaFree(d_h);
    cudaFree(d_x);
    cudaFree(d_codes);
}

}  // namespace

int main(int argc, char** argv) {
    std::string shapes = "4096x4096,4096x14336,14336x4096";
    int iters = 5;
    bool host_api = true;
    algo::GptqOptions opts;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--shapes" && i + 1 < argc) shapes = argv[++i];
        else if (a == "--iters" && i + 1 < argc) iters = std::max(5, std::atoi(argv[++i]));
        else if (a == "--block" && i + 1 < argc) opts.block_size = std::atoi(argv[++i]);
        else if (a == "--act-order") opts.act_order = true;
        else if (a == "--no-host") host_api = false;
        else {
            std::fprintf(stderr,
                         "usage: %s [--shapes OUTxIN,...] [--iters N>=5] [--block 128] [--act-order] [--no-host]\n",
                         argv[0]);
            return 2;
        }
    }
    try {
        cudaDeviceProp prop{};
        MICROSCALE_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        std::printf("# %s, %d SMs; medians of %d after 2 warm-ups (CUDA events)\n", prop.name,
                    prop.multiProcessorCount, iters);
        cudaStream_t stream;
        MICROSCALE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
        cublasHandle_t blas;
        BENCH_CUBLAS_CHECK(cublasCreate(&blas));
        for (const Shape& sh : parse_shapes(shapes)) bench_shape(sh, iters, opts, host_api, stream, blas);
        cublasDestroy(blas);
        MICROSCALE_CUDA_CHECK(cudaStreamDestroy(stream));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
