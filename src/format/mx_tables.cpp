// The MXFP8 lookup tables (format/mx_tables.h), built once from the reference's own functions.
#include "format/mx_tables.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "format/codec/bf16.h"
#include "format/mx_block.h"
#include "format/nvfp4_block.h"

namespace microscale::format {
namespace {

std::unique_ptr<MxTables> build() {
    auto t = std::make_unique<MxTables>();
    std::memset(t.get(), 0, sizeof *t);
    for (uint32_t p = 0; p < 32768; ++p)
        t->exponent[p] = static_cast<int8_t>(mx_block_exponent(codec::bf16_to_float(static_cast<uint16_t>(p)) * kRecip448));
    // Block exponent 0: the first pattern whose code is not 0, up to the first that saturates.
    const auto code = [](uint32_t r) { return mxfp8_code(codec::bf16_to_float(static_cast<uint16_t>(r)), 1.0f); };
    uint32_t lo = 1;
    while (code(lo) == 0) ++lo;
    const uint8_t top = code(0x7F7F);
    uint32_t hi = lo;
    while (code(hi) != top) ++hi;
    t->lo = lo;
    t->hi = hi;
    t->codes[0] = 0;
    for (uint32_t r = lo; r <= hi; ++r) t->codes[1 + r - lo] = code(r);
    // MXFP4: E2M1 index of bf16(r) / 1 (the magnitude part of mxfp4_nibble; index 0 below lo4,
    // 7 from hi4 up).
    for (uint32_t p = 0; p < 32768; ++p)
        t->exponent4[p] = static_cast<int8_t>(mx_block_exponent(codec::bf16_to_float(static_cast<uint16_t>(p)) * kRecip6));
    const auto index = [](uint32_t r) { return mxfp4_nibble(codec::bf16_to_float(static_cast<uint16_t>(r)), 1.0f) & 0x7u; };
    uint32_t lo4 = 1;
    while (index(lo4) == 0) ++lo4;
    uint32_t hi4 = lo4;
    while (index(hi4) != 7) ++hi4;
    t->lo4 = lo4;
    t->hi4 = hi4;
    for (uint32_t j = 0; j < static_cast<uint32_t>(kMxfp4Half); ++j) {
        const uint8_t idx = j == 0 ? 0 : static_cast<uint8_t>(index(std::min(lo4 - 1 + j, hi4)));
        t->nibbles4[j] = idx;
        t->nibbles4[kMxfp4Half + j] = static_cast<uint8_t>(idx | 0x8);
    }
    return t;
}

}  // namespace

const MxTables& mx_tables() {
    static const std::unique_ptr<MxTables> t = build();
    return *t;
}

}  // namespace microscale::format
