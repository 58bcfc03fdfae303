// local_hessian (ModelOpt 0.46 `local_hessian_calibrate`, spec §5.4): the weight-scale search of
// §5.2 with the per-block loss dw^T H_n dw instead of sum dw^2, where H_n is the 16x16 Hessian of
// input block n, shared by every output row: H_n = (1/N) sum_tokens x_n x_n^T (fp32, summed over
// batches, divided by the token count once at the end, as ModelOpt's LocalHessianHelper does).
//
// Pinned where ModelOpt's arithmetic is torch's (einsum "cnb,nbd,cnd->cn", order unspecified):
// t_a = sum_b H_n[a][b] dw_b in fp32 with b ascending, loss = sum_a dw_a t_a in fp32 with a
// ascending; the first strictly smaller loss wins (ties -> earliest candidate, as the sweeps).
// With H_n = I this is exactly nvfp4_block_loss, so the codes equal the plain sweep's.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "format/nvfp4.h"
#include "format/weight_view.h"

namespace microscale::core {
class ThreadPool;
}

namespace microscale::algo {

inline constexpr int kLocalHessianBlock = 16;

class BlockHessianAccumulator {
public:
    explicit BlockHessianAccumulator(int64_t in_features);  // in_features % 16 == 0
    void add(const float* x, int64_t rows, int64_t ld);      // X [rows, in], row stride ld
    std::vector<float> hessians() const;                     // [in/16, 16, 16] sum / N, both halves
    int64_t samples() const { return n_; }
    int64_t in_features() const { return in_; }

private:
    int64_t in_, n_ = 0;
    std::vector<float> sum_;  // [in/16, 16, 16] upper triangles of sum X_n^T X_n
};

// dw^T H dw for one block, in the pinned fp32 order above.
float block_hessian_loss(const float* dw16, const float* h16x16);

// Static NVFP4 block codes [rows, cols/16] under plan.search FP8_SWEEP (the 126 E4M3 codes) or
// MSE (plan.multipliers x block amax), chosen by the local-Hessian loss. block_h: [cols/16, 16, 16].
std::vector<uint8_t> local_hessian_nvfp4_codes(const format::WeightView& w, const format::Nvfp4Plan& plan,
                                               std::span<const float> block_h, core::ThreadPool* pool);

// FP8 per-tensor weights: the amax among amax * k (k in order) whose exported codes give the
// smallest sum of block losses (fp32 along a row, double over rows, like fp8_search_amax).
float local_hessian_fp8_amax(const format::WeightView& w, float amax, std::span<const float> multipliers,
                             std::span<const float> block_h);

}  // namespace microscale::algo
