// MXFP4 / MXFP8 quantization with Highway SIMD. Same bytes as mx_ref.cpp: the E8M0 exponent
// per block comes from the shared mx_block_exponent; elements are scaled by the exact power of
// two 2^-e (the same value as dividing by 2^e), then rounded with ModelOpt's MXFP4 tie rule or
// saturated to +-448 and cast to E4M3.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "format/mx_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <cmath>
#include <vector>

#include "format/codec/e4m3.h"
#include "format/codec/e8m0.h"
#include "format/mx.h"
#include "format/nvfp4_block.h"
#include "format/simd_ops-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace microscale::format::HWY_NAMESPACE {

void QuantizeMxfp4Rows(const WeightView& w, int64_t r0, int64_t r1, uint8_t* packed, uint8_t* scales) {
#if HWY_TARGET == HWY_SCALAR  // one lane cannot pack nibble pairs; use the reference
    return quantize_mxfp4_rows_ref(w, r0, r1, packed, scales);
#else
    const DF df;
    const size_t N = hn::Lanes(df);
    const int64_t n_blocks = w.cols / kMxBlock;
    std::vector<float> row(static_cast<size_t>(w.cols));
    for (int64_t r = r0; r < r1; ++r) {
        load_row_f32(w, r, row.data());
        for (int64_t b = 0; b < n_blocks; ++b) {
            const float* x = row.data() + b * kMxBlock;
            VF m = hn::Zero(df);
            for (size_t k = 0; k < kMxBlock; k += N) m = hn::Max(m, hn::Abs(hn::LoadU(df, x + k)));
            const int e = mx_block_exponent(hn::GetLane(hn::MaxOfLanes(df, m)) * kRecip6);
            scales[(r - r0) * n_blocks + b] = codec::e8m0_from_exponent(e);
            // 2^-e is a normal float for e in [-127, 127]; w * 2^-e rounds exactly like w / 2^e.
            const VF inv = hn::Set(df, std::ldexp(1.0f, -e));
            uint8_t* out = packed + (r - r0) * (w.cols / 2) + b * (kMxBlock / 2);
            for (size_t k = 0; k < kMxBlock; k += N)
                store_packed_nibbles(e2m1_nibble_mx(hn::Mul(hn::LoadU(df, x + k), inv)), out + k / 2);
        }
    }
#endif
}

void QuantizeMxfp8Rows(const WeightView& w, int64_t r0, int64_t r1, uint8_t* codes, uint8_t* scales) {
#if HWY_TARGET == HWY_SCALAR
    return quantize_mxfp8_rows_ref(w, r0, r1, codes, scales);
#else
    const DF df;
    const hn::Rebind<uint8_t, DI> d8;
    const size_t N = hn::Lanes(df);
    const int64_t n_blocks = w.cols / kMxBlock;
    const VF lo = hn::Set(df, -codec::kE4M3Max), hi = hn::Set(df, codec::kE4M3Max);
    std::vector<float> row(static_cast<size_t>(w.cols));
    for (int64_t r = r0; r < r1; ++r) {
        load_row_f32(w, r, row.data());
        for (int64_t b = 0; b < n_blocks; ++b) {
            const float* x = row.data() + b * kMxBlock;
            VF m = hn::Zero(df);
            for (size_t k = 0; k < kMxBlock; k += N) m = hn::Max(m, hn::Abs(hn::LoadU(df, x + k)));
            const int e = mx_block_exponent(hn::GetLane(hn::MaxOfLanes(df, m)) * kRecip448);
            scales[(r - r0) * n_blocks + b] = codec::e8m0_from_exponent(e);
            const VF inv = hn::Set(df, std::ldexp(1.0f, -e));  // exact power of two
            uint8_t* out = codes + (r - r0) * w.cols + b * kMxBlock;
            for (size_t k = 0; k < kMxBlock; k += N) {
                const VF v = hn::Min(hn::Max(hn::Mul(hn::LoadU(df, x + k), inv), lo), hi);
                hn::StoreU(hn::DemoteTo(d8, e4m3_encode(v)), d8, out + k);
            }
        }
    }
#endif
}

}  // namespace microscale::format::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace microscale::format {

HWY_EXPORT(QuantizeMxfp4Rows);
HWY_EXPORT(QuantizeMxfp8Rows);

void quantize_mxfp8_rows_simd(const WeightView& w, int64_t r0, int64_t r1, uint8_t* codes, uint8_t* scales) {
    HWY_DYNAMIC_DISPATCH(QuantizeMxfp8Rows)(w, r0, r1, codes, scales);
}

void quantize_mxfp4_rows_simd(const WeightView& w, int64_t r0, int64_t r1, uint8_t* packed, uint8_t* scales) {
    HWY_DYNAMIC_DISPATCH(QuantizeMxfp4Rows)(w, r0, r1, packed, scales);
}

}  // namespace microscale::format
#endif
