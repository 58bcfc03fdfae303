// Table lookups on two bf16 patterns at once (the GPU's bf16 table paths: nvfp4_lut.h,
// fp8_table.h, mx_tables.h). A word holds two 16-bit lanes, element 0 in the low one; clamping
// both lanes to [floor, ceil] and adding -floor in both lanes (modulo 2^32: no borrow crosses a
// lane, since both clamped lanes are >= floor) gives the two table entries.
#pragma once

#include <cstdint>

#include "format/codec/hd.h"

namespace microscale::format {

// Per-lane max / min of two u16x2 words (one instruction each on sm_90).
MICROSCALE_HD inline uint32_t max_u16x2(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __vmaxu2(a, b);
#else
    const uint32_t l = (a & 0xFFFFu) > (b & 0xFFFFu) ? a & 0xFFFFu : b & 0xFFFFu;
    const uint32_t h = (a >> 16) > (b >> 16) ? a >> 16 : b >> 16;
    return (h << 16) | l;
#endif
}
MICROSCALE_HD inline uint32_t min_u16x2(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __vminu2(a, b);
#else
    const uint32_t l = (a & 0xFFFFu) < (b & 0xFFFFu) ? a & 0xFFFFu : b & 0xFFFFu;
    const uint32_t h = (a >> 16) < (b >> 16) ? a >> 16 : b >> 16;
    return (h << 16) | l;
#endif
}

// v in both 16-bit lanes, modulo 2^32 (for a negative v, adding it still adds v to each lane of
// a word whose lanes stay in [0, 65536): the carry out of lane 0 is part of the sum).
MICROSCALE_HD inline uint32_t both_lanes(uint32_t v) { return v * 0x10001u; }

// Byte codes of four elements (two words of patterns; element 0 in the low half of pair0), each
// looked up at its magnitude clamped to [floor, ceil] minus floor, little-endian in a word, with
// the element's sign bit (bit 15 of its pattern) as bit 7 of its code. floor/ceil: patterns.
MICROSCALE_HD inline uint32_t lookup_signed_codes4(uint32_t pair0, uint32_t pair1, uint32_t floor, uint32_t ceil,
                                                   const uint8_t* codes) {
    const uint32_t lo = both_lanes(floor), hi = both_lanes(ceil), bias = both_lanes(0u - floor);
    uint32_t out = 0;
    const uint32_t pairs[2] = {pair0, pair1};
    for (int k = 0; k < 2; ++k) {
        const uint32_t i = min_u16x2(max_u16x2(pairs[k] & 0x7FFF7FFFu, lo), hi) + bias;
        out |= (static_cast<uint32_t>(codes[i & 0xFFFFu]) | (static_cast<uint32_t>(codes[i >> 16]) << 8)) << (16 * k);
    }
#if defined(__CUDA_ARCH__)
    const uint32_t signs = __byte_perm(pair0, pair1, 0x7531) & 0x80808080u;
#else
    const uint32_t signs = (((pair0 >> 8) & 0x80u) | ((pair0 >> 16) & 0x8000u) | ((pair1 << 8) & 0x800000u) |
                            (pair1 & 0x80000000u));
#endif
    return out | signs;
}

}  // namespace microscale::format
