// GPTQ pieces both column loops share: the Hessian accumulator, the fixed grid, the Hessian
// preparation (dead inputs, act order, damping, Cholesky inverse via LAPACKE) and the objectives.
#include <cblas.h>
#include <fmt/core.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "algo/gptq_detail.h"
#include "microscale/error.h"

namespace microscale::algo {

HessianAccumulator::HessianAccumulator(int64_t in_features)
    : in_(in_features), h_(static_cast<size_t>(in_features * in_features), 0.0f) {}

void HessianAccumulator::add(const float* x, int64_t rows, int64_t ld) {
    if (rows <= 0) return;
    const int64_t total = n_ + rows;
    const float keep = static_cast<float>(static_cast<double>(n_) / static_cast<double>(total));
    const float add = static_cast<float>(2.0 / static_cast<double>(total));
    // h = keep*h + add * X^T X (upper triangle via syrk, mirrored below).
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(in_), static_cast<int>(rows), add, x,
                static_cast<int>(ld), keep, h_.data(), static_cast<int>(in_));
    for (int64_t i = 0; i < in_; ++i)
        for (int64_t j = 0; j < i; ++j) h_[static_cast<size_t>(i * in_ + j)] = h_[static_cast<size_t>(j * in_ + i)];
    n_ = total;
}

void fake_quantize_fixed(std::span<const float> w, int64_t out, int64_t in, const FixedGrid& grid, std::span<float> q) {
    const detail::GridRounder round(grid, out, in);
    for (int64_t r = 0; r < out; ++r)
        for (int64_t c = 0; c < in; ++c)
            q[static_cast<size_t>(r * in + c)] = round(r, c, w[static_cast<size_t>(r * in + c)]);
}

std::vector<uint8_t> encode_fp8_fixed(std::span<const float> w, float scale) {
    std::vector<uint8_t> codes(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
        float v = w[i] / scale;
        v = v > codec::kE4M3Max ? codec::kE4M3Max : (v < -codec::kE4M3Max ? -codec::kE4M3Max : v);
        codes[i] = codec::e4m3_from_float(v);
    }
    return codes;
}

double hessian_objective(std::span<const float> w, std::span<const float> q, int64_t out, int64_t in,
                         std::span<const float> hessian) {
    // sum_r e_r^T H e_r = sum (E H) .* E, E in row chunks so the scratch stays small.
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(out, (int64_t{1} << 22) / std::max<int64_t>(in, 1)));
    std::vector<float> e(static_cast<size_t>(chunk * in)), t(static_cast<size_t>(chunk * in));
    double total = 0.0;
    for (int64_t r0 = 0; r0 < out; r0 += chunk) {
        const int64_t rows = std::min(chunk, out - r0);
        for (int64_t i = 0; i < rows * in; ++i)
            e[static_cast<size_t>(i)] = w[static_cast<size_t>(r0 * in + i)] - q[static_cast<size_t>(r0 * in + i)];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(in),
                    static_cast<int>(in), 1.0f, e.data(), static_cast<int>(in), hessian.data(), static_cast<int>(in),
                    0.0f, t.data(), static_cast<int>(in));
        for (int64_t i = 0; i < rows * in; ++i) total += double(e[static_cast<size_t>(i)]) * t[static_cast<size_t>(i)];
    }
    return total;
}

