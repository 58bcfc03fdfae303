#include "pipeline/async_writer.h"

namespace microscale::pipeline {

AsyncWriter::AsyncWriter(io::ShardedWriter& writer, uint64_t max_queued_bytes)
    : writer_(writer), max_bytes_(max_queued_bytes), thread_([this] { run(); }) {}

AsyncWriter::~AsyncWriter() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    for (Item& it : queue_)
        if (it.done) it.done();
}

void AsyncWriter::push(Item item) {
    const uint64_t n = item.held;
    std::unique_lock<std::mutex> lock(mu_);
    // Wait for room; an item larger than the whole budget still goes once the queue is empty.
    cv_.wait(lock, [&] { return error_ || queued_bytes_ == 0 || queued_bytes_ + n <= max_bytes_; });
    if (error_) std::rethrow_exception(error_);
    queued_bytes_ += n;
    queue_.push_back(std::move(item));
    cv_.notify_all();
}

void AsyncWriter::submit(std::string name, std::vector<uint8_t> data) {
    const uint64_t n = data.size();
    push(Item{std::move(name), std::move(data), {}, {}, n});
}

void AsyncWriter::submit_held(std::string name, std::span<const uint8_t> data, std::function<void()> done) {
    push(Item{std::move(name), {}, data, std::move(done), data.size()});
}

void AsyncWriter::submit_view(std::string name, std::span<const uint8_t> data, std::function<void()> done) {
    push(Item{std::move(name), {}, data, std::move(done), 0});
}

void AsyncWriter::drain() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return error_ || (queue_.empty() && !busy_); });
    if (error_) std::rethrow_exception(error_);
}

void AsyncWriter::run() {
    for (;;) {
        Item item;
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
            if (stop_) return;
            item = std::move(queue_.front());
            queue_.pop_front();
            busy_ = true;
        }
        const uint64_t n = item.held;
        try {
            writer_.write(item.name, item.view.empty() && !item.owned.empty() ? std::span<const uint8_t>(item.owned)
                                                                               : item.view);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mu_);
            if (!error_) error_ = std::current_exception();
        }
        if (item.done) item.done();
        {
            std::lock_guard<std::mutex> lock(mu_);
            queued_bytes_ -= n;
            busy_ = false;
        }
        cv_.notify_all();
    }
}

}  // namespace microscale::pipeline
