#include "pipeline/buffer_recycler.h"

#include <algorithm>

namespace microscale::pipeline {

RecycledBuffer BufferRecycler::take(size_t n) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        // The smallest free buffer that fits, unless it would waste more than half of itself.
        auto it = std::lower_bound(free_.begin(), free_.end(), n,
                                   [](const RecycledBuffer& b, size_t want) { return b.capacity < want; });
        if (it != free_.end() && it->capacity / 2 <= n) {
            RecycledBuffer b = std::move(*it);
            free_.erase(it);
            free_bytes_ -= b.capacity;
            return b;
        }
    }
    n = std::max<size_t>(n, 1);
    return {std::make_unique_for_overwrite<uint8_t[]>(n), n};
}

void BufferRecycler::give_back(RecycledBuffer b) {
    if (!b.bytes) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto at = std::lower_bound(free_.begin(), free_.end(), b.capacity,
                               [](const RecycledBuffer& x, size_t c) { return x.capacity < c; });
    free_bytes_ += b.capacity;
    free_.insert(at, std::move(b));
    // Over the cap: drop the smallest first (the large ones save the most page faults).
    while (free_bytes_ > max_free_ && !free_.empty()) {
        free_bytes_ -= free_.front().capacity;
        free_.erase(free_.begin());
    }
}

}  // namespace microscale::pipeline
