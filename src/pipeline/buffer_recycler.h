// Uninitialised byte buffers for quantized tensors, recycled. quantize_weight_to writes every
// byte, so nothing is zero-filled; and a buffer the writer has finished with is handed to a
// later tensor, whose pages are then already mapped (no page faults, no kernel zeroing). The
// free list is capped, so memory stays bounded by the write queue plus the cap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace microscale::pipeline {

struct RecycledBuffer {
    std::unique_ptr<uint8_t[]> bytes;
    size_t capacity = 0;
    uint8_t* get() const { return bytes.get(); }
};

class BufferRecycler {
public:
    explicit BufferRecycler(uint64_t max_free_bytes) : max_free_(max_free_bytes) {}

    // At least n bytes, contents unspecified. Thread-safe, as is give_back.
    RecycledBuffer take(size_t n);
    void give_back(RecycledBuffer b);

private:
    const uint64_t max_free_;
    std::mutex mu_;
    std::vector<RecycledBuffer> free_;  // sorted by capacity
    uint64_t free_bytes_ = 0;
};

}  // namespace microscale::pipeline
