// FP8 per-tensor quantization with Highway SIMD. Same bytes as fp8_ref.cpp: bf16 weights divide
// by the bf16-rounded scale and round the quotient to bf16 (RNE on the bits) before the E4M3
// cast; fp32 weights divide in fp32; fp16 weights take the scalar reference.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "format/fp8_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <vector>

#include "format/codec/e4m3.h"
#include "format/fp8.h"
#include "format/simd_ops-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace microscale::format::HWY_NAMESPACE {

// Round fp32 lanes to the nearest bf16 (ties to even), as codec::round_to_bf16 for finite values.
HWY_INLINE VF round_bf16(VF v) {
    const DF df;
    const DI di;
    const VI u = hn::BitCast(di, v);
    const VI lsb = hn::And(hn::ShiftRight<16>(u), hn::Set(di, 1));
    const VI r = hn::And(hn::Add(hn::Add(u, hn::Set(di, 0x7FFF)), lsb), hn::Set(di, static_cast<int32_t>(0xFFFF0000u)));
    return hn::BitCast(df, r);
}

void QuantizeFp8Rows(const WeightView& w, float scale, int64_t r0, int64_t r1, uint8_t* codes) {
#if HWY_TARGET == HWY_SCALAR  // one lane cannot pack nibble pairs; use the reference
    return quantize_fp8_rows_ref(w, scale, r0, r1, codes);
#else
    const DF df;
    const DI di;
    const size_t N = hn::Lanes(df);
    const hn::Rebind<uint8_t, DI> d8;
    const bool bf16 = w.dtype == DType::BF16;
    const VF vs = hn::Set(df, bf16 ? codec::round_to_bf16(scale) : scale);
    std::vector<float> row(static_cast<size_t>(w.cols));
    for (int64_t r = r0; r < r1; ++r) {
        load_row_f32(w, r, row.data());
        uint8_t* out = codes + (r - r0) * w.cols;
        int64_t c = 0;
        for (; c + static_cast<int64_t>(N) <= w.cols; c += static_cast<int64_t>(N)) {
            VF q = hn::Div(hn::LoadU(df, row.data() + c), vs);
            if (bf16) q = round_bf16(q);
            q = hn::Min(hn::Max(q, hn::Set(df, -codec::kE4M3Max)), hn::Set(df, codec::kE4M3Max));
            hn::StoreU(hn::DemoteTo(d8, e4m3_encode(q)), d8, out + c);  // codes 0..255 fit
        }
        for (; c < w.cols; ++c) {
            const float q = bf16 ? codec::round_to_bf16(row[c] / codec::round_to_bf16(scale)) : row[c] / scale;
            out[c] = codec::e4m3_from_float(q > codec::kE4M3Max ? codec::kE4M3Max : (q < -codec::kE4M3Max ? -codec::kE4M3Max : q));
        }
    }
#endif
}

}  // namespace microscale::format::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace microscale::format {

HWY_EXPORT(QuantizeFp8Rows);

void quantize_fp8_rows_simd(const WeightView& w, float scale, int64_t r0, int64_t r1, uint8_t* codes) {
    if (w.dtype == DType::F16) return quantize_fp8_rows_ref(w, scale, r0, r1, codes);
    HWY_DYNAMIC_DISPATCH(QuantizeFp8Rows)(w, scale, r0, r1, codes);
}

}  // namespace microscale::format
#endif
