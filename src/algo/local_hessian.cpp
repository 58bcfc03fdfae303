// local_hessian scalar reference: per-block Hessians and the Hessian-weighted scale searches.
#include "algo/local_hessian.h"

#include <cblas.h>
#include <fmt/core.h>

#include <cmath>

#include "core/thread_pool.h"
#include "format/codec/e4m3.h"
#include "format/fp8.h"
#include "format/nvfp4_block.h"
#include "microscale/error.h"

namespace microscale::algo {
namespace {
constexpr int kB = kLocalHessianBlock;
constexpr size_t kBB = static_cast<size_t>(kB * kB);

// Loss of one block quantized with divisor d.
float nvfp4_block_hloss(const float* w, float d, const float* h) {
    float dw[kB];
    for (int j = 0; j < kB; ++j) dw[j] = w[j] - codec::e2m1_to_float(codec::e2m1_from_float(w[j] / d)) * d;
    return block_hessian_loss(dw, h);
}
}  // namespace

BlockHessianAccumulator::BlockHessianAccumulator(int64_t in_features)
    : in_(in_features), sum_(static_cast<size_t>(in_features / kB) * kBB, 0.0f) {
    if (in_features % kB != 0 || in_features <= 0)
        throw Error(fmt::format("local_hessian: in_features {} is not a positive multiple of {}", in_features, kB));
}

void BlockHessianAccumulator::add(const float* x, int64_t rows, int64_t ld) {
    if (rows <= 0) return;
    for (int64_t b = 0; b < in_ / kB; ++b)  // sum_n += X_n^T X_n, upper triangle
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, kB, static_cast<int>(rows), 1.0f, x + b * kB,
                    static_cast<int>(ld), 1.0f, sum_.data() + static_cast<size_t>(b) * kBB, kB);
    n_ += rows;
}

std::vector<float> BlockHessianAccumulator::hessians() const {
    std::vector<float> h(sum_.size());
    const float n = static_cast<float>(std::max<int64_t>(n_, 1));
    for (size_t b = 0; b < sum_.size() / kBB; ++b)
        for (int i = 0; i < kB; ++i)
            for (int j = i; j < kB; ++j) {
                const float v = sum_[b * kBB + static_cast<size_t>(i * kB + j)] / n;
                h[b * kBB + static_cast<size_t>(i * kB + j)] = h[b * kBB + static_cast<size_t>(j * kB + i)] = v;
            }
    return h;
}

float block_hessian_loss(const float* dw, const float* h) {
    float loss = 0.0f;
    for (int a = 0; a < kB; ++a) {
        float t = 0.0f;
        for (int b = 0; b < kB; ++b) t += h[a * kB + b] * dw[b];
        loss += dw[a] * t;
    }
    return loss;
}

std::vector<uint8_t> local_hessian_nvfp4_codes(const format::WeightView& w, const format::Nvfp4Plan& plan,
                                               std::span<const float> block_h, core::ThreadPool* pool) {
    const int64_t nb = w.cols / kB;
    if (w.cols % kB != 0 || block_h.size() != static_cast<size_t>(nb) * kBB)
        throw Error(fmt::format("local_hessian: {} does not match its block Hessians ({} floats)", w.describe(),
                                block_h.size()));
    if (plan.search != format::Nvfp4Search::FP8_SWEEP && plan.search != format::Nvfp4Search::MSE)
        throw Error(fmt::format("local_hessian: {} needs static NVFP4 blocks (an fp8 sweep or multiplier search)",
                                w.describe()));
    const format::Nvfp4Scales& s = plan.scales;
    std::vector<uint8_t> codes(static_cast<size_t>(w.rows * nb));
    const auto do_rows = [&](int64_t r0, int64_t r1) {
        float blk[kB];
        for (int64_t r = r0; r < r1; ++r)
            for (int64_t b = 0; b < nb; ++b) {
                uint8_t& out = codes[static_cast<size_t>(r * nb + b)];
                if (s.all_zero) {
                    out = 0x38;  // the sane all-zero encoding (docs/FORMATS.md)
                    continue;
                }
                w.load(r, b * kB, kB, blk);
                const float* h = block_h.data() + static_cast<size_t>(b) * kBB;
                float best_loss = INFINITY;
                if (plan.search == format::Nvfp4Search::FP8_SWEEP) {
                    uint8_t best = 0x01;
                    for (int code = 0x01; code <= 0x7E; ++code) {
                        const float l = nvfp4_block_hloss(blk, format::nvfp4_block_divisor(static_cast<uint8_t>(code), s), h);
                        if (l < best_loss) {
                            best_loss = l;
                            best = static_cast<uint8_t>(code);
                        }
                    }
                    out = best;
                } else {
                    float a = 0.0f;
                    for (int j = 0; j < kB; ++j) a = std::fmax(a, std::fabs(blk[j]));
                    uint8_t best = 0;
                    for (float k : plan.multipliers) {
                        const uint8_t code = format::nvfp4_code_static(a * k, s);
                        const float l = nvfp4_block_hloss(blk, format::nvfp4_block_divisor(code, s), h);
                        if (l < best_loss) {
                            best_loss = l;
                            best = code;
                        }
                    }
                    out = best;
                }
            }
    };
    constexpr int64_t kRowsPerTask = 16;
    if (pool && pool->size() > 1 && w.rows > kRowsPerTask)
        pool->parallel_for((w.rows + kRowsPerTask - 1) / kRowsPerTask,
                           [&](int64_t t) { do_rows(t * kRowsPerTask, std::min(w.rows, (t + 1) * kRowsPerTask)); });
    else
        do_rows(0, w.rows);
    return codes;
}

float local_hessian_fp8_amax(const format::WeightView& w, float amax, std::span<const float> multipliers,
                             std::span<const float> block_h) {
    const int64_t nb = w.cols / kB;
    if (w.cols % kB != 0 || block_h.size() != static_cast<size_t>(nb) * kBB)
        throw Error(fmt::format("local_hessian: {} does not match its block Hessians ({} floats)", w.describe(),
                                block_h.size()));
    float best_amax = amax;
    double best_loss = INFINITY;
    std::vector<uint8_t> codes(static_cast<size_t>(w.cols));
    float dw[kB];
    for (float k : multipliers) {
        const float cand = amax * k;
        const float scale = format::fp8_weight_scale(cand);
        double loss = 0.0;
        for (int64_t r = 0; r < w.rows; ++r) {
            format::quantize_fp8_rows_ref(w, scale, r, r + 1, codes.data());
            float row_loss = 0.0f;
            for (int64_t b = 0; b < nb; ++b) {
                for (int j = 0; j < kB; ++j) {
                    const int64_t c = b * kB + j;
                    dw[j] = w.at(r, c) - codec::e4m3_to_float(codes[static_cast<size_t>(c)]) * scale;
                }
                row_loss += block_hessian_loss(dw, block_h.data() + static_cast<size_t>(b) * kBB);
            }
            loss += row_loss;
        }
        if (loss < best_loss) {
            best_loss = loss;
            best_amax = cand;
        }
    }
    return best_amax;
}

}  // namespace microscale::algo
