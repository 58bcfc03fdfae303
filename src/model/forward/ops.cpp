// Forward-pass kernels. The formulas follow architectures.md §1 and transformers 5.17's op order
// (which products happen in fp32, where the attention factor multiplies) so that fp32 logits agree
// with transformers to ~1e-6 relative; see tests/unit/model/forward_test.cpp.
#include "model/forward/ops.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <numbers>

#include "core/blas_check.h"
#include "format/codec/bf16.h"
#include "microscale/error.h"

namespace microscale::model {

namespace {

// fn(begin, end) over [0, n) in blocks of `block`, spread over the pool.
template <class Fn>
void for_blocks(core::ThreadPool& pool, int64_t n, int64_t block, Fn&& fn) {
    if (n <= 0) return;
    const int64_t blocks = (n + block - 1) / block;
    if (blocks == 1 || pool.size() == 1) {
        fn(int64_t{0}, n);
        return;
    }
    pool.parallel_for(blocks, [&](int64_t b) { fn(b * block, std::min(n, (b + 1) * block)); });
}

void single_threaded_blas() {
    static std::once_flag once;
    std::call_once(once, [] {
        openblas_set_num_threads(1);
        if (const auto advice = core::blas_core_advice_here()) std::fprintf(stderr, "warning: %s\n", advice->c_str());
    });
}

// Sum of squares with 8 independent fp32 accumulators (vectorizable without reassociation flags).
float sum_squares(const float* x, int64_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) acc[j] += x[i + j] * x[i + j];
    float s = 0.0f;
    for (; i < n; ++i) s += x[i] * x[i];
    for (float a : acc) s += a;
    return s;
}

void norm_row(const float* x, int64_t dim, const float* w, float eps, float* y) {
    const float mean = sum_squares(x, dim) / static_cast<float>(dim);
    const float r = 1.0f / std::sqrt(mean + eps);
    for (int64_t i = 0; i < dim; ++i) y[i] = w[i] * (x[i] * r);
}

// 1 / theta^(2i/r) in fp32, as `1.0 / (base ** (arange(0, r, 2).float() / r))`.
std::vector<float> base_inv_freq(double theta, int64_t rotary_dim) {
    const int64_t half = rotary_dim / 2;
    std::vector<float> inv(static_cast<size_t>(half));
    const float base = static_cast<float>(theta);
    for (int64_t i = 0; i < half; ++i) {
        const float e = static_cast<float>(2 * i) / static_cast<float>(rotary_dim);
        inv[static_cast<size_t>(i)] = 1.0f / std::pow(base, e);
    }
    return inv;
}

double yarn_mscale(double scale, double m) { return scale <= 1.0 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; }

}  // namespace

namespace {
std::atomic<bool> g_bf16_gemm_inputs{false};
}

void set_emulate_bf16_gemm_inputs(bool on) { g_bf16_gemm_inputs.store(on); }

void linear(const float* x, int64_t rows, int64_t in, int64_t ldx, const float* w, int64_t out,
            const float* bias, float* y, int64_t ldy, core::ThreadPool& pool) {
    if (rows <= 0 || out <= 0) return;
    single_threaded_blas();
    std::vector<float> rounded;
    if (g_bf16_gemm_inputs.load()) {
        rounded.resize(static_cast<size_t>(rows * in));
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < in; ++c) rounded[static_cast<size_t>(r * in + c)] = codec::round_to_bf16(x[r * ldx + c]);
        x = rounded.data();
        ldx = in;
    }
    // Split the output features into column slabs (contiguous rows of W), 16-aligned.
    const int64_t threads = pool.size();
    const double flops = static_cast<double>(rows) * static_cast<double>(in) * static_cast<double>(out);
    int64_t slab = out;
    if (threads > 1 && flops > (1 << 20)) {
        const int64_t parts = std::min<int64_t>(threads * 2, (out + 15) / 16);
        slab = ((out + parts - 1) / parts + 15) / 16 * 16;
    }
    for_blocks(pool, out, slab, [&](int64_t n0, int64_t n1) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                    static_cast<int>(n1 - n0), static_cast<int>(in), 1.0f, x, static_cast<int>(ldx),
                    w + n0 * in, static_cast<int>(in), 0.0f, y + n0, static_cast<int>(ldy));
        if (bias)
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t n = n0; n < n1; ++n) y[r * ldy + n] += bias[n];
    });
}

void rms_norm(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* w, float eps,
              float* y, int64_t ldy, core::ThreadPool& pool) {
    for_blocks(pool, rows, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) norm_row(x + r * ldx, dim, w, eps, y + r * ldy);
    });
}

void head_rms_norm(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t ldx,
                   const float* w, float eps, core::ThreadPool& pool) {
    for_blocks(pool, rows, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
            for (int64_t h = 0; h < heads; ++h) {
                float* p = x + r * ldx + h * head_dim;
                norm_row(p, head_dim, w, eps, p);
            }
    });
}

