// Builder of the FP8 per-tensor code table (format/fp8_table.h).
#include "format/fp8_table.h"

#include <algorithm>
#include <cstring>

#include "format/codec/bf16.h"
#include "format/codec/fp16.h"
#include "format/fp8_element.h"

namespace microscale::format {

void fp8_table_build(DType dtype, float divisor, Fp8CodeTable& out) {
    std::memset(&out, 0, sizeof out);
    if (dtype != DType::BF16 && dtype != DType::F16) return;
    const bool bf16 = dtype == DType::BF16;
    const auto code = [&](uint32_t p) {
        const uint16_t h = static_cast<uint16_t>(p);
        return bf16 ? fp8_code_bf16(codec::bf16_to_float(h), divisor) : fp8_code_fp16(codec::fp16_to_float(h), divisor);
    };
    // The codes are monotone in the magnitude: from the first pattern that saturates (448) up,
    // every pattern has that code, so the table ends there and holds for any weight values.
    const uint32_t finite_top = bf16 ? 0x7F7Fu : 0x7BFFu;
    const uint8_t top_code = code(finite_top);
    uint32_t hi = 0;
    while (hi < finite_top && code(hi) != top_code) ++hi;
    const uint32_t lo = hi + 1 > static_cast<uint32_t>(kFp8TableLen) ? hi + 1 - kFp8TableLen : 1;
    // Patterns 0..lo-1 share one code exactly when 0 and lo - 1 agree.
    const uint8_t below = code(0);
    if (code(lo - 1) != below) return;
    for (uint32_t p = 0; p <= hi; ++p)  // odd in the sign (checked where the codes vary)
        if (code(p | 0x8000u) != (code(p) | 0x80u)) return;
    if (code(finite_top | 0x8000u) != (top_code | 0x80u)) return;
    out.codes[0] = below;
    for (uint32_t p = lo; p <= hi; ++p) out.codes[1 + p - lo] = code(p);
    out.floor = lo - 1;
    out.ceil = hi;
    out.valid = 1;
}

}  // namespace microscale::format
