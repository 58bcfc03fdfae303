// NVFP4 quantization with Highway SIMD and runtime dispatch. Same bytes as nvfp4_ref.cpp:
// block codes come from the shared nvfp4_block.h functions; element rounding and the search
// losses use the lane-wise twins in simd_ops-inl.h, with the loss of each block summed in the
// reference's order by giving every lane its own block (blocks transposed into lanes).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "format/nvfp4_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <vector>

#include "format/nvfp4.h"
#include "format/simd_ops-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace microscale::format::HWY_NAMESPACE {

// Encode one block of 16 with divisor d into 8 packed bytes.
HWY_INLINE void encode_block(const float* HWY_RESTRICT x, float d, uint8_t* HWY_RESTRICT out) {
    const DF df;
    const size_t N = hn::Lanes(df);
    const VF vd = hn::Set(df, d);
    for (size_t k = 0; k < kNvfp4Block; k += N)
        store_packed_nibbles(e2m1_nibble(hn::Div(hn::LoadU(df, x + k), vd)), out + k / 2);
}

HWY_INLINE float block_amax(const float* HWY_RESTRICT x) {
    const DF df;
    const size_t N = hn::Lanes(df);
    VF m = hn::Zero(df);
    for (size_t k = 0; k < kNvfp4Block; k += N) m = hn::Max(m, hn::Abs(hn::LoadU(df, x + k)));
    return hn::GetLane(hn::MaxOfLanes(df, m));
}

// nvfp4_code_static for N block amaxes at once (same operations, same order); returns the codes
// and writes the divisors RN(float(code) * wsf2).
HWY_INLINE VI static_codes(VF a, const Nvfp4Scales& s, VF& divisor) {
    const DF df;
    VF v = hn::Mul(a, hn::Set(df, kRecip6));
    v = hn::IfThenElse(hn::Eq(v, hn::Zero(df)), hn::Set(df, 1.0f), v);
    v = hn::Div(hn::Mul(v, hn::Set(df, s.m_fp8)), hn::Set(df, s.static_denom));
    v = hn::Min(hn::Max(v, hn::Set(df, codec::kE4M3MinSubnormal)), hn::Set(df, codec::kE4M3Max));
    const VI code = e4m3_encode(v);
    divisor = hn::Mul(e4m3_decode_positive(code), hn::Set(df, s.wsf2));
    return code;
}

// Searches: choose codes for N consecutive blocks at once, lane i = block i. soa[j*N + i] is
// element j of block i. The candidate loop and the strict-< update follow choose_code() in
// nvfp4_ref.cpp exactly.
HWY_INLINE void search_codes(const float* HWY_RESTRICT soa, const Nvfp4Plan& plan, uint8_t* HWY_RESTRICT codes) {
    const DF df;
    const DI di;
    const size_t N = hn::Lanes(df);
    const Nvfp4Scales& s = plan.scales;
    VF best_loss = hn::Set(df, HUGE_VALF);
    VI best_code = hn::Set(di, 0x01);
    HWY_ALIGN int32_t code_lanes[16];
    auto consider = [&](VF vd, VI vcode) {
        VF loss = hn::Zero(df);
        for (int j = 0; j < kNvfp4Block; ++j) {
            const VF w = hn::Load(df, soa + j * N);
            loss = hn::Add(loss, e2m1_sq_error(w, hn::Div(w, vd), vd));
        }
        const auto better = hn::Lt(loss, best_loss);
        best_loss = hn::IfThenElse(better, loss, best_loss);
        best_code = hn::IfThenElse(hn::RebindMask(di, better), vcode, best_code);
    };
    if (plan.search == Nvfp4Search::FP8_SWEEP) {
        for (int code = 0x01; code <= 0x7E; ++code)
            consider(hn::Set(df, nvfp4_block_divisor(static_cast<uint8_t>(code), s)), hn::Set(di, code));
    } else {  // MSE multiplier sweep; the block amax is the max over the 16 element rows
        VF amax = hn::Zero(df);
        for (int j = 0; j < kNvfp4Block; ++j) amax = hn::Max(amax, hn::Abs(hn::Load(df, soa + j * N)));
        for (float k : plan.multipliers) {
            VF vd;
            const VI vcode = static_codes(hn::Mul(amax, hn::Set(df, k)), s, vd);
            consider(vd, vcode);
        }
    }
    hn::Store(best_code, di, code_lanes);
    for (size_t i = 0; i < N; ++i) codes[i] = static_cast<uint8_t>(code_lanes[i]);
}

