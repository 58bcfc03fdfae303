#include "pipeline/input_pager.h"

namespace microscale::pipeline {

InputPager::InputPager() : thread_([this] { run(); }) {}

InputPager::~InputPager() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void InputPager::populate(const io::TensorRef& t) { push({t.file, t.info, true}); }
void InputPager::release(const io::TensorRef& t) { push({t.file, t.info, false}); }

void InputPager::push(Job job) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        jobs_.push_back(job);
    }
    cv_.notify_all();
}

void InputPager::run() {
    for (;;) {
        Job job;
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
            if (stop_) return;
            job = jobs_.front();
            jobs_.pop_front();
        }
        if (job.populate) job.file->populate(*job.info);
        else job.file->release(*job.info);
    }
}

}  // namespace microscale::pipeline
