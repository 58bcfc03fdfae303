#include "io/direct_writer.h"

#include <cstdlib>
#include <cstring>

#include "io/safetensors.h"

namespace microscale::io {

static_assert(DirectBlockWriter::kBlockBytes % kDirectAlign == 0);

DirectBlockWriter::DirectBlockWriter(TempFile& file) : file_(file) {
    for (auto& b : blocks_) {
        void* p = std::aligned_alloc(kDirectAlign, kBlockBytes);
        if (!p) throw Error(file_.final_path().string() + ": cannot allocate the write staging blocks");
        b = {static_cast<uint8_t*>(p), std::free};
    }
    thread_ = std::thread([this] { run(); });
}

DirectBlockWriter::~DirectBlockWriter() {
    {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return pending_ == nullptr; });
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void DirectBlockWriter::wait_idle() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return pending_ == nullptr; });
    if (error_) std::rethrow_exception(error_);
}

void DirectBlockWriter::submit(size_t n) {
    wait_idle();  // the other block is free again
    {
        std::lock_guard<std::mutex> lock(mu_);
        pending_ = blocks_[cur_].get();
        pending_bytes_ = n;
    }
    cv_.notify_all();
    cur_ ^= 1;
    filled_ = 0;
}

void DirectBlockWriter::append(const uint8_t* data, size_t n) {
    total_ += n;
    while (n > 0) {
        const size_t k = std::min(n, kBlockBytes - filled_);
        std::memcpy(blocks_[cur_].get() + filled_, data, k);
        filled_ += k;
        data += k;
        n -= k;
        if (filled_ == kBlockBytes) submit(kBlockBytes);
    }
}

void DirectBlockWriter::finish() {
    if (filled_ > 0) {
        const size_t n = (filled_ + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
        std::memset(blocks_[cur_].get() + filled_, 0, n - filled_);
        submit(n);
    }
    wait_idle();
    file_.truncate(total_);
}

void DirectBlockWriter::run() {
    for (;;) {
        const uint8_t* block;
        size_t n;
        bool failed;
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [&] { return stop_ || pending_ != nullptr; });
            if (stop_ && pending_ == nullptr) return;
            block = pending_;
            n = pending_bytes_;
            failed = error_ != nullptr;
        }
        std::exception_ptr err;
        if (!failed) {  // after a failure the rest is not written (the file is abandoned)
            try {
                file_.write_all(block, n);
            } catch (...) {
                err = std::current_exception();
            }
        }
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (err && !error_) error_ = err;
            pending_ = nullptr;
        }
        cv_.notify_all();
    }
}

}  // namespace microscale::io
