// GPTQ on the GPU (spec §5.5, the CPU version in src/algo/gptq*.cpp). Per call:
//   1. the Hessian diagonal comes to the host: dead inputs (H[i,i] == 0), the act-order
//      permutation (stable sort by decreasing H[i,i]) and damp = float(perc_damp * mean diag),
//      the mean summed in double in the CPU's order;
//   2. k_prepare_hessian builds J P^T (H with dead rows/cols cleared, H[i,i] = 1, + damp) P J
//      (P the permutation, J the order reversal); cuSOLVER's potrf of it (upper, column-major,
//      i.e. lower row-major) and one more storage reversal give V upper with H = V V^T, and trtri
//      gives U = inv(V), U^T U = inv(H): the CPU's half-flop route to chol(chol_inverse(H), upper).
//      Not positive definite (potrf or trtri info != 0, or a non-finite H): U = identity;
//   3. per column block: k_gptq_block (one warp per row, U's block in shared memory) rounds each
//      column onto the fixed grid with algo/gptq_round.h and spreads its scaled error inside the
//      block exactly as the CPU's row loop does (same operations in the same order, --fmad=false);
//      then W[:, b1:] -= Err * U[blk, b1:] as one fp32 cuBLAS sgemm (default math: no TF32);
//   4. the columns go back to the original order; objectives sum_r e_r^T H e_r on the original H
//      as fp32 sgemm E*H and a double sum of e .* (E*H) in a fixed order (deterministic).
// No fmt here: its headers do not compile in nvcc's C++20 host pass.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "algo/gptq_round.h"
#include "cuda/check.cuh"
#include "cuda/cublas_check.cuh"
#include "cuda/device.h"
#include "cuda/device_buffer.cuh"
#include "cuda/gptq_cuda.h"
#include "cuda/launch.cuh"
#include "microscale/error.h"


#define MICROSCALE_GPTQ_CUSOLVER_CHECK(call)                                                              \
    do {                                                                                                  \
        const cusolverStatus_t microscale_st_ = (call);                                                   \
        if (microscale_st_ != CUSOLVER_STATUS_SUCCESS)                                                    \
            throw ::microscale::Error(std::string("cuSOLVER error: ") + #call + " failed at " + __FILE__ + \
                                      ":" + std::to_string(__LINE__) + ": status " +                      \
                                      std::to_string(static_cast<int>(microscale_st_)));                  \
    } while (0)

namespace microscale::cuda {
namespace {

constexpr int kWarps = 8;  // rows (warps) per CTA of the in-block kernel
constexpr int kThreads = 256;

// ---------------------------------------------------------------------------------------------
// Device side

struct DeviceGrid {
    bool fp8;
    float scale;             // FP8: per-tensor scale; NVFP4: wsf2
    const uint8_t* codes;    // NVFP4 [out, in/16] E4M3 block codes
    int64_t blocks;          // in / 16
};

// Element (r, c) of the ORIGINAL column order rounded onto the grid.
__device__ __forceinline__ float round_fixed(const DeviceGrid& g, int64_t r, int64_t c, float x) {
    if (g.fp8) return algo::gptq_round_fp8(x, g.scale);
    return algo::gptq_round_nvfp4(x, algo::gptq_nvfp4_divisor(__ldg(g.codes + r * g.blocks + c / 16), g.scale));
}

// Writes element (i, j) of M = P^T H' P + damp I (H' = H with dead rows/cols cleared, dead
// diagonal 1) at the order-reversed position (n-1-i, n-1-j): the lower Cholesky factor of the
// reversed matrix is J V J. Also flags a non-finite entry.
__global__ void k_prepare_hessian(const float* __restrict__ h, float* __restrict__ m, int64_t n,
                                  const int* __restrict__ perm, const uint8_t* __restrict__ dead, float damp,
                                  int* __restrict__ bad) {
    const int64_t total = n * n;
    for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < total;
         k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t i = k / n, j = k - i * n;
        const int64_t pi = perm[i], pj = perm[j];
        float v;
        if (dead[pi] || dead[pj]) v = i == j ? 1.0f : 0.0f;
        else v = h[pi * n + pj];
        if (i == j) v += damp;
        if (!isfinite(v)) atomicExch(bad, 1);
        m[total - 1 - k] = v;
    }
}

// In place m[k] <-> m[total-1-k] (J A J for a square matrix in either layout).
__global__ void k_reverse(float* m, int64_t total) {
    const int64_t half = total / 2;
    for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < half;
         k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const float a = m[k];
        m[k] = m[total - 1 - k];
        m[total - 1 - k] = a;
    }
}

