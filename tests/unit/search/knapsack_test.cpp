// The budget solver against brute force on small random instances (optimal score, feasibility,
// the reported cost and score equal to the picked choices'), plus the edge cases.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>

#include "microscale/error.h"
#include "search/knapsack.h"

using namespace microscale;
using search::KnapsackChoice;

namespace {

using Groups = std::vector<std::vector<KnapsackChoice>>;

// Every assignment; the minimum score within capacity (nullopt-like: feasible=false).
search::KnapsackResult brute_force(const Groups& g, uint64_t capacity) {
    search::KnapsackResult best;
    std::vector<int> pick(g.size(), 0);
    while (true) {
        uint64_t cost = 0;
        double score = 0.0;
        for (size_t i = 0; i < g.size(); ++i) {
            cost += g[i][static_cast<size_t>(pick[i])].cost;
            score += g[i][static_cast<size_t>(pick[i])].score;
        }
        if (cost <= capacity && (!best.feasible || score < best.score || (score == best.score && cost < best.cost))) {
            best.feasible = true;
            best.score = score;
            best.cost = cost;
            best.pick = pick;
        }
        size_t i = 0;
        while (i < g.size() && ++pick[i] == static_cast<int>(g[i].size())) pick[i++] = 0;
        if (i == g.size()) break;
    }
    return best;
}

void expect_consistent(const Groups& g, const search::KnapsackResult& r, uint64_t capacity) {
    ASSERT_EQ(r.pick.size(), g.size());
    uint64_t cost = 0;
    double score = 0.0;
    for (size_t i = 0; i < g.size(); ++i) {
        ASSERT_GE(r.pick[i], 0);
        ASSERT_LT(r.pick[i], static_cast<int>(g[i].size()));
        cost += g[i][static_cast<size_t>(r.pick[i])].cost;
        score += g[i][static_cast<size_t>(r.pick[i])].score;
    }
    EXPECT_EQ(cost, r.cost);
    EXPECT_EQ(score, r.score);
    EXPECT_LE(cost, capacity);
}

}  // namespace

TEST(Knapsack, MatchesBruteForceOnRandomInstances) {
    std::mt19937_64 rng(12345);
    int feasible = 0, infeasible = 0;
    for (int trial = 0; trial < 3000; ++trial) {
        const int n = 1 + static_cast<int>(rng() % 7);
        Groups g(static_cast<size_t>(n));
        uint64_t max_total = 0;
        // Small integer costs and scores make ties (equal cost, equal score) common.
        const bool integer_scores = trial % 2 == 0;
        for (auto& grp : g) {
            const int k = 1 + static_cast<int>(rng() % 4);
            uint64_t mx = 0;
            for (int j = 0; j < k; ++j) {
                const uint64_t cost = rng() % (trial % 3 == 0 ? 5 : 1000);
                const double score = integer_scores ? double(rng() % 6) : std::ldexp(double(rng() >> 11), -53) * 10.0;
                grp.push_back({cost, score});
                mx = std::max(mx, cost);
            }
            max_total += mx;
        }
        const uint64_t capacity = rng() % (max_total + 2);
        const auto want = brute_force(g, capacity);
        const auto got = search::solve_knapsack(g, capacity);
        ASSERT_EQ(got.feasible, want.feasible) << "trial " << trial;
        if (!want.feasible) {
            ++infeasible;
            EXPECT_TRUE(got.pick.empty());
            continue;
        }
        ++feasible;
        expect_consistent(g, got, capacity);
        EXPECT_EQ(got.score, want.score) << "trial " << trial;
        EXPECT_EQ(got.cost, want.cost) << "trial " << trial << ": among optimal scores the cheapest";
    }
    EXPECT_GT(feasible, 1000);
    EXPECT_GT(infeasible, 50);
}

TEST(Knapsack, LargeCostsAreExactNotGridded) {
    // Byte costs of real tensors: a DP over a cost grid would need to round these.
    const Groups g = {{{9'000'000'004ull, 3.0}, {16'000'000'004ull, 1.0}, {32'000'000'000ull, 0.0}},
                      {{9'000'000'004ull, 2.0}, {16'000'000'004ull, 0.5}, {32'000'000'000ull, 0.0}}};
    // 25'000'000'008 fits one FP8 + one NVFP4 exactly; one byte less does not.
    auto r = search::solve_knapsack(g, 25'000'000'008ull);
    ASSERT_TRUE(r.feasible);
    EXPECT_EQ(r.pick, (std::vector<int>{1, 0}));  // 1.0 + 2.0 beats 3.0 + 0.5
    EXPECT_EQ(r.cost, 25'000'000'008ull);
    r = search::solve_knapsack(g, 25'000'000'007ull);
    ASSERT_TRUE(r.feasible);
    EXPECT_EQ(r.pick, (std::vector<int>{0, 0}));
    EXPECT_FALSE(search::solve_knapsack(g, 18'000'000'007ull).feasible);
    // Capacity near the top of uint64: no overflow in the prune.
    r = search::solve_knapsack(g, std::numeric_limits<uint64_t>::max());
    ASSERT_TRUE(r.feasible);
    EXPECT_EQ(r.pick, (std::vector<int>{2, 2}));
}

TEST(Knapsack, RejectsBadInput) {
    EXPECT_THROW(search::solve_knapsack({{{1, 0.0}}, {}}, 10), Error);
    EXPECT_THROW(search::solve_knapsack({{{1, std::nan("")}}}, 10), Error);
    const auto r = search::solve_knapsack({}, 0);  // nothing to choose: the empty plan
    EXPECT_TRUE(r.feasible);
    EXPECT_TRUE(r.pick.empty());
}
