// The shared rounding helpers give the same answers on the GPU as on the host where it is most
// fragile: E2M1 decisions one ulp either side of every bound (double->float conversions on the
// device), and MX exponents at the mantissas where ceil(log2) flips in every binade (the
// device's double log2 against glibc's).
#include <cmath>
#include <cstring>
#include <random>

#include "device_math.h"
#include "format/codec/e2m1.h"
#include "format/codec/e4m3.h"
#include "format/mx_block.h"
#include "gpu_test_util.h"

using namespace microscale;

namespace {

float from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
uint32_t to_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

}  // namespace

TEST(GpuDeviceMath, E2m1NibblesNextToEveryBound) {
    MICROSCALE_REQUIRE_GPU();
    std::vector<float> w, d;
    const float wsf2s[] = {1.0f, 0.0123f, 3.7e-5f, 7.3e3f, 2.9e35f, 1e-38f, 1.4e-45f, 5.9e-39f};
    const float bounds[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f};
    for (float s : wsf2s)
        for (int code = 0; code <= 0x7E; ++code) {
            const float dd = codec::e4m3_to_float(static_cast<uint8_t>(code)) * s;
            for (float t : bounds)
                for (int k = -3; k <= 3; ++k) {
                    const int64_t b = static_cast<int64_t>(to_bits(t * dd)) + k;
                    if (b < 0 || b > 0x7F7FFFFF) continue;
                    for (float sign : {1.0f, -1.0f}) {
                        w.push_back(sign * from_bits(static_cast<uint32_t>(b)));
                        d.push_back(dd);
                    }
                }
        }
    const std::vector<uint8_t> got = microscale::test::gpu_e2m1_nibbles(w, d);
    size_t bad = 0;
    for (size_t i = 0; i < w.size(); ++i)
        if (got[i] != codec::e2m1_from_float(w[i] / d[i]) && bad++ < 5)
            ADD_FAILURE() << "w=" << w[i] << " d=" << d[i] << " gpu " << int(got[i]) << " host "
                          << int(codec::e2m1_from_float(w[i] / d[i]));
    EXPECT_EQ(bad, 0u) << "of " << w.size();
}

TEST(GpuDeviceMath, MxExponentAtEveryFlipPoint) {
    MICROSCALE_REQUIRE_GPU();
    std::vector<float> x;
    // Every binade of positive floats: the mantissa where the host result first exceeds the
    // binade's exponent (binary search; the host function is monotone), and its neighbours.
    for (uint32_t e = 0; e < 255; ++e) {
        const uint32_t base = e << 23;
        const int lo_exp = format::mx_block_exponent(from_bits(base == 0 ? 1u : base));
        uint32_t lo = base == 0 ? 1u : base, hi = base | 0x7FFFFFu;
        if (format::mx_block_exponent(from_bits(hi)) == lo_exp) {
            x.push_back(from_bits(hi));
            continue;
        }
        while (hi - lo > 1) {
            const uint32_t mid = lo + (hi - lo) / 2;
            (format::mx_block_exponent(from_bits(mid)) == lo_exp ? lo : hi) = mid;
        }
        for (int k = -4; k <= 4; ++k) x.push_back(from_bits(hi + static_cast<uint32_t>(k)));
        x.push_back(from_bits(base == 0 ? 1u : base));
    }
    std::mt19937 rng(3);
    for (int i = 0; i < 1000000; ++i) x.push_back(from_bits(rng() & 0x7F7FFFFFu));
    x.push_back(0.0f);
    const std::vector<int> got = microscale::test::gpu_mx_exponents(x);
    size_t bad = 0;
    for (size_t i = 0; i < x.size(); ++i)
        if (got[i] != format::mx_block_exponent(x[i]) && bad++ < 5)
            ADD_FAILURE() << "x=" << x[i] << " (0x" << std::hex << to_bits(x[i]) << std::dec << ") gpu " << got[i]
                          << " host " << format::mx_block_exponent(x[i]);
    EXPECT_EQ(bad, 0u) << "of " << x.size();
}