// Block codes for N blocks at once from their amaxes: the lane-wise form of nvfp4_code_dynamic /
// nvfp4_code_static (same operations in the same order), plus each block's divisor.
HWY_INLINE void max_codes(const float* HWY_RESTRICT amax, const Nvfp4Plan& plan, uint8_t* HWY_RESTRICT codes,
                          float* HWY_RESTRICT divisors) {
    const DF df;
    const DI di;
    const size_t N = hn::Lanes(df);
    const Nvfp4Scales& s = plan.scales;
    const VF a = hn::Load(df, amax);
    VI code;
    VF d;
    if (plan.search == Nvfp4Search::DYNAMIC_MAX) {
        VF v = hn::Div(a, hn::Set(df, s.six_wsf2));
        v = hn::IfThenElse(hn::Eq(v, hn::Zero(df)), hn::Set(df, 1.0f), v);
        v = hn::Min(hn::Max(v, hn::Set(df, codec::kE4M3MinSubnormal)), hn::Set(df, codec::kE4M3Max));
        code = e4m3_encode(v);
        d = hn::Mul(e4m3_decode_positive(code), hn::Set(df, s.wsf2));
    } else {
        code = static_codes(a, s, d);
    }
    hn::Store(d, df, divisors);
    HWY_ALIGN int32_t lanes[16];
    hn::Store(code, di, lanes);
    for (size_t i = 0; i < N; ++i) codes[i] = static_cast<uint8_t>(lanes[i]);
}

void QuantizeNvfp4Rows(const WeightView& w, const Nvfp4Plan& plan, int64_t r0, int64_t r1, uint8_t* packed,
                       uint8_t* scales) {
#if HWY_TARGET == HWY_SCALAR  // one lane cannot pack nibble pairs; use the reference
    return quantize_nvfp4_rows_ref(w, plan, r0, r1, packed, scales);
#else
    const DF df;
    const size_t N = hn::Lanes(df);
    const int64_t n_blocks = w.cols / kNvfp4Block;
    const Nvfp4Scales& s = plan.scales;
    const bool search = !s.all_zero && (plan.search == Nvfp4Search::MSE || plan.search == Nvfp4Search::FP8_SWEEP);
    std::vector<float> row(static_cast<size_t>(w.cols));
    HWY_ALIGN float soa[kNvfp4Block * 16];
    HWY_ALIGN float amax[16];
    for (int64_t r = r0; r < r1; ++r) {
        load_row_f32(w, r, row.data());
        uint8_t* srow = scales + (r - r0) * n_blocks;
        uint8_t* prow = packed + (r - r0) * (w.cols / 2);
        int64_t b = 0;
        if (search) {
            for (; b + static_cast<int64_t>(N) <= n_blocks; b += static_cast<int64_t>(N)) {
                const float* x = row.data() + b * kNvfp4Block;
                for (size_t i = 0; i < N; ++i)
                    for (int j = 0; j < kNvfp4Block; ++j) soa[j * N + i] = x[i * kNvfp4Block + j];
                search_codes(soa, plan, srow + b);
            }
        }
        if (!search && !s.all_zero) {
            HWY_ALIGN float divisors[16];
            for (; b + static_cast<int64_t>(N) <= n_blocks; b += static_cast<int64_t>(N)) {
                const float* x = row.data() + b * kNvfp4Block;
                for (size_t i = 0; i < N; ++i) amax[i] = block_amax(x + i * kNvfp4Block);
                max_codes(amax, plan, srow + b, divisors);
                for (size_t i = 0; i < N; ++i)
                    encode_block(x + i * kNvfp4Block, divisors[i], prow + (b + static_cast<int64_t>(i)) * (kNvfp4Block / 2));
            }
            for (int64_t t = b; t < n_blocks; ++t) {  // ragged tail
                const float* x = row.data() + t * kNvfp4Block;
                srow[t] = plan.search == Nvfp4Search::DYNAMIC_MAX ? nvfp4_code_dynamic(block_amax(x), s)
                                                                 : nvfp4_code_static(block_amax(x), s);
                encode_block(x, nvfp4_block_divisor(srow[t], s), prow + t * (kNvfp4Block / 2));
            }
            continue;
        }
        for (int64_t t = search ? b : 0; t < n_blocks; ++t) {  // all-zero tensor, or the search tail
            const float* x = row.data() + t * kNvfp4Block;
            if (s.all_zero) srow[t] = 0x38;
            else if (plan.search == Nvfp4Search::DYNAMIC_MAX) srow[t] = nvfp4_code_dynamic(block_amax(x), s);
            else if (plan.search == Nvfp4Search::STATIC_MAX) srow[t] = nvfp4_code_static(block_amax(x), s);
            else srow[t] = nvfp4_choose_code_ref(x, plan);
        }
        for (int64_t t = 0; t < n_blocks; ++t)
            encode_block(row.data() + t * kNvfp4Block, nvfp4_block_divisor(srow[t], s), prow + t * (kNvfp4Block / 2));
    }
#endif
}

}  // namespace microscale::format::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace microscale::format {

HWY_EXPORT(QuantizeNvfp4Rows);

void quantize_nvfp4_rows_simd(const WeightView& w, const Nvfp4Plan& plan, int64_t r0, int64_t r1, uint8_t* packed,
                              uint8_t* scales) {
    HWY_DYNAMIC_DISPATCH(QuantizeNvfp4Rows)(w, plan, r0, r1, packed, scales);
}

}  // namespace microscale::format
#endif
