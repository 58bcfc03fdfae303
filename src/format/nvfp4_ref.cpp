// NVFP4 scalar reference: the spec in plain loops (docs/FORMATS.md, spec nvfp4-modelopt.md §1, §5).
#include <cmath>
#include <fmt/core.h>

#include "format/nvfp4.h"
#include "microscale/error.h"

namespace microscale::format {

Nvfp4Config Nvfp4Config::four_over_six_preset() {
    Nvfp4Config c;
    c.search = Nvfp4Search::MSE;
    c.four_over_six = true;
    c.mse = MseSweep{1.0, 1.5, 0.5};
    return c;
}

std::vector<float> mse_multipliers(const MseSweep& sweep) {
    if (!(sweep.step > 0.0) || !(sweep.stop >= sweep.start) || !(sweep.start >= 0.0))
        throw Error(fmt::format("mse sweep: need 0 <= start <= stop and step > 0, got start={} stop={} step={}",
                                sweep.start, sweep.stop, sweep.step));
    // Python: math.ceil((stop - start) / step) + 1, in double.
    const int64_t n = static_cast<int64_t>(std::ceil((sweep.stop - sweep.start) / sweep.step)) + 1;
    if (n > 4096) throw Error(fmt::format("mse sweep: {} candidates is too many (max 4096)", n));
    const float start = static_cast<float>(sweep.start), stop = static_cast<float>(sweep.stop);
    std::vector<float> k(static_cast<size_t>(n));
    if (n == 1) {
        k[0] = start;
        return k;
    }
    // torch's CUDA linspace: fp32 step, the first half counted up from start, the second half
    // down from stop; nvcc contracts both into one fma.
    const float delta = (stop - start) / static_cast<float>(n - 1);
    const int64_t half = n / 2;
    for (int64_t i = 0; i < n; ++i)
        k[static_cast<size_t>(i)] = i < half ? std::fma(delta, static_cast<float>(i), start)
                                             : std::fma(-delta, static_cast<float>(n - 1 - i), stop);
    return k;
}

Nvfp4Plan nvfp4_plan(const Nvfp4Config& cfg, float tensor_amax) {
    float a = tensor_amax;
    if (cfg.global_amax) {
        if (!(*cfg.global_amax >= tensor_amax) || !std::isfinite(*cfg.global_amax))
            throw Error(fmt::format("nvfp4: shared global amax {} is below the tensor's own amax {}",
                                    *cfg.global_amax, tensor_amax));
        a = *cfg.global_amax;
    }
    Nvfp4Plan plan;
    plan.search = cfg.search;
    plan.scales = nvfp4_scales(a, cfg.four_over_six);
    if (cfg.search == Nvfp4Search::MSE) plan.multipliers = mse_multipliers(cfg.mse);
    return plan;
}

namespace {

float block_amax(const float* w) {
    float a = 0.0f;
    for (int j = 0; j < kNvfp4Block; ++j) a = std::fmax(a, std::fabs(w[j]));
    return a;
}

}  // namespace

// The block code each search picks (docs/FORMATS.md "Weight-scale searches").
uint8_t nvfp4_choose_code_ref(const float* w, const Nvfp4Plan& plan) {
    const Nvfp4Scales& s = plan.scales;
    if (s.all_zero) return 0x38;
    const float a = block_amax(w);
    switch (plan.search) {
        case Nvfp4Search::DYNAMIC_MAX: return nvfp4_code_dynamic(a, s);
        case Nvfp4Search::STATIC_MAX: return nvfp4_code_static(a, s);
        case Nvfp4Search::MSE: {
            uint8_t best = 0;
            float best_loss = INFINITY;
            for (float k : plan.multipliers) {
                const uint8_t code = nvfp4_code_static(a * k, s);
                const float loss = nvfp4_block_loss(w, nvfp4_block_divisor(code, s));
                if (loss < best_loss) {
                    best_loss = loss;
                    best = code;
                }
            }
            return best;
        }
        case Nvfp4Search::FP8_SWEEP: {
            uint8_t best = 0x01;
            float best_loss = INFINITY;
            for (int code = 0x01; code <= 0x7E; ++code) {
                const float loss = nvfp4_block_loss(w, nvfp4_block_divisor(static_cast<uint8_t>(code), s));
                if (loss < best_loss) {
                    best_loss = loss;
                    best = static_cast<uint8_t>(code);
                }
            }
            return best;
        }
    }
    return 0x38;
}

void quantize_nvfp4_rows_ref(const WeightView& w, const Nvfp4Plan& plan, int64_t r0, int64_t r1,
                             uint8_t* packed, uint8_t* scales) {
    const int64_t n_blocks = w.cols / kNvfp4Block;
    float block[kNvfp4Block];
    for (int64_t r = r0; r < r1; ++r) {
        uint8_t* prow = packed + (r - r0) * (w.cols / 2);
        uint8_t* srow = scales + (r - r0) * n_blocks;
        for (int64_t b = 0; b < n_blocks; ++b) {
            w.load(r, b * kNvfp4Block, kNvfp4Block, block);
            const uint8_t code = nvfp4_choose_code_ref(block, plan);
            srow[b] = code;
            nvfp4_encode_block(block, nvfp4_block_divisor(code, plan.scales), prow + b * (kNvfp4Block / 2));
        }
    }
}

std::vector<uint8_t> encode_nvfp4_with_codes(std::span<const float> w, int64_t rows, int64_t cols,
                                             std::span<const uint8_t> codes, float global_scale) {
    if (cols % kNvfp4Block != 0 || w.size() != static_cast<size_t>(rows * cols) ||
        codes.size() != static_cast<size_t>(rows * cols / kNvfp4Block))
        throw Error(fmt::format("encode nvfp4: buffers do not match shape [{}, {}]", rows, cols));
    std::vector<uint8_t> packed(static_cast<size_t>(rows * cols / 2));
    const int64_t n_blocks = cols / kNvfp4Block;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t b = 0; b < n_blocks; ++b) {
            const float d = codec::e4m3_to_float(codes[static_cast<size_t>(r * n_blocks + b)]) * global_scale;
            nvfp4_encode_block(w.data() + r * cols + b * kNvfp4Block, d, packed.data() + (r * cols + b * kNvfp4Block) / 2);
        }
    return packed;
}

void dequantize_nvfp4_ref(std::span<const uint8_t> packed, std::span<const uint8_t> scales, float global_scale,
                          int64_t rows, int64_t cols, float* out) {
    if (cols % kNvfp4Block != 0 || packed.size() != static_cast<size_t>(rows * cols / 2) ||
        scales.size() != static_cast<size_t>(rows * cols / kNvfp4Block))
        throw Error(fmt::format("dequantize nvfp4: buffers do not match shape [{}, {}]", rows, cols));
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
            const float d = codec::e4m3_to_float(scales[static_cast<size_t>(r * (cols / kNvfp4Block) + c / kNvfp4Block)]) *
                            global_scale;
            const uint8_t byte = packed[static_cast<size_t>((r * cols + c) / 2)];
            const uint8_t nib = (c & 1) ? static_cast<uint8_t>(byte >> 4) : static_cast<uint8_t>(byte & 0xF);
            out[r * cols + c] = codec::e2m1_to_float(nib) * d;
        }
    }
}

}  // namespace microscale::format
