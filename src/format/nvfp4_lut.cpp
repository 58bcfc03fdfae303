// Builder of the bf16 E2M1 lookup tables (format/nvfp4_lut.h): one row per distinct threshold
// pattern, each code checked against the row it uses.
#include "format/nvfp4_lut.h"

#include <algorithm>
#include <cstring>

#include "format/codec/bf16.h"
#include "format/codec/e4m3.h"

namespace microscale::format {
namespace {

struct Thresholds {
    uint32_t p[7];  // bf16 patterns: |w| >= p[i] passes bound i
    uint32_t nonzero;
    float d;
};

Thresholds thresholds_of(uint8_t code, const Nvfp4Scales& s) {
    Thresholds t;
    t.d = nvfp4_block_divisor(code, s);
    const E2m1Cuts c = e2m1_cuts(t.d);
    for (int i = 0; i < 7; ++i) t.p[i] = bf16_round_up_bits(c.up[i]);
    t.nonzero = e2m1_pair_cuts(c).nonzero;
    return t;
}

// What a row is keyed by: the thresholds relative to P0 and the divisor's significand (codes of
// one row decode to values that differ by the same power of two).
bool same_row(const Thresholds& a, const Thresholds& b) {
    for (int i = 1; i < 7; ++i)
        if (a.p[i] - a.p[0] != b.p[i] - b.p[0]) return false;
    return (codec::float_bits(a.d) & 0x7FFFFFu) == (codec::float_bits(b.d) & 0x7FFFFFu);
}


// Candidate k's block code for a bf16 block amax, as the kernels' choose_code computes it.
int candidate_code(const Nvfp4Plan& plan, int k, uint32_t pattern) {
    const float a = codec::bf16_to_float(static_cast<uint16_t>(pattern));
    switch (plan.search) {
        case Nvfp4Search::DYNAMIC_MAX: return nvfp4_code_dynamic(a, plan.scales);
        case Nvfp4Search::STATIC_MAX: return nvfp4_code_static(a, plan.scales);
        case Nvfp4Search::MSE: return nvfp4_code_static(a * plan.multipliers[static_cast<size_t>(k)], plan.scales);
        case Nvfp4Search::FP8_SWEEP: break;
    }
    return -1;
}

void build_amax_table(const Nvfp4Plan& plan, int k, Nvfp4LutAmaxTable& t, uint8_t* codes) {
    t = {};
    // Block amax <= the tensor (or shared) amax: no pattern above its bf16 rounding up occurs.
    const uint32_t hi = std::min<uint32_t>(bf16_round_up_bits(plan.scales.global_amax), 0x7F7Fu);
    const uint32_t lo = hi + 1 > static_cast<uint32_t>(kLutAmaxLen) ? hi + 1 - kLutAmaxLen : 1;
    // Monotone codes: [1, lo) is one value exactly when its two ends agree.
    const int below = candidate_code(plan, k, 1);
    if (lo > 1 && candidate_code(plan, k, lo - 1) != below) return;
    for (uint32_t p = lo; p <= hi; ++p) codes[p - lo] = static_cast<uint8_t>(candidate_code(plan, k, p));
    t.lo = lo;
    t.below = static_cast<uint32_t>(below);
    t.zero = static_cast<uint32_t>(candidate_code(plan, k, 0));
    t.len = hi - lo + 1;
}

}  // namespace

void nvfp4_lut_build(const Nvfp4Plan& plan, Nvfp4Lut& out) {
    std::memset(&out, 0, sizeof out);
    const Nvfp4Scales& s = plan.scales;
    if (!s.all_zero && plan.search != Nvfp4Search::FP8_SWEEP) {
        const int tables = plan.search == Nvfp4Search::MSE
                               ? static_cast<int>(std::min<size_t>(plan.multipliers.size(), kLutAmaxTables))
                               : 1;
        for (int k = 0; k < tables; ++k) build_amax_table(plan, k, out.amax_tables[k], out.amax_codes[k]);
    }
    Thresholds row_of[kLutRows];
    for (int code = 0; code < kLutCodes; ++code) {
        Nvfp4LutCode& e = out.codes[code];
        if (code == 0x7F) continue;  // E4M3 NaN: never a block code
        const Thresholds t = thresholds_of(static_cast<uint8_t>(code), s);
        const uint32_t lo = t.p[0] - 1;  // p[0] >= 1: up[0] is a positive float
        const uint32_t len = t.p[6] - lo + 1;
        if (t.p[0] == 0 || len > static_cast<uint32_t>(kLutRowLen)) continue;
        int row = 0;
        while (row < out.rows && !same_row(row_of[row], t)) ++row;
        if (row == out.rows) {
            if (out.rows == kLutRows) continue;
            row_of[out.rows++] = t;
            for (int j = 0; j < kLutRowLen; ++j) {
                const uint32_t m = lo + static_cast<uint32_t>(j);
                uint8_t idx = 0;
                for (int i = 0; i < 7; ++i) idx = static_cast<uint8_t>(idx + (m >= t.p[i] ? 1 : 0));
                const int at = row * kLutRowLen + j;
                out.nibbles[at] = idx;
                out.nibbles[kLutHalf + at] = static_cast<uint8_t>(idx | 0x8);
                out.values[at] = codec::e2m1_to_float(idx) * t.d;
            }
        }
        // This code's decoded values must be the row's times one scale, bit for bit.
        const float rep = row_of[row].d;
        const float scale = rep > 0.0f ? t.d / rep : 1.0f;
        bool exact = true;
        for (int i = 0; i < 8 && exact; ++i) {
            const float want = codec::e2m1_to_float(static_cast<uint8_t>(i)) * t.d;
            const float got = (codec::e2m1_to_float(static_cast<uint8_t>(i)) * rep) * scale;
            exact = codec::float_bits(want) == codec::float_bits(got);
        }
        if (!exact) continue;
        e.lo = both_lanes(lo);
        e.hi = both_lanes(t.p[6]);
        e.bias = both_lanes(static_cast<uint32_t>(row * kLutRowLen) - lo);
        e.nonzero = t.nonzero;
        out.code_scales[code] = scale;
        ++out.regular_codes;
    }
}

}  // namespace microscale::format
