// Host wrappers of the test-only device kernels in device_math_kernels.cu.
#pragma once

#include <cstdint>
#include <vector>

namespace microscale::test {

// e2m1_nibble_cut(w[i], e2m1_cuts(d[i])) computed on the GPU.
std::vector<uint8_t> gpu_e2m1_nibbles(const std::vector<float>& w, const std::vector<float>& d);
// format::mx_block_exponent(x[i]) computed on the GPU.
std::vector<int> gpu_mx_exponents(const std::vector<float>& x);

}  // namespace microscale::test