__global__ void k_identity(float* m, int64_t n) {
    const int64_t total = n * n;
    for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < total;
         k += static_cast<int64_t>(gridDim.x) * blockDim.x)
        m[k] = (k / n == k % n) ? 1.0f : 0.0f;
}

// Working weights in quantization order, dead inputs zeroed: ww[r, j] = dead[p_j] ? 0 : w[r, p_j].
__global__ void k_permute_weights(const float* __restrict__ w, float* __restrict__ ww, int64_t out, int64_t in,
                                  const int* __restrict__ perm, const uint8_t* __restrict__ dead) {
    const int64_t total = out * in;
    for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < total;
         k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t r = k / in, j = k - r * in;
        const int64_t c = perm[j];
        ww[k] = dead[c] ? 0.0f : w[r * in + c];
    }
}

// Back to the original order: res[r, p_j] = ww[r, j].
__global__ void k_unpermute_weights(const float* __restrict__ ww, float* __restrict__ res, int64_t out, int64_t in,
                                    const int* __restrict__ perm) {
    const int64_t total = out * in;
    for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < total;
         k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t r = k / in, j = k - r * in;
        res[r * in + perm[j]] = ww[k];
    }
}

// One column block [b0, b0+nb) of every row: warp = row. For i in block order, with the row's
// segment s (shared memory):  e = (s[i] - q(s[i])) / U[i,i];  s[j] -= e * U[i,j] for j > i;
// err[r, i] = e. Exactly the CPU's per-row loop (gptq.cpp), operation for operation.
// U's block (nb x nb) sits in shared memory when u_shared (else it is read from global, ld = in).
__global__ void k_gptq_block(float* __restrict__ ww, int64_t out, int64_t in, int64_t b0, int nb,
                             const float* __restrict__ u, bool u_shared, float* __restrict__ err, int ld_err,
                             DeviceGrid grid, const int* __restrict__ perm) {
    extern __shared__ float smem[];
    float* su = smem;
    float* seg_all = smem + (u_shared ? static_cast<int64_t>(nb) * nb : 0);
    if (u_shared) {
        for (int k = threadIdx.x; k < nb * nb; k += blockDim.x) {
            const int i = k / nb, j = k - i * nb;
            su[k] = u[(b0 + i) * in + b0 + j];
        }
        __syncthreads();
    }
    const float* ub = u_shared ? su : u + b0 * in + b0;
    const int64_t ldu = u_shared ? nb : in;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float* seg = seg_all + warp * nb;
    for (int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + warp; r < out;
         r += static_cast<int64_t>(gridDim.x) * kWarps) {
        float* wrow = ww + r * in + b0;
        for (int j = lane; j < nb; j += 32) seg[j] = wrow[j];
        __syncwarp();
        for (int i = 0; i < nb; ++i) {
            const float* urow = ub + i * ldu;
            const float x = seg[i];
            const float e = (x - round_fixed(grid, r, perm[b0 + i], x)) / urow[i];
            if (lane == 0) err[r * ld_err + i] = e;
            for (int j = lane; j < nb; j += 32)
                if (j > i) seg[j] -= e * urow[j];
            __syncwarp();
        }
        for (int j = lane; j < nb; j += 32) wrow[j] = seg[j];
        __syncwarp();
    }
}

// e[r, c] = w[r0 + r, c] - q(src[r0 + r, c]) for rows [r0, r0 + rows), original column order.
__global__ void k_error(const float* __restrict__ w, const float* __restrict__ src, float* __restrict__ e,
                        int64_t r0, int64_t rows, int64_t in, DeviceGrid grid) {
    const int64_t total = rows * in;
    for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < total;
         k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t r = k / in, c = k - r * in;
        const int64_t g = (r0 + r) * in + c;
        e[k] = w[g] - round_fixed(grid, r0 + r, c, src[g]);
    }
}

