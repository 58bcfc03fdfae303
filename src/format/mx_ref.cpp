// MXFP4 / MXFP8 scalar reference.
#include <cmath>

#include "format/codec/e2m1.h"
#include "format/codec/e4m3.h"
#include "format/codec/e8m0.h"
#include "format/mx.h"
#include "format/nvfp4_block.h"

namespace microscale::format {

namespace {

float block_amax(const WeightView& w, int64_t r, int64_t c0, float* block) {
    w.load(r, c0, kMxBlock, block);
    float a = 0.0f;
    for (int j = 0; j < kMxBlock; ++j) a = std::fmax(a, std::fabs(block[j]));
    return a;
}

}  // namespace

void quantize_mxfp4_rows_ref(const WeightView& w, int64_t r0, int64_t r1, uint8_t* packed, uint8_t* scales) {
    const int64_t n_blocks = w.cols / kMxBlock;
    float block[kMxBlock];
    for (int64_t r = r0; r < r1; ++r) {
        for (int64_t b = 0; b < n_blocks; ++b) {
            const float a = block_amax(w, r, b * kMxBlock, block);
            const int e = mx_block_exponent(a * kRecip6);
            scales[(r - r0) * n_blocks + b] = codec::e8m0_from_exponent(e);
            const float pow2 = mx_pow2(e);
            uint8_t* out = packed + (r - r0) * (w.cols / 2) + b * (kMxBlock / 2);
            for (int j = 0; j < kMxBlock / 2; ++j) {
                const uint8_t lo = mxfp4_nibble(block[2 * j], pow2);
                const uint8_t hi = mxfp4_nibble(block[2 * j + 1], pow2);
                out[j] = static_cast<uint8_t>(lo | (hi << 4));
            }
        }
    }
}

void quantize_mxfp8_rows_ref(const WeightView& w, int64_t r0, int64_t r1, uint8_t* codes, uint8_t* scales) {
    const int64_t n_blocks = w.cols / kMxBlock;
    float block[kMxBlock];
    for (int64_t r = r0; r < r1; ++r) {
        for (int64_t b = 0; b < n_blocks; ++b) {
            const float a = block_amax(w, r, b * kMxBlock, block);
            const int e = mx_block_exponent(a * kRecip448);
            scales[(r - r0) * n_blocks + b] = codec::e8m0_from_exponent(e);
            const float inv_pow2 = mx_pow2(-e);
            uint8_t* out = codes + (r - r0) * w.cols + b * kMxBlock;
            for (int j = 0; j < kMxBlock; ++j) out[j] = mxfp8_code(block[j], inv_pow2);
        }
    }
}

void dequantize_mxfp4_ref(std::span<const uint8_t> packed, std::span<const uint8_t> scales, int64_t rows,
                          int64_t cols, float* out) {
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            const uint8_t byte = packed[static_cast<size_t>((r * cols + c) / 2)];
            const uint8_t nib = (c & 1) ? static_cast<uint8_t>(byte >> 4) : static_cast<uint8_t>(byte & 0xF);
            const float s = codec::e8m0_to_float(scales[static_cast<size_t>(r * (cols / kMxBlock) + c / kMxBlock)]);
            out[r * cols + c] = codec::e2m1_to_float(nib) * s;
        }
}

void dequantize_mxfp8_ref(std::span<const uint8_t> codes, std::span<const uint8_t> scales, int64_t rows,
                          int64_t cols, float* out) {
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            const float s = codec::e8m0_to_float(scales[static_cast<size_t>(r * (cols / kMxBlock) + c / kMxBlock)]);
            out[r * cols + c] = codec::e4m3_to_float(codes[static_cast<size_t>(r * cols + c)]) * s;
        }
}

}  // namespace microscale::format
