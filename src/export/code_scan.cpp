#include "export/code_scan.h"

#include <algorithm>

#include "core/thread_pool.h"

namespace microscale::exporter {
namespace {

constexpr size_t kChunkBytes = 1 << 20;

// First index in b where bad(c) holds; only called when the count says there is one.
template <class Bad>
size_t first_of(std::span<const uint8_t> b, Bad bad) {
    for (size_t i = 0; i < b.size(); ++i)
        if (bad(b[i])) return i;
    return CodeCounts::kNone;
}

void merge(CodeCounts& into, const CodeCounts& c, size_t offset) {
    const auto first = [&](size_t& a, size_t b) {
        if (b != CodeCounts::kNone && a == CodeCounts::kNone) a = b + offset;
    };
    into.nan += c.nan;
    into.zero += c.zero;
    into.neg += c.neg;
    first(into.first_nan, c.first_nan);
    first(into.first_zero, c.first_zero);
    first(into.first_neg, c.first_neg);
}

}  // namespace

CodeCounts scan_codes(std::span<const uint8_t> b, CodeKind kind) {
    // Branch-free counting (vectorized by the compiler); the rare bad code is located after.
    const auto nan = [kind](uint8_t c) { return kind == CodeKind::E8M0_SCALE ? c == 0xFF : (c & 0x7F) == 0x7F; };
    const auto zero = [](uint8_t c) { return (c & 0x7F) == 0; };
    const auto neg = [](uint8_t c) { return (c & 0x80) != 0 && (c & 0x7F) != 0 && (c & 0x7F) != 0x7F; };
    // Almost always clean: one OR over the bytes (byte-wide vector lanes) settles it.
    uint8_t any = 0;
    if (kind == CodeKind::E4M3_SCALE)
        for (uint8_t c : b) any |= static_cast<uint8_t>(static_cast<uint8_t>(c - 1) >= 0x7E);  // not 0x01..0x7E
    else if (kind == CodeKind::E8M0_SCALE)
        for (uint8_t c : b) any |= static_cast<uint8_t>(c == 0xFF);
    else
        for (uint8_t c : b) any |= static_cast<uint8_t>((c & 0x7F) == 0x7F);
    CodeCounts r;
    if (!any) return r;
    if (kind == CodeKind::E8M0_SCALE) {
        for (uint8_t c : b) r.nan += c == 0xFF;
    } else {
        for (uint8_t c : b) {
            r.nan += (c & 0x7F) == 0x7F;
            if (kind == CodeKind::E4M3_SCALE) {
                r.zero += (c & 0x7F) == 0;
                r.neg += ((c & 0x80) != 0) & ((c & 0x7F) != 0) & ((c & 0x7F) != 0x7F);
            }
        }
    }
    if (r.nan) r.first_nan = first_of(b, nan);
    if (r.zero) r.first_zero = first_of(b, zero);
    if (r.neg) r.first_neg = first_of(b, neg);
    return r;
}

std::vector<CodeCounts> scan_codes(std::span<const CodeScanJob> jobs, core::ThreadPool* pool) {
    struct Chunk {
        size_t job, offset, size;
    };
    std::vector<Chunk> chunks;
    for (size_t j = 0; j < jobs.size(); ++j)
        for (size_t off = 0; off < jobs[j].bytes.size(); off += kChunkBytes)
            chunks.push_back({j, off, std::min(kChunkBytes, jobs[j].bytes.size() - off)});
    std::vector<CodeCounts> partial(chunks.size());
    const auto run = [&](int64_t i) {
        const Chunk& c = chunks[static_cast<size_t>(i)];
        partial[static_cast<size_t>(i)] = scan_codes(jobs[c.job].bytes.subspan(c.offset, c.size), jobs[c.job].kind);
    };
    if (pool && chunks.size() > 1) pool->parallel_for(static_cast<int64_t>(chunks.size()), run);
    else for (size_t i = 0; i < chunks.size(); ++i) run(static_cast<int64_t>(i));
    std::vector<CodeCounts> out(jobs.size());
    for (size_t i = 0; i < chunks.size(); ++i) merge(out[chunks[i].job], partial[i], chunks[i].offset);  // chunks in order
    return out;
}

}  // namespace microscale::exporter