// partial[blockIdx.x] = sum of double(e[k]) * t[k] over this CTA's grid-stride share, reduced in a
// fixed tree: the same bits for the same grid size.
__global__ void k_dot(const float* __restrict__ e, const float* __restrict__ t, int64_t n, double* __restrict__ partial) {
    __shared__ double sh[kThreads];
    double acc = 0.0;
    for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
         k += static_cast<int64_t>(gridDim.x) * blockDim.x)
        acc += static_cast<double>(e[k]) * static_cast<double>(t[k]);
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
        if (static_cast<int>(threadIdx.x) < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = sh[0];
}

// ---------------------------------------------------------------------------------------------
// Host side


// One per host thread and device.
struct Workspace {
    int device = -1;
    cudaStream_t stream = nullptr;
    cublasHandle_t blas = nullptr;
    cusolverDnHandle_t solver = nullptr;
    cusolverDnParams_t params = nullptr;
    DeviceBuffer w_in, h_in, codes, result;  // host API copies of the inputs / output
    DeviceBuffer m, ww, err, perm, dead, e, t, partial, info, solver_work;
    std::vector<char> solver_host;
    ~Workspace() {
        if (params) cusolverDnDestroyParams(params);
        if (solver) cusolverDnDestroy(solver);
        if (blas) cublasDestroy(blas);
        if (stream) cudaStreamDestroy(stream);
    }
};

Workspace& workspace() {
    thread_local Workspace ws;
    const int dev = selected_device();
    MICROSCALE_CUDA_CHECK(cudaSetDevice(dev));
    if (ws.device != dev) {
        ws.~Workspace();
        new (&ws) Workspace();
        MICROSCALE_CUDA_CHECK(cudaStreamCreateWithFlags(&ws.stream, cudaStreamNonBlocking));
        MICROSCALE_CUBLAS_CHECK(cublasCreate(&ws.blas));
        MICROSCALE_CUBLAS_CHECK(cublasSetMathMode(ws.blas, CUBLAS_DEFAULT_MATH));  // fp32, no TF32
        MICROSCALE_GPTQ_CUSOLVER_CHECK(cusolverDnCreate(&ws.solver));
        MICROSCALE_GPTQ_CUSOLVER_CHECK(cusolverDnCreateParams(&ws.params));
        ws.device = dev;
    }
    return ws;
}

// MICROSCALE_GPTQ_PROFILE=1: each call prints its phases' GPU times on stderr (CUDA events on the
// call's stream; host gaps at the synchronisation points count toward the phase after them).
class PhaseTimer {
public:
    explicit PhaseTimer(cudaStream_t s) : stream_(s), on_(std::getenv("MICROSCALE_GPTQ_PROFILE") != nullptr) {}
    PhaseTimer(const PhaseTimer&) = delete;
    PhaseTimer& operator=(const PhaseTimer&) = delete;
    ~PhaseTimer() {
        for (cudaEvent_t e : events_) cudaEventDestroy(e);
    }
    void mark(const char* phase) {
        if (!on_) return;
        cudaEvent_t e = nullptr;
        MICROSCALE_CUDA_CHECK(cudaEventCreate(&e));
        events_.push_back(e);
        phases_.push_back(phase);
        MICROSCALE_CUDA_CHECK(cudaEventRecord(e, stream_));
    }
    void report(int64_t out, int64_t in) {
        if (!on_ || events_.size() < 2) return;
        MICROSCALE_CUDA_CHECK(cudaEventSynchronize(events_.back()));
        std::string line = "gptq profile " + std::to_string(out);
        line.append("x").append(std::to_string(in)).append(":");
        float total = 0.0f;
        for (size_t i = 1; i < events_.size(); ++i) {
            float ms = 0.0f;
            MICROSCALE_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[i - 1], events_[i]));
            total += ms;
            char buf[96];
            std::snprintf(buf, sizeof buf, " %s %.2f ms", phases_[i], ms);
            line += buf;
        }
        char buf[48];
        std::snprintf(buf, sizeof buf, " | total %.2f ms", total);
        std::fprintf(stderr, "%s%s\n", line.c_str(), buf);
    }

private:
    cudaStream_t stream_;
    bool on_;
    std::vector<cudaEvent_t> events_;
    std::vector<const char*> phases_;
};

size_t f32(int64_t n) { return static_cast<size_t>(n) * sizeof(float); }

