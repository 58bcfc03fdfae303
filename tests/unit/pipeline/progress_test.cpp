// Progress output: the aligned per-tensor lines off a terminal, one redrawn bar line on one, the
// --progress names, and a bar that always fits the terminal width.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "pipeline/progress.h"

using namespace microscale::pipeline;

namespace {

TensorReport report(std::string name, uint64_t bytes) {
    TensorReport t;
    t.name = std::move(name);
    t.input_dtype = "BF16";
    t.format = "w4a16_nvfp4";
    t.algorithm = "max";
    t.input_bytes = bytes;
    t.output_bytes = bytes / 4;
    t.rel_mse = 7e-3;
    t.seconds = 0.01;
    return t;
}

std::string contents(std::FILE* f) {
    std::fflush(f);
    std::string s(static_cast<size_t>(std::ftell(f)), '\0');
    std::rewind(f);
    s.resize(std::fread(s.data(), 1, s.size(), f));
    return s;
}

size_t count(const std::string& s, char c) { return static_cast<size_t>(std::count(s.begin(), s.end(), c)); }

}  // namespace

TEST(Progress, ModeNames) {
    EXPECT_EQ(progress_mode_from_name("auto"), ProgressMode::AUTO);
    EXPECT_EQ(progress_mode_from_name("bar"), ProgressMode::BAR);
    EXPECT_EQ(progress_mode_from_name("lines"), ProgressMode::LINES);
    EXPECT_EQ(progress_mode_from_name("none"), ProgressMode::NONE);
    EXPECT_FALSE(progress_mode_from_name("fancy"));
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    EXPECT_EQ(resolve_progress_mode(ProgressMode::AUTO, p[1]), ProgressMode::LINES) << "a pipe is not a terminal";
    EXPECT_EQ(resolve_progress_mode(ProgressMode::BAR, p[1]), ProgressMode::BAR) << "forced";
    close(p[0]);
    close(p[1]);
}

TEST(Progress, LinesAreTheAlignedPerTensorLines) {
    std::FILE* f = std::tmpfile();
    {
        ProgressPrinter p(ProgressMode::LINES, f);
        p.start(2, 300);
        p.tensor(0, 2, report("a.weight", 100));
        p.log("note");
        p.tensor(1, 2, report("model.layers.0.mlp.down_proj.weight", 200));
        p.finish();
    }
    const std::string s = contents(f);
    std::fclose(f);
    EXPECT_EQ(s, tensor_line(0, 2, report("a.weight", 100)) + "\nnote\n" +
                     tensor_line(1, 2, report("model.layers.0.mlp.down_proj.weight", 200)) + "\n");
    EXPECT_EQ(count(s, '\r'), 0u);
    // Aligned: the columns after the name start at the same place whatever the name length.
    const std::string a = tensor_line(0, 2, report("a.weight", 100)), b = tensor_line(1, 2, report("bbbbbbbbbbbb.weight", 100));
    EXPECT_EQ(a.find("BF16"), b.find("BF16"));
    EXPECT_EQ(a.size(), b.size());
}

TEST(Progress, BarIsOneRedrawnLine) {
    std::FILE* f = std::tmpfile();
    {
        ProgressPrinter p(ProgressMode::BAR, f);
        p.start(3, 3ull << 30);
        for (size_t i = 0; i < 3; ++i) p.tensor(i, 3, report("t" + std::to_string(i), 1ull << 30));
        p.finish();
    }
    const std::string s = contents(f);
    std::fclose(f);
    EXPECT_EQ(count(s, '\n'), 1u) << "one line, ended once: " << s;
    EXPECT_GE(count(s, '\r'), 2u) << "at least the first and the final draw";
    const std::string last = s.substr(s.rfind('\r') + 1);
    EXPECT_NE(last.find("[   3/   3]"), std::string::npos) << last;
    EXPECT_NE(last.find("100%"), std::string::npos) << last;
    EXPECT_NE(last.find("3.00/3.00 GiB"), std::string::npos) << last;
    EXPECT_NE(last.find("GB/s"), std::string::npos) << last;
}

TEST(Progress, NoneIsSilentButKeepsMessages) {
    std::FILE* f = std::tmpfile();
    {
        ProgressPrinter p(ProgressMode::NONE, f);
        p.start(1, 10);
        p.tensor(0, 1, report("t", 10));
        p.log("calibration done");
    }
    EXPECT_EQ(contents(f), "calibration done\n");
    std::fclose(f);
}

TEST(Progress, BarFitsTheWidthAndShowsTheEta) {
    ProgressState s;
    s.tensors_done = 12;
    s.tensors_total = 170;
    s.bytes_done = 1ull << 30;
    s.bytes_total = 2ull << 30;
    s.elapsed_s = 1.0;
    s.current = "model.layers.23.mlp.down_proj.weight";
    for (int w : {40, 60, 80, 99, 200}) {
        const std::string l = bar_line(s, w);
        EXPECT_LE(static_cast<int>(l.size()), w) << l;
        EXPECT_EQ(l.find('\n'), std::string::npos);
        EXPECT_EQ(l.find('\r'), std::string::npos);
    }
    const std::string l = bar_line(s, 200);
    EXPECT_NE(l.find("[  12/ 170]"), std::string::npos) << l;
    EXPECT_NE(l.find(" 50%"), std::string::npos) << l;
    EXPECT_NE(l.find("1.00/2.00 GiB"), std::string::npos) << l;
    EXPECT_NE(l.find("1.07 GB/s"), std::string::npos) << l;  // 2^30 bytes in 1 s
    EXPECT_NE(l.find("ETA 1.0 s"), std::string::npos) << l;
    EXPECT_NE(l.find("down_proj"), std::string::npos) << l;
}
