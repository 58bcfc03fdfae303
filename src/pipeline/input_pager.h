// Page work on the mmap'd input, done on one background thread so the quantizing threads never
// wait for it: mapping the next tensor's pages in ahead of use (no page faults in the kernels)
// and dropping a finished tensor's pages (the unmap and its TLB flushes). Jobs run in order.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "io/checkpoint.h"

namespace microscale::pipeline {

class InputPager {
public:
    InputPager();
    ~InputPager();  // drops the jobs not started (hints only)
    InputPager(const InputPager&) = delete;
    InputPager& operator=(const InputPager&) = delete;

    // Both only queue the job; t's file must outlive the pager. Page hints only: a failed or
    // late one costs speed, never bytes.
    void populate(const io::TensorRef& t);
    void release(const io::TensorRef& t);

private:
    struct Job {
        const io::SafetensorsFile* file;
        const io::TensorInfo* info;
        bool populate;
    };
    void push(Job job);
    void run();

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job> jobs_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace microscale::pipeline