std::string shape(int64_t out, int64_t in) {
    std::string s = std::to_string(out);
    s.append(", ").append(std::to_string(in));
    return s.insert(0, 1, '[').append(1, ']');
}

void check_options(int64_t in, algo::FixedGrid::Kind kind, float scale, const algo::GptqOptions& opts) {
    if (opts.block_size % 16 != 0 || opts.block_size <= 0)
        throw Error("gptq: block_size " + std::to_string(opts.block_size) + " must be a positive multiple of 16");
    if (kind == algo::FixedGrid::Kind::NVFP4 && in % 16 != 0)
        throw Error("gptq: NVFP4 needs in_features " + std::to_string(in) + " to be a multiple of 16");
    if (kind == algo::FixedGrid::Kind::FP8 && !(scale > 0.0f && std::isfinite(scale)))
        throw Error("gptq: FP8 weight scale " + std::to_string(scale) + " must be positive and finite");
    if (in > (int64_t{1} << 30)) throw Error("gptq on CUDA: in_features " + std::to_string(in) + " is too large");
}

// Sum over rows of (w - q(src))^T H (w - q(src)); chunks of rows keep E and E*H bounded.
double objective(Workspace& ws, const float* d_w, const float* d_src, const float* d_h, int64_t out, int64_t in,
                 const DeviceGrid& grid) {
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(out, (int64_t{1} << 26) / std::max<int64_t>(in, 1)));
    ws.e.reserve(f32(chunk * in));
    ws.t.reserve(f32(chunk * in));
    int dev = 0, sms = 0;
    MICROSCALE_CUDA_CHECK(cudaGetDevice(&dev));
    MICROSCALE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    const int dot_grid = sms * 4;  // fixed per GPU: the double sum's order does not depend on the shape
    const int64_t n_chunks = (out + chunk - 1) / chunk;
    ws.partial.reserve(static_cast<size_t>(dot_grid * n_chunks) * sizeof(double));
    const float one = 1.0f, zero = 0.0f;
    int64_t c = 0;
    for (int64_t r0 = 0; r0 < out; r0 += chunk, ++c) {
        const int64_t rows = std::min(chunk, out - r0);
        k_error<<<grid_for(rows * in, kThreads), kThreads, 0, ws.stream>>>(d_w, d_src, ws.e.as<float>(), r0, rows, in, grid);
        MICROSCALE_CUDA_CHECK_LAUNCH();
        // Row-major T[rows, in] = E[rows, in] * H[in, in]: column-major T^T = H^T E^T.
        MICROSCALE_CUBLAS_CHECK(cublasSgemm(ws.blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(in),
                                                 static_cast<int>(rows), static_cast<int>(in), &one, d_h,
                                                 static_cast<int>(in), ws.e.as<float>(), static_cast<int>(in), &zero,
                                                 ws.t.as<float>(), static_cast<int>(in)));
        k_dot<<<dot_grid, kThreads, 0, ws.stream>>>(ws.e.as<float>(), ws.t.as<float>(), rows * in,
                                                   ws.partial.as<double>() + c * dot_grid);
        MICROSCALE_CUDA_CHECK_LAUNCH();
    }
    std::vector<double> partial(static_cast<size_t>(dot_grid * n_chunks));
    MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(partial.data(), ws.partial.ptr, partial.size() * sizeof(double),
                                          cudaMemcpyDeviceToHost, ws.stream));
    MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(ws.stream));
    double total = 0.0;
    for (double p : partial) total += p;
    return total;
}

int read_info(Workspace& ws) {
    int info = 0;
    MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(&info, ws.info.ptr, sizeof info, cudaMemcpyDeviceToHost, ws.stream));
    MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(ws.stream));
    return info;
}

