// Vector versions of the codec steps, per Highway target (include after hwy/highway.h inside a
// foreach_target TU). Each op is the lane-wise twin of a scalar codec in format/codec/ and must
// give the same bits; the parity tests memcmp every SIMD path against its *_ref.
#if defined(MICROSCALE_SIMD_OPS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef MICROSCALE_SIMD_OPS_INL_H_
#undef MICROSCALE_SIMD_OPS_INL_H_
#else
#define MICROSCALE_SIMD_OPS_INL_H_
#endif

#include <cstring>

#include "format/codec/bf16.h"
#include "format/codec/fp16.h"
#include "format/weight_view.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace microscale::format::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most 16 float lanes: an NVFP4 block is then a whole number of vectors.
using DF = hn::CappedTag<float, 16>;
using DI = hn::RebindToSigned<DF>;
using DU = hn::RebindToUnsigned<DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;

// Row r of w as fp32 into buf (exact for every input type).
HWY_INLINE void load_row_f32(const WeightView& w, int64_t r, float* HWY_RESTRICT buf) {
    const int64_t n = w.cols;
    if (w.dtype == DType::F32) {
        std::memcpy(buf, static_cast<const float*>(w.data) + r * n, static_cast<size_t>(n) * sizeof(float));
        return;
    }
    const uint16_t* src = static_cast<const uint16_t*>(w.data) + r * n;
    int64_t i = 0;
    if (w.dtype == DType::BF16) {
        const DF df;
        const DU du;
        const hn::Rebind<uint16_t, DF> d16;
        const int64_t N = static_cast<int64_t>(hn::Lanes(df));
        for (; i + N <= n; i += N)
            hn::StoreU(hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, src + i)))), df, buf + i);
        for (; i < n; ++i) buf[i] = codec::bf16_to_float(src[i]);
        return;
    }
    for (; i < n; ++i) buf[i] = codec::fp16_to_float(src[i]);
}

// NVFP4 nibble (codec::e2m1_from_float) of each lane, as int32 lanes 0..15.
HWY_INLINE VI e2m1_nibble(VF y) {
    const DF df;
    const DI di;
    const VF m = hn::Abs(y);
    VI idx = hn::Zero(di);
    // Each true comparison is -1 in VecFromMask: subtracting counts the bounds passed.
    idx = hn::Sub(idx, hn::VecFromMask(di, hn::RebindMask(di, hn::Gt(m, hn::Set(df, 0.25f)))));
    idx = hn::Sub(idx, hn::VecFromMask(di, hn::RebindMask(di, hn::Ge(m, hn::Set(df, 0.75f)))));
    idx = hn::Sub(idx, hn::VecFromMask(di, hn::RebindMask(di, hn::Gt(m, hn::Set(df, 1.25f)))));
    idx = hn::Sub(idx, hn::VecFromMask(di, hn::RebindMask(di, hn::Ge(m, hn::Set(df, 1.75f)))));
    idx = hn::Sub(idx, hn::VecFromMask(di, hn::RebindMask(di, hn::Gt(m, hn::Set(df, 2.5f)))));
    idx = hn::Sub(idx, hn::VecFromMask(di, hn::RebindMask(di, hn::Ge(m, hn::Set(df, 3.5f)))));
    idx = hn::Sub(idx, hn::VecFromMask(di, hn::RebindMask(di, hn::Gt(m, hn::Set(df, 5.0f)))));
    return hn::Or(idx, hn::IfThenElseZero(hn::RebindMask(di, hn::Lt(y, hn::Zero(df))), hn::Set(di, 8)));
}