RopeFrequencies rope_frequencies(const RopeConfig& rope, int64_t rotary_dim,
                                 int64_t max_position_embeddings, int64_t seq_len) {
    if (rotary_dim < 2 || rotary_dim % 2) throw Error("rope: rotary dim must be even and >= 2");
    const int64_t half = rotary_dim / 2;
    RopeFrequencies f;
    switch (rope.type) {
        case RopeType::DEFAULT:
            f.inv_freq = base_inv_freq(rope.theta, rotary_dim);
            break;
        case RopeType::LINEAR:
            f.inv_freq = base_inv_freq(rope.theta, rotary_dim);
            for (float& v : f.inv_freq) v /= static_cast<float>(rope.factor);
            break;
        case RopeType::DYNAMIC: {
            // NTK: only changes theta once the sequence outgrows max_position_embeddings.
            const double L = static_cast<double>(std::max(seq_len, max_position_embeddings));
            const double r = static_cast<double>(rotary_dim);
            const double theta =
                rope.theta * std::pow(rope.factor * L / static_cast<double>(max_position_embeddings) -
                                          (rope.factor - 1.0),
                                      r / (r - 2.0));
            f.inv_freq = base_inv_freq(theta, rotary_dim);
            break;
        }
        case RopeType::LLAMA3: {
            f.inv_freq = base_inv_freq(rope.theta, rotary_dim);
            const float factor = static_cast<float>(rope.factor);
            const float lf = static_cast<float>(rope.low_freq_factor);
            const float hf = static_cast<float>(rope.high_freq_factor);
            const float O = static_cast<float>(rope.original_max_position_embeddings);
            const float low_wavelen = O / lf, high_wavelen = O / hf;
            for (float& inv : f.inv_freq) {
                const float wavelen = static_cast<float>(2.0 * std::numbers::pi) / inv;
                const float scaled = wavelen > low_wavelen ? inv / factor : inv;
                if (wavelen < high_wavelen || wavelen > low_wavelen) {
                    inv = scaled;
                } else {
                    const float s = (O / wavelen - lf) / (hf - lf);
                    inv = (1.0f - s) * scaled / factor + s * scaled;
                }
            }
            break;
        }
        case RopeType::YARN: {
            const double factor = rope.factor;
            const double r = static_cast<double>(rotary_dim);
            const double O = static_cast<double>(rope.original_max_position_embeddings > 0
                                                     ? rope.original_max_position_embeddings
                                                     : max_position_embeddings);
            if (rope.attention_factor) f.attention_scaling = static_cast<float>(*rope.attention_factor);
            else if (rope.mscale && rope.mscale_all_dim && *rope.mscale != 0.0 && *rope.mscale_all_dim != 0.0)
                f.attention_scaling = static_cast<float>(yarn_mscale(factor, *rope.mscale) /
                                                         yarn_mscale(factor, *rope.mscale_all_dim));
            else f.attention_scaling = static_cast<float>(yarn_mscale(factor, 1.0));
            auto correction_dim = [&](double rotations) {
                return r * std::log(O / (rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(rope.theta));
            };
            double lo = correction_dim(rope.beta_fast), hi = correction_dim(rope.beta_slow);
            if (rope.truncate) {
                lo = std::floor(lo);
                hi = std::ceil(hi);
            }
            lo = std::max(lo, 0.0);
            hi = std::min(hi, r - 1.0);
            if (lo == hi) hi += 0.001;
            const float lo_f = static_cast<float>(lo), span = static_cast<float>(hi - lo);
            const float base = static_cast<float>(rope.theta), ff = static_cast<float>(factor);
            f.inv_freq.resize(static_cast<size_t>(half));
            for (int64_t i = 0; i < half; ++i) {
                const float pos_freq =
                    std::pow(base, static_cast<float>(2 * i) / static_cast<float>(rotary_dim));
                const float extrapolation = 1.0f / pos_freq;
                const float interpolation = 1.0f / (ff * pos_freq);
                const float ramp = std::clamp((static_cast<float>(i) - lo_f) / span, 0.0f, 1.0f);
                const float e = 1.0f - ramp;  // extrapolation weight
                f.inv_freq[static_cast<size_t>(i)] = interpolation * (1.0f - e) + extrapolation * e;
            }
            break;
        }
    }
    return f;
}

RopeTable rope_table(const RopeFrequencies& f, int64_t positions) {
    RopeTable t;
    t.positions = positions;
    t.half = static_cast<int64_t>(f.inv_freq.size());
    t.cos.resize(static_cast<size_t>(positions * t.half));
    t.sin.resize(t.cos.size());
    for (int64_t p = 0; p < positions; ++p)
        for (int64_t i = 0; i < t.half; ++i) {
            // fp32 angle, as transformers' inv_freq @ position_ids in fp32.
            const float angle = static_cast<float>(p) * f.inv_freq[static_cast<size_t>(i)];
            const size_t o = static_cast<size_t>(p * t.half + i);
            t.cos[o] = std::cos(angle) * f.attention_scaling;
            t.sin[o] = std::sin(angle) * f.attention_scaling;
        }
    return t;
}

void apply_rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t ldx,
                const RopeTable& table, int64_t pos0, core::ThreadPool& pool) {
    const int64_t h2 = table.half;
    if (2 * h2 > head_dim) throw Error("rope: rotary dim exceeds head_dim");
    if (pos0 < 0 || pos0 + tokens > table.positions) throw Error("rope: position beyond the table");
    for_blocks(pool, tokens, 16, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
            const float* c = table.cos.data() + (pos0 + t) * h2;
            const float* s = table.sin.data() + (pos0 + t) * h2;
            for (int64_t h = 0; h < heads; ++h) {
                float* p = x + t * ldx + h * head_dim;
                for (int64_t i = 0; i < h2; ++i) {
                    const float x1 = p[i], x2 = p[i + h2];
                    p[i] = x1 * c[i] - x2 * s[i];
                    p[i + h2] = x2 * c[i] + x1 * s[i];
                }
            }
        }
    });
}