// Fills ws.m with U (row-major upper, U^T U = inv(M)), M = the prepared Hessian already in ws.m
// in order-reversed storage. False when M is not positive definite.
bool cholesky_inverse_upper(Workspace& ws, int64_t n, PhaseTimer& timer) {
    const int64_t total = n * n;
    float* m = ws.m.as<float>();
    int* info = ws.info.as<int>();
    // Column-major upper potrf of the reversed matrix = row-major lower factor L, J M J = L L^T.
    size_t dev_bytes = 0, host_bytes = 0;
    MICROSCALE_GPTQ_CUSOLVER_CHECK(cusolverDnXpotrf_bufferSize(ws.solver, ws.params, CUBLAS_FILL_MODE_UPPER, n,
                                                               CUDA_R_32F, m, n, CUDA_R_32F, &dev_bytes, &host_bytes));
    ws.solver_work.reserve(std::max<size_t>(dev_bytes, 1));
    if (ws.solver_host.size() < host_bytes) ws.solver_host.resize(host_bytes);
    MICROSCALE_GPTQ_CUSOLVER_CHECK(cusolverDnXpotrf(ws.solver, ws.params, CUBLAS_FILL_MODE_UPPER, n, CUDA_R_32F, m, n,
                                                    CUDA_R_32F, ws.solver_work.ptr, dev_bytes,
                                                    host_bytes ? ws.solver_host.data() : nullptr, host_bytes, info));
    timer.mark("potrf");
    if (read_info(ws) != 0) return false;
    // Reversed back, row-major J L J = V is upper with M = V V^T. Row-major V is column-major
    // V^T (lower); its inverse in place is column-major U^T, i.e. row-major U = inv(V).
    k_reverse<<<grid_for(total / 2 + 1, kThreads), kThreads, 0, ws.stream>>>(m, total);
    MICROSCALE_CUDA_CHECK_LAUNCH();
    MICROSCALE_GPTQ_CUSOLVER_CHECK(cusolverDnXtrtri_bufferSize(ws.solver, CUBLAS_FILL_MODE_LOWER,
                                                               CUBLAS_DIAG_NON_UNIT, n, CUDA_R_32F, m, n, &dev_bytes,
                                                               &host_bytes));
    ws.solver_work.reserve(std::max<size_t>(dev_bytes, 1));
    if (ws.solver_host.size() < host_bytes) ws.solver_host.resize(host_bytes);
    MICROSCALE_GPTQ_CUSOLVER_CHECK(cusolverDnXtrtri(ws.solver, CUBLAS_FILL_MODE_LOWER, CUBLAS_DIAG_NON_UNIT, n,
                                                    CUDA_R_32F, m, n, ws.solver_work.ptr, dev_bytes,
                                                    host_bytes ? ws.solver_host.data() : nullptr, host_bytes, info));
    timer.mark("trtri");
    return read_info(ws) == 0;
}

