#include "search/knapsack.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "microscale/error.h"

namespace microscale::search {
namespace {

struct State {
    uint64_t cost;
    double score;
    uint32_t parent;  // index in the previous front
    int32_t choice;   // choice taken in this group
};

}  // namespace

KnapsackResult solve_knapsack(const std::vector<std::vector<KnapsackChoice>>& groups, uint64_t capacity,
                              uint64_t max_states) {
    const size_t n = groups.size();
    // min_rest[g]: cheapest cost of groups g..n-1 (saturating), for the feasibility prune.
    std::vector<uint64_t> min_rest(n + 1, 0);
    for (size_t g = n; g-- > 0;) {
        if (groups[g].empty()) throw Error(fmt::format("knapsack: group {} has no choices", g));
        uint64_t m = std::numeric_limits<uint64_t>::max();
        for (const KnapsackChoice& c : groups[g]) {
            if (!std::isfinite(c.score)) throw Error(fmt::format("knapsack: group {} has a non-finite score", g));
            m = std::min(m, c.cost);
        }
        min_rest[g] = min_rest[g + 1] > std::numeric_limits<uint64_t>::max() - m ? std::numeric_limits<uint64_t>::max()
                                                                                  : min_rest[g + 1] + m;
    }
    KnapsackResult res;
    if (min_rest[0] > capacity) return res;

    std::vector<std::vector<State>> fronts(n + 1);
    fronts[0].push_back({0, 0.0, 0, -1});
    std::vector<State> next;
    for (size_t g = 0; g < n; ++g) {
        const std::vector<State>& cur = fronts[g];
        next.clear();
        for (size_t s = 0; s < cur.size(); ++s)
            for (size_t j = 0; j < groups[g].size(); ++j) {
                const KnapsackChoice& c = groups[g][j];
                // Feasible completion needs cost + c.cost + min_rest[g+1] <= capacity (no overflow).
                if (c.cost > capacity - cur[s].cost || min_rest[g + 1] > capacity - cur[s].cost - c.cost) continue;
                next.push_back({cur[s].cost + c.cost, cur[s].score + c.score, static_cast<uint32_t>(s),
                                static_cast<int32_t>(j)});
            }
        // Sort by cost, then score; stable keeps the first-found among equal (cost, score).
        std::stable_sort(next.begin(), next.end(), [](const State& a, const State& b) {
            return a.cost != b.cost ? a.cost < b.cost : a.score < b.score;
        });
        std::vector<State>& front = fronts[g + 1];
        for (const State& st : next)
            if (front.empty() || st.score < front.back().score) front.push_back(st);
        if (front.size() > max_states)
            throw Error(fmt::format("knapsack: the Pareto front reached {} partial solutions at group {} of {} "
                                    "(limit {}); use fewer formats or coarser groups",
                                    front.size(), g + 1, n, max_states));
        res.peak_states = std::max<uint64_t>(res.peak_states, front.size());
    }
    // Scores fall strictly along the front, so its last state is the optimum (and the cheapest
    // among equal optima, since a costlier state with the same score was never kept).
    const std::vector<State>& last = fronts[n];
    if (last.empty()) return res;
    res.feasible = true;
    res.cost = last.back().cost;
    res.score = last.back().score;
    res.pick.assign(n, -1);
    uint32_t idx = static_cast<uint32_t>(last.size() - 1);
    for (size_t g = n; g-- > 0;) {
        const State& st = fronts[g + 1][idx];
        res.pick[g] = st.choice;
        idx = st.parent;
    }
    return res;
}

}  // namespace microscale::search
