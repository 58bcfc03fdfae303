// Internals shared by the blocked GPTQ (gptq.cpp) and its plain reference (gptq_ref.cpp): the
// Hessian preparation both run before their column loops, the per-element rounding onto the
// fixed grid, and the final objectives.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "algo/gptq.h"
#include "algo/gptq_round.h"
#include "format/codec/e2m1.h"
#include "format/codec/e4m3.h"

namespace microscale::algo::detail {

// Rounds one element of the working matrix onto the fixed grid. NVFP4 divisors are decoded once.
class GridRounder {
public:
    GridRounder(const FixedGrid& grid, int64_t out, int64_t in);
    // x rounded as element (r, c) of the original (unpermuted) layout.
    float operator()(int64_t r, int64_t c, float x) const {
        if (fp8_) return gptq_round_fp8(x, scale_);
        return gptq_round_nvfp4(x, div_[static_cast<size_t>(r * blocks_ + c / 16)]);
    }

private:
    bool fp8_;
    float scale_;
    int64_t blocks_;
    std::vector<float> div_;  // NVFP4 [out, in/16] RN(code * wsf2)
};

struct Prepared {
    std::vector<float> w;         // [out, in] working weights, columns in quantization order
    std::vector<float> u;         // [in, in] upper Cholesky factor of inv(H + damp), same order
    std::vector<int64_t> perm;    // position j holds original column perm[j] (identity without act order)
    int64_t dead_columns = 0;
    bool identity_fallback = false;
};

// Checks shapes; zeroes dead inputs (H[i,i] == 0: H row/col cleared, H[i,i] = 1, weights 0);
// orders columns by decreasing H[i,i] under act_order (stable); adds perc_damp * mean(diag H);
// U = chol(chol_inverse(H)), or the identity when H is not positive definite.
Prepared prepare(std::span<const float> w, int64_t out, int64_t in, std::span<const float> hessian,
                 const FixedGrid& grid, const GptqOptions& opts);

// Puts the columns back in the original order and fills the objectives against the given H.
GptqResult finish(Prepared&& p, std::span<const float> w_in, int64_t out, int64_t in, std::span<const float> hessian,
                  const FixedGrid& grid);

}  // namespace microscale::algo::detail