namespace detail {

GridRounder::GridRounder(const FixedGrid& grid, int64_t out, int64_t in)
    : fp8_(grid.kind == FixedGrid::Kind::FP8), scale_(grid.scale), blocks_(in / 16) {
    if (fp8_) return;
    div_.resize(grid.codes.size());
    for (size_t i = 0; i < div_.size(); ++i) div_[i] = gptq_nvfp4_divisor(grid.codes[i], grid.scale);
    (void)out;
}

Prepared prepare(std::span<const float> w_in, int64_t out, int64_t in, std::span<const float> hessian,
                 const FixedGrid& grid, const GptqOptions& opts) {
    if (opts.block_size % 16 != 0 || opts.block_size <= 0)
        throw Error(fmt::format("gptq: block_size {} must be a positive multiple of 16", opts.block_size));
    if (grid.kind == FixedGrid::Kind::NVFP4 && in % 16 != 0)
        throw Error(fmt::format("gptq: NVFP4 needs in_features {} to be a multiple of 16", in));
    if (static_cast<int64_t>(w_in.size()) != out * in || static_cast<int64_t>(hessian.size()) != in * in ||
        (grid.kind == FixedGrid::Kind::NVFP4 && static_cast<int64_t>(grid.codes.size()) != out * in / 16))
        throw Error(fmt::format("gptq: weight, Hessian or code buffers do not match the shape [{}, {}]", out, in));
    if (grid.kind == FixedGrid::Kind::FP8 && !(grid.scale > 0.0f && std::isfinite(grid.scale)))
        throw Error(fmt::format("gptq: FP8 weight scale {} must be positive and finite", grid.scale));
    const size_t n = static_cast<size_t>(in);
    Prepared p;
    p.w.assign(w_in.begin(), w_in.end());
    std::vector<float> h(hessian.begin(), hessian.end());
    // Dead inputs: H[i,i] = 0 means the input never varied; ModelOpt zeroes those weights.
    for (size_t i = 0; i < n; ++i)
        if (h[i * n + i] == 0.0f) {
            ++p.dead_columns;
            for (size_t j = 0; j < n; ++j) h[i * n + j] = h[j * n + i] = 0.0f;
            h[i * n + i] = 1.0f;
            for (int64_t r = 0; r < out; ++r) p.w[static_cast<size_t>(r) * n + i] = 0.0f;
        }
    p.perm.resize(n);
    std::iota(p.perm.begin(), p.perm.end(), int64_t{0});
    if (opts.act_order) {
        std::stable_sort(p.perm.begin(), p.perm.end(), [&](int64_t a, int64_t b) {
            return h[static_cast<size_t>(a) * n + static_cast<size_t>(a)] > h[static_cast<size_t>(b) * n + static_cast<size_t>(b)];
        });
        std::vector<float> hp(h.size()), wp(p.w.size());
        for (size_t i = 0; i < n; ++i)
            for (size_t j = 0; j < n; ++j) hp[i * n + j] = h[static_cast<size_t>(p.perm[i]) * n + static_cast<size_t>(p.perm[j])];
        for (int64_t r = 0; r < out; ++r)
            for (size_t j = 0; j < n; ++j) wp[static_cast<size_t>(r) * n + j] = p.w[static_cast<size_t>(r) * n + static_cast<size_t>(p.perm[j])];
        h.swap(hp);
        p.w.swap(wp);
    }
    double mean_diag = 0.0;
    for (size_t i = 0; i < n; ++i) mean_diag += h[i * n + i];
    mean_diag /= static_cast<double>(in);
    const float damp = static_cast<float>(opts.perc_damp * mean_diag);
    for (size_t i = 0; i < n; ++i) h[i * n + i] += damp;
    // U upper with U^T U = inv(H), as ModelOpt's chol(cholesky_inverse(chol(H)), upper), in half
    // the flops: H = V V^T with V = inv(U) upper, and with J the order reversal J H J = (J V J)(J V J)^T
    // is an ordinary lower Cholesky factorization. So V = J chol(J H J) J and U = inv(V).
    // Reversing both axes of a row-major square matrix reverses its storage.
    p.u = std::move(h);
    std::reverse(p.u.begin(), p.u.end());
    const lapack_int li = static_cast<lapack_int>(in);
    bool ok = LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'L', li, p.u.data(), li) == 0;
    if (ok) {
        std::reverse(p.u.begin(), p.u.end());  // J L J: the lower factor becomes upper
        for (size_t i = 0; i < n; ++i)
            for (size_t j = 0; j < i; ++j) p.u[i * n + j] = 0.0f;
        ok = LAPACKE_strtri(LAPACK_ROW_MAJOR, 'U', 'N', li, p.u.data(), li) == 0;
    }
    if (!ok) {
        p.identity_fallback = true;
        std::fill(p.u.begin(), p.u.end(), 0.0f);
        for (size_t i = 0; i < n; ++i) p.u[i * n + i] = 1.0f;
    }
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < i; ++j) p.u[i * n + j] = 0.0f;  // keep only U
    return p;
}

GptqResult finish(Prepared&& p, std::span<const float> w_in, int64_t out, int64_t in, std::span<const float> hessian,
                  const FixedGrid& grid) {
    GptqResult res;
    res.dead_columns = p.dead_columns;
    res.identity_fallback = p.identity_fallback;
    res.weight.resize(p.w.size());
    const size_t n = static_cast<size_t>(in);
    for (int64_t r = 0; r < out; ++r)
        for (size_t j = 0; j < n; ++j)
            res.weight[static_cast<size_t>(r) * n + static_cast<size_t>(p.perm[j])] = p.w[static_cast<size_t>(r) * n + j];
    // Objectives on the original weights and the Hessian as given (before damping).
    std::vector<float> q(w_in.size());
    fake_quantize_fixed(w_in, out, in, grid, q);
    res.objective_rtn = hessian_objective(w_in, q, out, in, hessian);
    fake_quantize_fixed(res.weight, out, in, grid, q);
    res.objective_gptq = hessian_objective(w_in, q, out, in, hessian);
    return res;
}

}  // namespace detail
}  // namespace microscale::algo