void swiglu(const float* gu, int64_t rows, int64_t intermediate, float* out, core::ThreadPool& pool) {
    for_blocks(pool, rows, 8, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* g = gu + r * 2 * intermediate;
            const float* u = g + intermediate;
            float* o = out + r * intermediate;
            if (g_bf16_gemm_inputs.load()) {  // the GPU's BF16 mode keeps gate|up in bf16
                for (int64_t i = 0; i < intermediate; ++i) {
                    const float gi = codec::round_to_bf16(g[i]);
                    o[i] = gi / (1.0f + std::exp(-gi)) * codec::round_to_bf16(u[i]);
                }
                continue;
            }
            for (int64_t i = 0; i < intermediate; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
        }
    });
}

void causal_attention(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv,
                      const std::vector<int64_t>& offsets, int64_t heads, int64_t kv_heads,
                      int64_t head_dim, int64_t window, float scaling, float* out, int64_t ldo,
                      core::ThreadPool& pool) {
    if (offsets.size() < 2) return;
    single_threaded_blas();
    const int64_t seqs = static_cast<int64_t>(offsets.size()) - 1;
    const int64_t group = heads / kv_heads;
    const int d = static_cast<int>(head_dim);
    // One task per (sequence, head): S = q_h k_hᵀ (full square, masked after), softmax, P v_h.
    pool.parallel_for(seqs * heads, [&](int64_t task) {
        const int64_t s = task / heads, h = task % heads, kvh = h / group;
        const int64_t row0 = offsets[static_cast<size_t>(s)];
        const int64_t T = offsets[static_cast<size_t>(s) + 1] - row0;
        if (T <= 0) return;
        std::vector<float> scores(static_cast<size_t>(T * T));
        const float* qh = q + row0 * ldq + h * head_dim;
        const float* kh = k + row0 * ldkv + kvh * head_dim;
        const float* vh = v + row0 * ldkv + kvh * head_dim;
        int64_t lq = ldq, lkv = ldkv;
        std::vector<float> q16, k16, v16;  // the GPU's tensor-core attention reads bf16 q, k, v
        if (g_bf16_gemm_inputs.load()) {
            const auto round = [&](const float* src, int64_t ld, std::vector<float>& dst) {
                dst.resize(static_cast<size_t>(T * head_dim));
                for (int64_t r = 0; r < T; ++r)
                    for (int64_t c = 0; c < head_dim; ++c)
                        dst[static_cast<size_t>(r * head_dim + c)] = codec::round_to_bf16(src[r * ld + c]);
                return dst.data();
            };
            qh = round(qh, ldq, q16);
            kh = round(kh, ldkv, k16);
            vh = round(vh, ldkv, v16);
            lq = lkv = head_dim;
        }
        const int Ti = static_cast<int>(T);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Ti, Ti, d, scaling, qh,
                    static_cast<int>(lq), kh, static_cast<int>(lkv), 0.0f, scores.data(), Ti);
        for (int64_t i = 0; i < T; ++i) {
            float* row = scores.data() + i * T;
            const int64_t j0 = window > 0 ? std::max<int64_t>(0, i - window + 1) : 0;
            float m = -INFINITY;
            for (int64_t j = j0; j <= i; ++j) m = std::max(m, row[j]);
            float sum = 0.0f;
            for (int64_t j = 0; j < T; ++j) {
                if (j < j0 || j > i) {
                    row[j] = 0.0f;
                } else {
                    row[j] = std::exp(row[j] - m);
                    sum += row[j];
                }
            }
            for (int64_t j = j0; j <= i; ++j) row[j] /= sum;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Ti, d, Ti, 1.0f, scores.data(), Ti,
                    vh, static_cast<int>(lkv), 0.0f, out + row0 * ldo + h * head_dim,
                    static_cast<int>(ldo));
    });
}

}  // namespace microscale::model