algo::GptqResult run(Workspace& ws, const float* d_w, float* d_result, int64_t out, int64_t in, const float* d_h,
                     const uint8_t* d_codes, algo::FixedGrid::Kind kind, float scale, const algo::GptqOptions& opts,
                     bool objectives) {
    check_options(in, kind, scale, opts);
    algo::GptqResult res;
    if (out == 0 || in == 0) return res;
    const bool fp8 = kind == algo::FixedGrid::Kind::FP8;
    if (!fp8 && !d_codes) throw Error("gptq on CUDA: the NVFP4 grid has no block codes");
    const DeviceGrid grid{fp8, scale, d_codes, in / 16};
    const size_t n = static_cast<size_t>(in);
    MICROSCALE_CUBLAS_CHECK(cublasSetStream(ws.blas, ws.stream));
    MICROSCALE_GPTQ_CUSOLVER_CHECK(cusolverDnSetStream(ws.solver, ws.stream));
    PhaseTimer timer(ws.stream);
    timer.mark("start");

    // 1. Diagonal on the host: dead inputs, order, damping (as detail::prepare computes them).
    std::vector<float> diag(n);
    MICROSCALE_CUDA_CHECK(cudaMemcpy2DAsync(diag.data(), sizeof(float), d_h, (n + 1) * sizeof(float), sizeof(float), n,
                                            cudaMemcpyDeviceToHost, ws.stream));
    MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(ws.stream));
    std::vector<uint8_t> dead(n, 0);
    for (size_t i = 0; i < n; ++i)
        if (diag[i] == 0.0f) {
            dead[i] = 1;
            diag[i] = 1.0f;
            ++res.dead_columns;
        }
    std::vector<int> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    if (opts.act_order)
        std::stable_sort(perm.begin(), perm.end(), [&](int a, int b) {
            return diag[static_cast<size_t>(a)] > diag[static_cast<size_t>(b)];
        });
    double mean_diag = 0.0;
    for (size_t j = 0; j < n; ++j) mean_diag += diag[static_cast<size_t>(perm[j])];
    mean_diag /= static_cast<double>(in);
    const float damp = static_cast<float>(opts.perc_damp * mean_diag);

    ws.perm.reserve(n * sizeof(int));
    ws.dead.reserve(n);
    ws.info.reserve(2 * sizeof(int));
    MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(ws.perm.ptr, perm.data(), n * sizeof(int), cudaMemcpyHostToDevice, ws.stream));
    MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(ws.dead.ptr, dead.data(), n, cudaMemcpyHostToDevice, ws.stream));
    const int* d_perm = ws.perm.as<int>();

    // 2. U on the GPU.
    const int64_t total = in * in;
    ws.m.reserve(f32(total));
    int* d_bad = ws.info.as<int>() + 1;
    MICROSCALE_CUDA_CHECK(cudaMemsetAsync(d_bad, 0, sizeof(int), ws.stream));
    k_prepare_hessian<<<grid_for(total, kThreads), kThreads, 0, ws.stream>>>(d_h, ws.m.as<float>(), in, d_perm,
                                                                   ws.dead.as<uint8_t>(), damp, d_bad);
    MICROSCALE_CUDA_CHECK_LAUNCH();
    timer.mark("diagonal+prepare");
    int bad = 0;
    MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(&bad, d_bad, sizeof bad, cudaMemcpyDeviceToHost, ws.stream));
    MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(ws.stream));
    // A non-finite H: LAPACKE's NaN check rejects it on the CPU; the same fallback here.
    if (bad != 0 || !cholesky_inverse_upper(ws, in, timer)) {
        res.identity_fallback = true;
        k_identity<<<grid_for(total, kThreads), kThreads, 0, ws.stream>>>(ws.m.as<float>(), in);
        MICROSCALE_CUDA_CHECK_LAUNCH();
    }
    const float* d_u = ws.m.as<float>();

    // 3. Column blocks.
    ws.ww.reserve(f32(out * in));
    float* ww = ws.ww.as<float>();
    k_permute_weights<<<grid_for(out * in, kThreads), kThreads, 0, ws.stream>>>(d_w, ww, out, in, d_perm, ws.dead.as<uint8_t>());
    MICROSCALE_CUDA_CHECK_LAUNCH();
    const int64_t bs = opts.block_size;
    ws.err.reserve(f32(out * bs));
    float* err = ws.err.as<float>();
    int dev = 0, sms = 0, smem_max = 0;
    MICROSCALE_CUDA_CHECK(cudaGetDevice(&dev));
    MICROSCALE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    MICROSCALE_CUDA_CHECK(cudaDeviceGetAttribute(&smem_max, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    const size_t seg_bytes = static_cast<size_t>(kWarps) * static_cast<size_t>(bs) * sizeof(float);
    const size_t u_bytes = static_cast<size_t>(bs) * static_cast<size_t>(bs) * sizeof(float);
    // U's block in shared memory when it leaves room for 2 CTAs per SM-ish (block 128: 68 KiB).
    const bool u_shared = seg_bytes + u_bytes <= std::min<size_t>(static_cast<size_t>(smem_max), 100 * 1024);
    const size_t smem = seg_bytes + (u_shared ? u_bytes : 0);
    if (smem > static_cast<size_t>(smem_max))
        throw Error("gptq on CUDA: block_size " + std::to_string(bs) + " needs more shared memory than the GPU has");
    if (smem > 48 * 1024)
        MICROSCALE_CUDA_CHECK(cudaFuncSetAttribute(k_gptq_block, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                   static_cast<int>(smem)));
    const int row_groups = static_cast<int>((out + kWarps - 1) / kWarps);
    const int block_grid = std::max(1, std::min(row_groups, sms * (u_shared ? 3 : 8)));
    const float minus_one = -1.0f, one = 1.0f;
    for (int64_t b0 = 0; b0 < in; b0 += bs) {
        const int64_t nb = std::min(in, b0 + bs) - b0;
        k_gptq_block<<<block_grid, kWarps * 32, smem, ws.stream>>>(ww, out, in, b0, static_cast<int>(nb), d_u, u_shared,
                                                                   err, static_cast<int>(bs), grid, d_perm);
        MICROSCALE_CUDA_CHECK_LAUNCH();
        // Row-major W[:, b1:] -= Err[:, blk] * U[blk, b1:]; column-major: W^T -= U[blk, b1:]^T Err^T.
        const int64_t b1 = b0 + nb;
        if (b1 < in)
            MICROSCALE_CUBLAS_CHECK(cublasSgemm(ws.blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(in - b1),
                                                     static_cast<int>(out), static_cast<int>(nb), &minus_one,
                                                     d_u + b0 * in + b1, static_cast<int>(in), err,
                                                     static_cast<int>(bs), &one, ww + b1, static_cast<int>(in)));
    }
    k_unpermute_weights<<<grid_for(out * in, kThreads), kThreads, 0, ws.stream>>>(ww, d_result, out, in, d_perm);
    MICROSCALE_CUDA_CHECK_LAUNCH();
    timer.mark("columns");

    // 4. Objectives on the original weights and the Hessian as given.
    if (objectives) {
        res.objective_rtn = objective(ws, d_w, d_w, d_h, out, in, grid);
        res.objective_gptq = objective(ws, d_w, d_result, d_h, out, in, grid);
        timer.mark("objectives");
    }
    MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(ws.stream));
    timer.report(out, in);
    return res;
}

}  // namespace

