#include "pipeline/progress.h"

#include <fmt/core.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace microscale::pipeline {
namespace {

using Clock = std::chrono::steady_clock;

// A terminal redraw costs a write syscall and the terminal's time: at most this often.
constexpr std::chrono::milliseconds kRedrawEvery{80};

std::string seconds_text(double s) {
    if (s < 60) return fmt::format("{:.1f} s", s);
    if (s < 3600) return fmt::format("{}m{:02}s", int(s) / 60, int(s) % 60);
    return fmt::format("{}h{:02}m", int(s) / 3600, (int(s) % 3600) / 60);
}

}  // namespace

std::optional<ProgressMode> progress_mode_from_name(std::string_view name) {
    if (name == "auto") return ProgressMode::AUTO;
    if (name == "bar") return ProgressMode::BAR;
    if (name == "lines") return ProgressMode::LINES;
    if (name == "none") return ProgressMode::NONE;
    return std::nullopt;
}

ProgressMode resolve_progress_mode(ProgressMode mode, int fd) {
    if (mode != ProgressMode::AUTO) return mode;
    return isatty(fd) ? ProgressMode::BAR : ProgressMode::LINES;
}

std::string tensor_line(size_t i, size_t n, const TensorReport& t) {
    const std::string err = t.rel_mse >= 0 ? fmt::format("rel.mse {:.2e}", t.rel_mse) : std::string(16, ' ');
    const std::string what = t.format == "-" ? std::string("copy") : t.format + " " + t.algorithm;
    return fmt::format("[{:>4}/{:>4}] {:<52} {:>5} -> {:<30} {:>9.2f} -> {:>8.2f} MiB  {}  {:6.3f} s", i + 1, n, t.name,
                       t.input_dtype, what, double(t.input_bytes) / 1048576.0, double(t.output_bytes) / 1048576.0, err,
                       t.seconds);
}

std::string bar_line(const ProgressState& s, int width) {
    const double frac = s.bytes_total ? std::min(1.0, double(s.bytes_done) / double(s.bytes_total))
                        : s.tensors_total ? double(s.tensors_done) / double(s.tensors_total)
                                          : 0.0;
    const double rate = s.elapsed_s > 0 ? double(s.bytes_done) / s.elapsed_s : 0.0;  // bytes/s
    const std::string eta = rate > 0 && s.bytes_done < s.bytes_total
                                ? "ETA " + seconds_text(double(s.bytes_total - s.bytes_done) / rate)
                                : (s.bytes_done >= s.bytes_total && s.tensors_done == s.tensors_total
                                       ? "in " + seconds_text(s.elapsed_s)
                                       : std::string("ETA -"));
    const std::string head = fmt::format("[{:>4}/{:>4}] ", s.tensors_done, s.tensors_total);
    const std::string tail = fmt::format(" {:3.0f}%  {:.2f}/{:.2f} GiB  {:.2f} GB/s  {}", 100.0 * frac,
                                         double(s.bytes_done) / double(1ull << 30), double(s.bytes_total) / double(1ull << 30),
                                         rate / 1e9, eta);
    // The bar takes what is left, between 10 and 30 columns; then the tensor name if it fits.
    const int fixed = static_cast<int>(head.size() + tail.size()) + 2;
    const int bar = std::clamp(width - fixed - 20, 10, 30);
    const int filled = static_cast<int>(frac * bar + 1e-9);
    std::string line = head + "[" + std::string(static_cast<size_t>(filled), '#') +
                       std::string(static_cast<size_t>(bar - filled), '.') + "]" + tail;
    const int room = width - static_cast<int>(line.size()) - 2;
    if (room >= 8 && !s.current.empty()) {
        std::string_view name = s.current;
        if (static_cast<int>(name.size()) > room) name = name.substr(name.size() - static_cast<size_t>(room - 3));
        line += "  ";
        if (name.size() < s.current.size()) line += "...";
        line += name;
    }
    if (static_cast<int>(line.size()) > width && width > 0) line.resize(static_cast<size_t>(width));
    return line;
}

ProgressPrinter::ProgressPrinter(ProgressMode mode, std::FILE* out)
    : mode_(mode == ProgressMode::AUTO ? resolve_progress_mode(mode, fileno(out)) : mode), out_(out) {}

ProgressPrinter::~ProgressPrinter() { finish(); }

int ProgressPrinter::width() const {
    winsize ws{};
    if (ioctl(fileno(out_), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col - 1;  // no wrap at the edge
    if (const char* c = std::getenv("COLUMNS")) {
        const int n = std::atoi(c);
        if (n > 20) return n - 1;
    }
    return 99;
}

void ProgressPrinter::start(size_t n_tensors, uint64_t input_bytes) {
    s_ = {};
    s_.tensors_total = n_tensors;
    s_.bytes_total = input_bytes;
    t0_ = Clock::now();
    last_draw_ = {};
    draw(true);
}

void ProgressPrinter::tensor(size_t i, size_t n, const TensorReport& t) {
    if (mode_ == ProgressMode::LINES) {
        fmt::print(out_, "{}\n", tensor_line(i, n, t));
        return;
    }
    if (mode_ != ProgressMode::BAR) return;
    s_.tensors_done = i + 1;
    s_.tensors_total = n;
    s_.bytes_done += t.input_bytes;
    current_ = t.name;
    draw(i + 1 == n);
}

void ProgressPrinter::log(const std::string& line) {
    if (mode_ == ProgressMode::BAR && bar_open_) {
        fmt::print(out_, "\r\x1b[K{}\n", line);
        bar_open_ = false;
        draw(true);
    } else {
        fmt::print(out_, "{}\n", line);
    }
}

void ProgressPrinter::draw(bool force) {
    if (mode_ != ProgressMode::BAR || s_.tensors_total == 0) return;
    const auto now = Clock::now();
    if (!force && now - last_draw_ < kRedrawEvery) return;
    last_draw_ = now;
    s_.elapsed_s = std::chrono::duration<double>(now - t0_).count();
    s_.current = current_;
    fmt::print(out_, "\r{}\x1b[K", bar_line(s_, width()));
    std::fflush(out_);
    bar_open_ = true;
}

void ProgressPrinter::finish() {
    if (!bar_open_) return;
    fmt::print(out_, "\n");
    std::fflush(out_);
    bar_open_ = false;
}

}  // namespace microscale::pipeline
