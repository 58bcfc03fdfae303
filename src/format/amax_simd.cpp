// max|W| with Highway SIMD. The lane-wise maximum of the absolute bit patterns is also a
// finiteness check: any NaN/Inf makes it >= 0x7F800000, and the scalar reference then finds the
// element and throws the error that names it. For finite values the result equals amax_rows_ref.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "format/amax_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>

#include "format/simd_ops-inl.h"
#include "format/weight_view.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace microscale::format::HWY_NAMESPACE {

// Largest |x| bit pattern over n elements (as uint32; positive floats order like integers).
uint32_t MaxAbsBits(const void* data, DType dtype, int64_t n) {
    const DU du;
    const size_t N = hn::Lanes(du);
    const auto mask = hn::Set(du, 0x7FFFFFFFu);
    auto m = hn::Zero(du);
    int64_t i = 0;
    uint32_t tail = 0;
    if (dtype == DType::F32) {
        const uint32_t* p = static_cast<const uint32_t*>(data);
        for (; i + static_cast<int64_t>(N) <= n; i += static_cast<int64_t>(N)) m = hn::Max(m, hn::And(hn::LoadU(du, p + i), mask));
        for (; i < n; ++i) tail = std::max(tail, p[i] & 0x7FFFFFFFu);
    } else if (dtype == DType::BF16) {
        const uint16_t* p = static_cast<const uint16_t*>(data);
        const hn::Rebind<uint16_t, DU> d16;
        for (; i + static_cast<int64_t>(N) <= n; i += static_cast<int64_t>(N))
            m = hn::Max(m, hn::And(hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, p + i))), mask));
        for (; i < n; ++i) tail = std::max(tail, (static_cast<uint32_t>(p[i]) << 16) & 0x7FFFFFFFu);
    } else {  // F16: convert through the codec
        const uint16_t* p = static_cast<const uint16_t*>(data);
        for (; i < n; ++i) tail = std::max(tail, codec::float_bits(codec::fp16_to_float(p[i])) & 0x7FFFFFFFu);
    }
    return std::max(tail, hn::GetLane(hn::MaxOfLanes(du, m)));
}

}  // namespace microscale::format::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace microscale::format {

HWY_EXPORT(MaxAbsBits);

float amax_rows_simd(const WeightView& w, int64_t r0, int64_t r1) {
    const size_t esize = dtype_size(w.dtype);
    const void* start = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(r0 * w.cols) * esize;
    const uint32_t bits = HWY_DYNAMIC_DISPATCH(MaxAbsBits)(start, w.dtype, (r1 - r0) * w.cols);
    if (bits >= 0x7F800000u) return amax_rows_ref(w, r0, r1);  // throws, naming the element
    return codec::bits_float(bits);
}

}  // namespace microscale::format
#endif