algo::GptqResult gptq(std::span<const float> w, int64_t out, int64_t in, std::span<const float> hessian,
                      const algo::FixedGrid& grid, const algo::GptqOptions& opts) {
    const bool nvfp4 = grid.kind == algo::FixedGrid::Kind::NVFP4;
    check_options(in, grid.kind, grid.scale, opts);
    if (out < 0 || in < 0 || static_cast<int64_t>(w.size()) != out * in ||
        static_cast<int64_t>(hessian.size()) != in * in ||
        (nvfp4 && static_cast<int64_t>(grid.codes.size()) != out * in / 16))
        throw Error("gptq: weight, Hessian or code buffers do not match the shape " + shape(out, in));
    algo::GptqResult res;
    res.weight.resize(w.size());
    if (out == 0 || in == 0) {
        std::copy(w.begin(), w.end(), res.weight.begin());
        return res;
    }
    Workspace& ws = workspace();
    ws.w_in.reserve(f32(out * in));
    ws.result.reserve(f32(out * in));
    ws.h_in.reserve(f32(in * in));
    MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(ws.w_in.ptr, w.data(), f32(out * in), cudaMemcpyHostToDevice, ws.stream));
    MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(ws.h_in.ptr, hessian.data(), f32(in * in), cudaMemcpyHostToDevice, ws.stream));
    const uint8_t* d_codes = nullptr;
    if (nvfp4) {
        ws.codes.reserve(grid.codes.size());
        MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(ws.codes.ptr, grid.codes.data(), grid.codes.size(), cudaMemcpyHostToDevice,
                                              ws.stream));
        d_codes = ws.codes.as<uint8_t>();
    }
    algo::GptqResult r = run(ws, ws.w_in.as<float>(), ws.result.as<float>(), out, in, ws.h_in.as<float>(), d_codes,
                             grid.kind, grid.scale, opts, true);
    MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(res.weight.data(), ws.result.ptr, f32(out * in), cudaMemcpyDeviceToHost,
                                          ws.stream));
    MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(ws.stream));
    r.weight = std::move(res.weight);
    return r;
}

algo::GptqResult gptq_device(const float* d_w, float* d_result, int64_t out, int64_t in, const float* d_hessian,
                             const uint8_t* d_codes, algo::FixedGrid::Kind kind, float scale,
                             const algo::GptqOptions& opts, bool objectives, void* stream) {
    if (out < 0 || in < 0) throw Error("gptq: negative shape " + shape(out, in));
    Workspace& ws = workspace();
    const cudaStream_t own = ws.stream;
    if (stream) ws.stream = static_cast<cudaStream_t>(stream);
    try {
        algo::GptqResult r = run(ws, d_w, d_result, out, in, d_hessian, d_codes, kind, scale, opts, objectives);
        ws.stream = own;
        return r;
    } catch (...) {
        ws.stream = own;
        throw;
    }
}

}  // namespace microscale::cuda
