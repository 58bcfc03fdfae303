// Blocked GPTQ (spec §5.5): columns in blocks of block_size; inside a block every row is
// independent, so rows run in parallel and each row walks its own contiguous segment; the block's
// scaled errors then reach the remaining columns in one sgemm (the "lazy batch update").
#include <cblas.h>

#include <algorithm>

#include "algo/gptq_detail.h"
#include "core/thread_pool.h"

namespace microscale::algo {
namespace {

// OpenBLAS threads for the Cholesky and the lazy updates; the forward pass pins BLAS to one
// thread per pool thread, so restore that afterwards.
class BlasThreads {
public:
    explicit BlasThreads(unsigned n) : prev_(openblas_get_num_threads()) {
        if (n > 0) openblas_set_num_threads(static_cast<int>(n));
    }
    ~BlasThreads() { openblas_set_num_threads(prev_); }
    BlasThreads(const BlasThreads&) = delete;
    BlasThreads& operator=(const BlasThreads&) = delete;

private:
    int prev_;
};

}  // namespace

GptqResult gptq(std::span<const float> w_in, int64_t out, int64_t in, std::span<const float> hessian,
                const FixedGrid& grid, const GptqOptions& opts, core::ThreadPool* pool) {
    const BlasThreads blas(pool ? pool->size() : 0);
    detail::Prepared p = detail::prepare(w_in, out, in, hessian, grid, opts);
    const detail::GridRounder round(grid, out, in);
    const int64_t bs = opts.block_size;
    std::vector<float> err(static_cast<size_t>(out * bs));
    for (int64_t b0 = 0; b0 < in; b0 += bs) {
        const int64_t nb = std::min(in, b0 + bs) - b0;
        const auto rows = [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                float* seg = p.w.data() + r * in + b0;
                float* e_row = err.data() + r * bs;
                for (int64_t i = 0; i < nb; ++i) {
                    const float* urow = p.u.data() + (b0 + i) * in + b0;  // U[b0+i, b0:b0+nb]
                    const float x = seg[i];
                    const float e = (x - round(r, p.perm[static_cast<size_t>(b0 + i)], x)) / urow[i];
                    e_row[i] = e;
                    for (int64_t j = i + 1; j < nb; ++j) seg[j] -= e * urow[j];
                }
            }
        };
        constexpr int64_t kRowsPerTask = 32;
        if (pool && pool->size() > 1 && out > kRowsPerTask)
            pool->parallel_for((out + kRowsPerTask - 1) / kRowsPerTask, [&](int64_t t) {
                rows(t * kRowsPerTask, std::min(out, (t + 1) * kRowsPerTask));
            });
        else
            rows(0, out);
        // Lazy update of the remaining columns: W[:, b1:] -= Err[:, blk] * U[blk, b1:].
        const int64_t b1 = b0 + nb;
        if (b1 < in)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(out), static_cast<int>(in - b1),
                        static_cast<int>(nb), -1.0f, err.data(), static_cast<int>(bs), p.u.data() + b0 * in + b1,
                        static_cast<int>(in), 1.0f, p.w.data() + b1, static_cast<int>(in));
    }
    return detail::finish(std::move(p), w_in, out, in, hessian, grid);
}

}  // namespace microscale::algo
