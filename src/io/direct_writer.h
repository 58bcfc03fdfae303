// The DIRECT write path of SafetensorsWriter: bytes are copied into aligned blocks and written
// with O_DIRECT by a background thread, two blocks deep, so the copy of block k+1 overlaps the
// disk writing block k. The last block is padded to the alignment and the padding truncated.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

namespace microscale::io {

class TempFile;

class DirectBlockWriter {
public:
    explicit DirectBlockWriter(TempFile& file);
    ~DirectBlockWriter();  // waits for the block in flight; errors are dropped (the file is abandoned)
    DirectBlockWriter(const DirectBlockWriter&) = delete;
    DirectBlockWriter& operator=(const DirectBlockWriter&) = delete;

    // Both rethrow the first write error of the background thread.
    void append(const uint8_t* data, size_t n);
    void finish();  // writes what is left, waits, truncates to the bytes appended

    static constexpr size_t kBlockBytes = 8 << 20;  // deep device queues from one write

private:
    void submit(size_t n);  // hands blocks_[cur_] (n bytes) to the thread, switches blocks
    void wait_idle();       // the block in flight is written; rethrows its error
    void run();

    TempFile& file_;
    std::unique_ptr<uint8_t, void (*)(void*)> blocks_[2] = {{nullptr, nullptr}, {nullptr, nullptr}};
    int cur_ = 0;        // the block being filled
    size_t filled_ = 0;  // bytes in blocks_[cur_]
    uint64_t total_ = 0; // bytes appended
    std::mutex mu_;
    std::condition_variable cv_;
    const uint8_t* pending_ = nullptr;  // the block to write, or null
    size_t pending_bytes_ = 0;
    bool stop_ = false;
    std::exception_ptr error_;
    std::thread thread_;
};

}  // namespace microscale::io
