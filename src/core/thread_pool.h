// A fixed pool of worker threads running index-parallel loops. Each index writes only its own
// outputs, so results do not depend on the thread count (DESIGN.md "Deterministic").
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace microscale::core {

class ThreadPool {
public:
    // n_threads = 0 picks std::thread::hardware_concurrency().
    explicit ThreadPool(unsigned n_threads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }

    // Run fn(i) for i in [0, n) on the pool and the calling thread; returns when all are done.
    // The first exception thrown by any fn is rethrown here (the remaining indices still run).
    void parallel_for(int64_t n, const std::function<void(int64_t)>& fn);

private:
    void worker_loop();
    void run_indices();

    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable wake_, done_;
    const std::function<void(int64_t)>* fn_ = nullptr;
    int64_t n_ = 0, next_ = 0, finished_ = 0;
    uint64_t generation_ = 0;
    unsigned busy_ = 0;
    bool stop_ = false;
    std::exception_ptr error_;
};

}  // namespace microscale::core
