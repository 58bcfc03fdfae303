// FP8 E4M3 per-tensor codes of bf16 weights by table lookup (the GPU kernel's fast path; fp16's
// 1024 patterns per octave do not fit the table over E4M3's range, so fp16 is usually computed).
// fp8_code_bf16(w, d) (fp8_element.h) is a function of w's 16-bit pattern, odd in the sign and
// monotone in the magnitude: a table holds it from `lo` up to the first pattern that saturates
// (every larger one saturates too), and every magnitude below lo (and 0) has one code. The builder
// evaluates the reference for every pattern it tabulates and checks the sign symmetry and the
// constant below lo; where either fails the table is not valid and every element is computed. tests/unit/format/fp8_table_test.cpp checks
// the lookup against fp8_code_bf16 / fp8_code_fp16 for every pattern.
#pragma once

#include <cstdint>

#include "format/codec/hd.h"
#include "format/lane_lookup.h"
#include "microscale/dtype.h"

namespace microscale::format {

inline constexpr int kFp8TableLen = 4096;  // > the ~2300 magnitude patterns E4M3's range spans

struct Fp8CodeTable {
    uint32_t floor;  // lo - 1: magnitudes clamp here to entry 0, the code below lo
    uint32_t ceil;   // the highest tabulated pattern
    uint32_t valid;  // 0: compute every element
    uint32_t pad;
    uint8_t codes[kFp8TableLen + 16];  // codes[0]: patterns 0..lo-1; codes[1 + p - lo]: pattern p
};

// divisor: the scale rounded to the weight dtype, as the kernel divides by it. dtype BF16 or F16
// (anything else: not valid).
void fp8_table_build(DType dtype, float divisor, Fp8CodeTable& out);

// The codes of four elements given as two words of 16-bit patterns (element 0 in the low half of
// pair0), packed little-endian into a word: == fp8_code_bf16 / fp8_code_fp16 of each.
MICROSCALE_HD inline uint32_t fp8_table_codes4(uint32_t pair0, uint32_t pair1, const Fp8CodeTable& t,
                                               const uint8_t* codes) {
    return lookup_signed_codes4(pair0, pair1, t.floor, t.ceil, codes);
}

}  // namespace microscale::format
