#include "algo/gptq.h"

#include <cblas.h>
#include <fmt/core.h>
#include <lapacke.h>

#include <cmath>

#include "format/codec/e2m1.h"
#include "format/codec/e4m3.h"
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

void fake_quantize_fixed(std::span<const float> w, int64_t out, int64_t in, std::span<const uint8_t> codes,
                         float wsf2, std::span<float> q) {
    for (int64_t r = 0; r < out; ++r)
        for (int64_t c = 0; c < in; ++c) {
            const float d = codec::e4m3_to_float(codes[static_cast<size_t>(r * (in / 16) + c / 16)]) * wsf2;
            const float x = w[static_cast<size_t>(r * in + c)];
            q[static_cast<size_t>(r * in + c)] = codec::e2m1_to_float(codec::e2m1_from_float(x / d)) * d;
        }
}

double hessian_objective(std::span<const float> w, std::span<const float> q, int64_t out, int64_t in,
                         std::span<const float> hessian) {
    double total = 0.0;
    std::vector<double> e(static_cast<size_t>(in));
    for (int64_t r = 0; r < out; ++r) {
        for (int64_t c = 0; c < in; ++c)
            e[static_cast<size_t>(c)] = double(w[static_cast<size_t>(r * in + c)]) - q[static_cast<size_t>(r * in + c)];
        for (int64_t i = 0; i < in; ++i) {
            double s = 0.0;
            for (int64_t j = 0; j < in; ++j) s += double(hessian[static_cast<size_t>(i * in + j)]) * e[static_cast<size_t>(j)];
            total += e[static_cast<size_t>(i)] * s;
        }
    }
    return total;
}

GptqResult gptq_nvfp4(std::span<const float> w_in, int64_t out, int64_t in, std::span<const float> hessian,
                      std::span<const uint8_t> codes, float wsf2, const GptqOptions& opts) {
    if (in % 16 != 0 || opts.block_size % 16 != 0 || opts.block_size <= 0)
        throw Error(fmt::format("gptq: in_features {} and block_size {} must be multiples of 16", in, opts.block_size));
    if (static_cast<int64_t>(w_in.size()) != out * in || static_cast<int64_t>(hessian.size()) != in * in ||
        static_cast<int64_t>(codes.size()) != out * in / 16)
        throw Error("gptq: weight, Hessian or code buffers do not match the shape");
    GptqResult res;
    std::vector<float> w(w_in.begin(), w_in.end());
    std::vector<float> h(hessian.begin(), hessian.end());
    // Dead inputs: H[i,i] = 0 means the input never varied; ModelOpt zeroes those weights.
    for (int64_t i = 0; i < in; ++i)
        if (h[static_cast<size_t>(i * in + i)] == 0.0f) {
            ++res.dead_columns;
            for (int64_t j = 0; j < in; ++j) h[static_cast<size_t>(i * in + j)] = h[static_cast<size_t>(j * in + i)] = 0.0f;
            h[static_cast<size_t>(i * in + i)] = 1.0f;
            for (int64_t r = 0; r < out; ++r) w[static_cast<size_t>(r * in + i)] = 0.0f;
        }
    double mean_diag = 0.0;
    for (int64_t i = 0; i < in; ++i) mean_diag += h[static_cast<size_t>(i * in + i)];
    mean_diag /= static_cast<double>(in);
    const float damp = static_cast<float>(opts.perc_damp * mean_diag);
    for (int64_t i = 0; i < in; ++i) h[static_cast<size_t>(i * in + i)] += damp;
    // Hinv = (L L^T)^-1, then its upper Cholesky factor U (Hinv = U^T U).
    std::vector<float> u = h;
    bool ok = LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'L', static_cast<lapack_int>(in), u.data(), static_cast<lapack_int>(in)) == 0 &&
              LAPACKE_spotri(LAPACK_ROW_MAJOR, 'L', static_cast<lapack_int>(in), u.data(), static_cast<lapack_int>(in)) == 0;
    if (ok) {
        for (int64_t i = 0; i < in; ++i)  // spotri fills the lower triangle: mirror it
            for (int64_t j = i + 1; j < in; ++j) u[static_cast<size_t>(i * in + j)] = u[static_cast<size_t>(j * in + i)];
        ok = LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'U', static_cast<lapack_int>(in), u.data(), static_cast<lapack_int>(in)) == 0;
    }
    if (!ok) {
        res.identity_fallback = true;
        std::fill(u.begin(), u.end(), 0.0f);
        for (int64_t i = 0; i < in; ++i) u[static_cast<size_t>(i * in + i)] = 1.0f;
    }
    for (int64_t i = 0; i < in; ++i)
        for (int64_t j = 0; j < i; ++j) u[static_cast<size_t>(i * in + j)] = 0.0f;  // keep only U

    const auto d_of = [&](int64_t r, int64_t c) {
        return codec::e4m3_to_float(codes[static_cast<size_t>(r * (in / 16) + c / 16)]) * wsf2;
    };
    const int64_t bs = opts.block_size;
    std::vector<float> err(static_cast<size_t>(out * bs));
    for (int64_t b0 = 0; b0 < in; b0 += bs) {
        const int64_t b1 = std::min(in, b0 + bs);
        for (int64_t i = b0; i < b1; ++i) {
            const float uii = u[static_cast<size_t>(i * in + i)];
            for (int64_t r = 0; r < out; ++r) {
                float* row = w.data() + r * in;
                const float d = d_of(r, i);
                const float q = codec::e2m1_to_float(codec::e2m1_from_float(row[i] / d)) * d;
                const float e = (row[i] - q) / uii;
                err[static_cast<size_t>(r * bs + (i - b0))] = e;
                for (int64_t j = i + 1; j < b1; ++j) row[j] -= e * u[static_cast<size_t>(i * in + j)];
            }
        }
        // Lazy update of the remaining columns: W[:, b1:] -= Err[:, blk] * U[blk, b1:].
        if (b1 < in)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(out), static_cast<int>(in - b1),
                        static_cast<int>(b1 - b0), -1.0f, err.data(), static_cast<int>(bs), u.data() + b0 * in + b1,
                        static_cast<int>(in), 1.0f, w.data() + b1, static_cast<int>(in));
    }
    // Objectives on the original weights and the Hessian as given (before damping).
    std::vector<float> q_rtn(w_in.size()), q_gptq(w_in.size());
    fake_quantize_fixed(w_in, out, in, codes, wsf2, q_rtn);
    fake_quantize_fixed(w, out, in, codes, wsf2, q_gptq);
    res.objective_rtn = hessian_objective(w_in, q_rtn, out, in, hessian);
    res.objective_gptq = hessian_objective(w_in, q_gptq, out, in, hessian);
    res.weight = std::move(w);
    return res;
}

}  // namespace microscale::algo
