// Progress output of `microscale quantize` on stderr: today's aligned line per tensor (house
// rule 11), or on a terminal one updating bar line (tensor i/n, bytes, GB/s, ETA).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "pipeline/quantize_job.h"

namespace microscale::pipeline {

enum class ProgressMode : uint8_t { AUTO, BAR, LINES, NONE };

std::optional<ProgressMode> progress_mode_from_name(std::string_view name);  // auto|bar|lines|none
// AUTO becomes BAR when fd is a terminal, LINES otherwise; other modes are kept.
ProgressMode resolve_progress_mode(ProgressMode mode, int fd);

// "[  12/ 170] name  BF16 -> w4a16_nvfp4 max  ...  0.012 s" (no newline).
std::string tensor_line(size_t i, size_t n, const TensorReport& t);

struct ProgressState {
    size_t tensors_done = 0, tensors_total = 0;
    uint64_t bytes_done = 0, bytes_total = 0;  // input bytes
    double elapsed_s = 0.0;
    std::string_view current;                  // last finished tensor
};
// One bar line of at most `width` columns (no newline, no control characters):
// "[  12/ 170] [#####.....]  45%  0.91/2.01 GiB  1.77 GB/s  ETA 0.6 s  name".
std::string bar_line(const ProgressState& s, int width);

// Prints in the resolved mode (BAR, LINES or NONE) to out.
class ProgressPrinter {
public:
    ProgressPrinter(ProgressMode mode, std::FILE* out);
    ~ProgressPrinter();  // ends an open bar line
    ProgressPrinter(const ProgressPrinter&) = delete;
    ProgressPrinter& operator=(const ProgressPrinter&) = delete;

    void start(size_t n_tensors, uint64_t input_bytes);
    void tensor(size_t i, size_t n, const TensorReport& t);
    void log(const std::string& line);  // a message line; the bar is redrawn below it
    void finish();                      // ends the bar line (the summary follows)

private:
    void draw(bool force);
    int width() const;

    ProgressMode mode_;
    std::FILE* out_;
    ProgressState s_;
    std::string current_;
    std::chrono::steady_clock::time_point t0_, last_draw_;
    bool bar_open_ = false;
};

}  // namespace microscale::pipeline
