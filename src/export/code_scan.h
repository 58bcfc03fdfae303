// Counting bad codes in exported tensors (NaN / zero / negative block scales, NaN FP8 elements):
// the verifier's only pass over bulk bytes, so it runs in chunks over the thread pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace microscale::core {
class ThreadPool;
}

namespace microscale::exporter {

enum class CodeKind : uint8_t {
    E4M3_SCALE,    // NaN (0x7F/0xFF), zero (+-0) and negative codes are problems
    E8M0_SCALE,    // NaN (0xFF) is the only problem
    E4M3_ELEMENT,  // NaN only (zeros and negatives are ordinary weights)
};

struct CodeCounts {
    static constexpr size_t kNone = std::numeric_limits<size_t>::max();
    size_t nan = 0, zero = 0, neg = 0;
    size_t first_nan = kNone, first_zero = kNone, first_neg = kNone;  // byte index in the tensor
};

CodeCounts scan_codes(std::span<const uint8_t> bytes, CodeKind kind);

struct CodeScanJob {
    std::span<const uint8_t> bytes;
    CodeKind kind;
};

// The same counts as scan_codes for each job, in job order, whatever the thread count; big
// tensors are split so that one large tensor does not serialise the scan. pool may be null.
std::vector<CodeCounts> scan_codes(std::span<const CodeScanJob> jobs, core::ThreadPool* pool);

}  // namespace microscale::exporter
