// Exact multiple-choice knapsack (the AutoQuantize budget solver, spec nvfp4-modelopt.md §7):
// pick exactly one choice per group so that the total cost stays within the capacity and the
// total score is minimal. Costs are integers (bytes as stored), scores any finite doubles.
//
// Method: dynamic programming over Pareto fronts. After each group the set of partial
// solutions is reduced to those no other partial solution dominates (cost <= and score <=,
// one strictly); partial solutions that cannot complete within the capacity (even with every
// remaining group at its cheapest choice) are dropped. The optimum is on the final front, so the
// result is exact whatever the magnitude of the costs (no scaling or rounding of the capacity),
// unlike a DP over a cost grid. The front stays small for AutoQuantize's instances (hundreds of
// groups, a handful of formats); the worst case is exponential, which max_states bounds.
#pragma once

#include <cstdint>
#include <vector>

namespace microscale::search {

struct KnapsackChoice {
    uint64_t cost = 0;
    double score = 0.0;
};

struct KnapsackResult {
    bool feasible = false;
    std::vector<int> pick;  // per group: index into its choices (empty when infeasible)
    uint64_t cost = 0;
    double score = 0.0;
    uint64_t peak_states = 0;  // largest Pareto front met (for the report)
};

// groups[g] lists group g's choices (each group needs at least one). Ties in score go to the
// cheaper solution, then to the one found first (earlier choices of earlier groups), so the
// result is deterministic. Throws microscale::Error for an empty group, a non-finite score or a
// front larger than max_states.
KnapsackResult solve_knapsack(const std::vector<std::vector<KnapsackChoice>>& groups, uint64_t capacity,
                              uint64_t max_states = 20'000'000);

}  // namespace microscale::search
