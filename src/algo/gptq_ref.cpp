// GPTQ reference: the textbook column loop (Frantar et al., Alg. 1 without lazy batching). Each
// column is rounded onto the fixed grid and its scaled error (w - q)/U[i,i] is subtracted from
// every later column at once through row i of U. Same result as the blocked gptq() in exact
// arithmetic; tests compare the two by objective.
#include "algo/gptq_detail.h"

namespace microscale::algo {

GptqResult gptq_ref(std::span<const float> w_in, int64_t out, int64_t in, std::span<const float> hessian,
                    const FixedGrid& grid, const GptqOptions& opts) {
    detail::Prepared p = detail::prepare(w_in, out, in, hessian, grid, opts);
    const detail::GridRounder round(grid, out, in);
    for (int64_t i = 0; i < in; ++i) {
        const float* urow = p.u.data() + i * in;
        for (int64_t r = 0; r < out; ++r) {
            float* row = p.w.data() + r * in;
            const float x = row[i];
            const float e = (x - round(r, p.perm[static_cast<size_t>(i)], x)) / urow[i];
            for (int64_t j = i + 1; j < in; ++j) row[j] -= e * urow[j];
        }
    }
    return detail::finish(std::move(p), w_in, out, in, hessian, grid);
}

}  // namespace microscale::algo