// MXFP4 nibble (codec::e2m1_from_float_mx): ties round down, sign bit unless y > 0.
HWY_INLINE VI e2m1_nibble_mx(VF y) {
    const DF df;
    const DI di;
    const VF m = hn::Abs(y);
    VI idx = hn::Zero(di);
    const float bounds[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
    for (float b : bounds) idx = hn::Sub(idx, hn::VecFromMask(di, hn::RebindMask(di, hn::Gt(m, hn::Set(df, b)))));
    return hn::Or(idx, hn::IfThenElseZero(hn::RebindMask(di, hn::Not(hn::Gt(y, hn::Zero(df)))), hn::Set(di, 8)));
}

// The squared error of y's E2M1 reconstruction: RN(E2M1 value * d) subtracted from w, squared.
// The magnitude is rebuilt as a sum of exact steps (0.5 x4, 1 x2, 2), like e2m1_magnitude_rne.
HWY_INLINE VF e2m1_sq_error(VF w, VF y, VF d) {
    const DF df;
    const VF m = hn::Abs(y);
    const VF half = hn::Set(df, 0.5f), one = hn::Set(df, 1.0f), two = hn::Set(df, 2.0f);
    VF mv = hn::IfThenElseZero(hn::Gt(m, hn::Set(df, 0.25f)), half);
    mv = hn::Add(mv, hn::IfThenElseZero(hn::Ge(m, hn::Set(df, 0.75f)), half));
    mv = hn::Add(mv, hn::IfThenElseZero(hn::Gt(m, hn::Set(df, 1.25f)), half));
    mv = hn::Add(mv, hn::IfThenElseZero(hn::Ge(m, hn::Set(df, 1.75f)), half));
    mv = hn::Add(mv, hn::IfThenElseZero(hn::Gt(m, hn::Set(df, 2.5f)), one));
    mv = hn::Add(mv, hn::IfThenElseZero(hn::Ge(m, hn::Set(df, 3.5f)), one));
    mv = hn::Add(mv, hn::IfThenElseZero(hn::Gt(m, hn::Set(df, 5.0f)), two));
    VF q = hn::Mul(mv, d);
    q = hn::IfThenElse(hn::Lt(y, hn::Zero(df)), hn::Neg(q), q);
    const VF diff = hn::Sub(w, q);
    return hn::Mul(diff, diff);
}

// Pack int32 nibble lanes pairwise into bytes (even lane low) and store Lanes/2 bytes.
HWY_INLINE void store_packed_nibbles(VI nib, uint8_t* HWY_RESTRICT out) {
#if HWY_TARGET == HWY_SCALAR
    (void)nib;
    (void)out;  // never called: the scalar target forwards to the *_ref paths
#else
    const DI di;
    const hn::Repartition<uint64_t, DI> d64;
    const hn::Rebind<uint8_t, decltype(d64)> d8;
    const auto u = hn::BitCast(d64, nib);  // lane = even | odd << 32
    hn::StoreU(hn::TruncateTo(d8, hn::Or(u, hn::ShiftRight<28>(u))), d8, out);
    (void)di;
#endif
}

// codec::e4m3_from_float for lanes already known to be finite.
HWY_INLINE VI e4m3_encode(VF f) {
    const DF df;
    const DI di;
    const VI bits = hn::BitCast(di, f);
    const VI sign = hn::And(hn::ShiftRight<24>(bits), hn::Set(di, 0x80));
    const VI mag_bits = hn::And(bits, hn::Set(di, 0x7FFFFFFF));
    const VF mag = hn::BitCast(df, mag_bits);
    // Normal: drop 20 mantissa bits with round-half-even, rebias the exponent (127 -> 7).
    const VI lsb = hn::And(hn::ShiftRight<20>(mag_bits), hn::Set(di, 1));
    const VI normal = hn::Sub(hn::ShiftRight<20>(hn::Add(hn::Add(mag_bits, hn::Set(di, 0x7FFFF)), lsb)),
                              hn::Set(di, 120 << 3));
    // Subnormal (below 2^-6): mag * 2^9 rounded half to even.
    const VI sub = hn::NearestInt(hn::Mul(mag, hn::Set(df, 512.0f)));
    VI code = hn::IfThenElse(hn::RebindMask(di, hn::Lt(mag, hn::Set(df, 0.015625f))), sub, normal);
    code = hn::IfThenElse(hn::RebindMask(di, hn::Gt(mag, hn::Set(df, 464.0f))), hn::Set(di, 0x7F), code);
    return hn::Or(code, sign);
}

// codec::e4m3_to_float for finite non-negative codes (block scales).
HWY_INLINE VF e4m3_decode_positive(VI code) {
    const DF df;
    const DI di;
    const VI exp = hn::And(hn::ShiftRight<3>(code), hn::Set(di, 0xF));
    const VI man = hn::And(code, hn::Set(di, 7));
    const VF normal = hn::BitCast(df, hn::Or(hn::ShiftLeft<23>(hn::Add(exp, hn::Set(di, 120))), hn::ShiftLeft<20>(man)));
    const VF sub = hn::Mul(hn::ConvertTo(df, man), hn::Set(df, 0.001953125f));
    return hn::IfThenElse(hn::RebindMask(df, hn::Eq(exp, hn::Zero(di))), sub, normal);
}

}  // namespace microscale::format::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
