#include "core/thread_pool.h"

#include <exception>

namespace microscale::core {

ThreadPool::ThreadPool(unsigned n_threads) {
    if (n_threads == 0) n_threads = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 1; i < n_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::run_indices() {
    for (;;) {
        int64_t i;
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (next_ >= n_) return;
            i = next_++;
        }
        try {
            (*fn_)(i);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mu_);
            if (!error_) error_ = std::current_exception();
        }
        std::lock_guard<std::mutex> lock(mu_);
        if (++finished_ == n_) done_.notify_all();
    }
}

void ThreadPool::worker_loop() {
    uint64_t seen = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mu_);
            wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            ++busy_;
        }
        run_indices();
        std::lock_guard<std::mutex> lock(mu_);
        if (--busy_ == 0) done_.notify_all();
    }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t)>& fn) {
    if (n <= 0) return;
    {
        std::lock_guard<std::mutex> lock(mu_);
        fn_ = &fn;
        n_ = n;
        next_ = 0;
        finished_ = 0;
        error_ = nullptr;
        ++generation_;
    }
    wake_.notify_all();
    run_indices();
    std::unique_lock<std::mutex> lock(mu_);
    // Wait for every index and for every worker to leave run_indices before fn goes away.
    done_.wait(lock, [&] { return finished_ == n_ && busy_ == 0; });
    fn_ = nullptr;
    n_ = 0;
    if (error_) std::rethrow_exception(error_);
}

}  // namespace microscale::core
