// Synthetic weights with the hard cases of the core issue: heavy tails, per-channel outliers,
// all-zero and +-0 blocks, one huge outlier per block, E4M3-subnormal-sized blocks, values on
// E2M1 tie points, in bf16 / fp16 / fp32.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "format/codec/bf16.h"
#include "format/codec/fp16.h"
#include "format/nvfp4_block.h"
#include "format/weight_view.h"

namespace microscale::test {

struct TestWeight {
    std::string name;
    DType dtype = DType::BF16;
    int64_t rows = 0, cols = 0;
    std::vector<uint8_t> bytes;

    format::WeightView view() const { return {bytes.data(), dtype, rows, cols, name}; }

    void set(int64_t r, int64_t c, float v) {
        const size_t i = static_cast<size_t>(r * cols + c);
        if (dtype == DType::F32) {
            std::memcpy(bytes.data() + 4 * i, &v, 4);
        } else {
            const uint16_t h = dtype == DType::BF16 ? codec::bf16_from_float(v) : codec::fp16_from_float(v);
            std::memcpy(bytes.data() + 2 * i, &h, 2);
        }
    }
    float get(int64_t r, int64_t c) const { return view().at(r, c); }
};

// Student-t(3)-like heavy tails with a few per-channel (column) outliers, scale ~0.02.
inline TestWeight heavy_tailed(int64_t rows, int64_t cols, uint32_t seed, DType dtype = DType::BF16,
                               std::string name = "w") {
    TestWeight w{std::move(name), dtype, rows, cols, {}};
    w.bytes.assign(static_cast<size_t>(rows * cols) * dtype_size(dtype), 0);
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::chi_squared_distribution<float> chi(3.0f);
    std::vector<float> col_gain(static_cast<size_t>(cols), 1.0f);
    for (int64_t c = 0; c < cols; ++c)
        if (rng() % 97 == 0) col_gain[static_cast<size_t>(c)] = 8.0f + static_cast<float>(rng() % 24);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            const float t = nd(rng) / std::sqrt(chi(rng) / 3.0f);
            w.set(r, c, 0.02f * t * col_gain[static_cast<size_t>(c)]);
        }
    return w;
}

// Overwrite blocks of 16 with the special patterns, cycling through them row by row.
inline void add_hard_blocks(TestWeight& w, uint32_t seed) {
    std::mt19937 rng(seed);
    const int64_t n_blocks = w.cols / 16;
    for (int64_t r = 0; r < w.rows; ++r) {
        for (int64_t b = 0; b < n_blocks; ++b) {
            const int64_t c0 = b * 16;
            switch ((r * 7 + b) % 9) {
                case 0:  // all zero
                    for (int j = 0; j < 16; ++j) w.set(r, c0 + j, 0.0f);
                    break;
                case 1:  // +-0 mix
                    for (int j = 0; j < 16; ++j) w.set(r, c0 + j, (j & 1) ? -0.0f : 0.0f);
                    break;
                case 2:  // one huge outlier, the rest small (many round to -0 / +0)
                    for (int j = 0; j < 16; ++j) w.set(r, c0 + j, 1e-4f * static_cast<float>(int(rng() % 21) - 10));
                    w.set(r, c0 + static_cast<int>(rng() % 16), (rng() & 1) ? 3.5f : -2.75f);
                    break;
                case 3:  // E4M3-subnormal-sized block scale next to a large tensor max
                    for (int j = 0; j < 16; ++j) w.set(r, c0 + j, 2e-6f * static_cast<float>(int(rng() % 13) - 6));
                    break;
                case 4:  // values on scaled E2M1 tie points relative to the block max
                {
                    const float bounds[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f};
                    const float unit = 0.01171875f;  // 3 * 2^-8: few bits, products stay exact-ish
                    for (int j = 0; j < 16; ++j) w.set(r, c0 + j, bounds[j % 8] * unit * ((j / 8) ? -1.0f : 1.0f));
                    break;
                }
                default: break;  // keep the heavy-tailed values
            }
        }
    }
}

}  // namespace microscale::test
