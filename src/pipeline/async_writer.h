// Writes tensors on a background thread, in submission order, so quantizing tensor i+1 overlaps
// writing tensor i. The queue is bounded by the memory its items hold, so memory stays flat
// whatever the model size.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "io/checkpoint.h"

namespace microscale::pipeline {

class AsyncWriter {
public:
    AsyncWriter(io::ShardedWriter& writer, uint64_t max_queued_bytes);
    ~AsyncWriter();  // stops the thread; pending items are dropped (the output is abandoned)
    AsyncWriter(const AsyncWriter&) = delete;
    AsyncWriter& operator=(const AsyncWriter&) = delete;

    // Owned bytes: moved into the queue.
    void submit(std::string name, std::vector<uint8_t> data);
    // Borrowed bytes: they must stay valid until done() runs on the writer thread, which is where
    // the caller releases them. submit_held: memory the caller allocated (counts against the
    // budget). submit_view: an mmap'd input, whose pages come in only as the writer reads them and
    // leave with done(), so it holds no memory while queued (does not count: the quantizer need
    // not wait behind a large copied tensor).
    void submit_held(std::string name, std::span<const uint8_t> data, std::function<void()> done);
    void submit_view(std::string name, std::span<const uint8_t> data, std::function<void()> done);
    // Waits for everything queued to be written; rethrows the writer's first error.
    void drain();

private:
    struct Item {
        std::string name;
        std::vector<uint8_t> owned;
        std::span<const uint8_t> view;
        std::function<void()> done;
        uint64_t held = 0;  // bytes counted against the budget
    };
    void push(Item item);
    void run();

    io::ShardedWriter& writer_;
    const uint64_t max_bytes_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Item> queue_;
    uint64_t queued_bytes_ = 0;
    bool busy_ = false, stop_ = false;
    std::exception_ptr error_;
    std::thread thread_;
};

}  // namespace microscale::pipeline
