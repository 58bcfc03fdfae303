// The verifier's parallel byte scan: the counts and first positions of a plain serial loop, for
// tensors that span several chunks and bad codes on chunk boundaries, for any thread count.
#include <gtest/gtest.h>

#include <random>

#include "core/thread_pool.h"
#include "export/code_scan.h"

using namespace microscale;
using namespace microscale::exporter;

namespace {

CodeCounts naive(const std::vector<uint8_t>& b, CodeKind k) {
    CodeCounts r;
    for (size_t i = 0; i < b.size(); ++i) {
        const uint8_t c = b[i];
        const bool nan = k == CodeKind::E8M0_SCALE ? c == 0xFF : (c & 0x7F) == 0x7F;
        if (nan) {
            if (!r.nan++) r.first_nan = i;
        } else if (k == CodeKind::E4M3_SCALE && (c & 0x7F) == 0) {
            if (!r.zero++) r.first_zero = i;
        } else if (k == CodeKind::E4M3_SCALE && (c & 0x80)) {
            if (!r.neg++) r.first_neg = i;
        }
    }
    return r;
}

void expect_same(const CodeCounts& a, const CodeCounts& b, const std::string& what) {
    EXPECT_EQ(a.nan, b.nan) << what;
    EXPECT_EQ(a.zero, b.zero) << what;
    EXPECT_EQ(a.neg, b.neg) << what;
    EXPECT_EQ(a.first_nan, b.first_nan) << what;
    EXPECT_EQ(a.first_zero, b.first_zero) << what;
    EXPECT_EQ(a.first_neg, b.first_neg) << what;
}

}  // namespace

TEST(CodeScan, MatchesSerialLoop) {
    std::mt19937 rng(3);
    std::vector<std::vector<uint8_t>> tensors;
    for (size_t n : {size_t{0}, size_t{1}, size_t{1000}, size_t{(1 << 20) + 5}, size_t{3 << 20}}) {
        std::vector<uint8_t> clean(n);
        for (auto& c : clean) c = static_cast<uint8_t>(1 + rng() % 0x7E);  // positive, finite, non-zero
        tensors.push_back(clean);
        if (n < 2) continue;
        std::vector<uint8_t> bad = clean;
        for (size_t at : {n - 1, n / 2, size_t{1} << 20, (size_t{1} << 20) - 1})
            if (at < n) bad[at] = static_cast<uint8_t>(std::vector<uint8_t>{0xFF, 0x7F, 0x00, 0x80, 0xB8}[at % 5]);
        for (int i = 0; i < 50; ++i) bad[rng() % n] = static_cast<uint8_t>(rng());
        tensors.push_back(bad);
    }
    core::ThreadPool pool(4);
    for (CodeKind k : {CodeKind::E4M3_SCALE, CodeKind::E8M0_SCALE, CodeKind::E4M3_ELEMENT}) {
        std::vector<CodeScanJob> jobs;
        for (const auto& t : tensors) jobs.push_back({t, k});
        const auto serial = scan_codes(jobs, nullptr), parallel = scan_codes(jobs, &pool);
        ASSERT_EQ(parallel.size(), tensors.size());
        for (size_t i = 0; i < tensors.size(); ++i) {
            const std::string what = "kind " + std::to_string(int(k)) + " tensor " + std::to_string(i);
            const CodeCounts want = naive(tensors[i], k);
            expect_same(scan_codes(tensors[i], k), want, what);
            expect_same(serial[i], want, what);
            expect_same(parallel[i], want, what);
        }
    }
}
