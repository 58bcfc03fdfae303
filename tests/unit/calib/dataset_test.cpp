// Calibration data loading: formats, deterministic sampling, and clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include "calib/dataset.h"
#include "microscale/error.h"

namespace fs = std::filesystem;
using namespace microscale;
using namespace microscale::calib;

namespace {
// A stand-in tokenizer: BOS (1) then one id per byte + 3.
std::vector<int32_t> bytes_encode(std::string_view s) {
    std::vector<int32_t> v{1};
    for (unsigned char c : s) v.push_back(int32_t(c) + 3);
    return v;
}
struct TempFile {
    fs::path path;
    TempFile(const std::string& ext, const std::string& content) {
        path = fs::temp_directory_path() / ("ms-calib-" + std::to_string(getpid()) + "-" + std::to_string(std::random_device{}()) + ext);
        std::ofstream(path, std::ios::binary) << content;
    }
    ~TempFile() { fs::remove(path); }
};
CalibOptions opts(const fs::path& p, int64_t n, int64_t len, uint64_t seed = 0) {
    CalibOptions o;
    o.file = p;
    o.num_samples = n;
    o.seq_len = len;
    o.seed = seed;
    return o;
}
std::string expect_error(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected microscale::Error";
    return "";
}
}  // namespace

TEST(CalibDataset, SplitDocumentsOnBlankLines) {
    EXPECT_EQ(split_documents("a\nb\n\n  \nc\r\n\r\nd"), (std::vector<std::string>{"a\nb", "c", "d"}));
    EXPECT_TRUE(split_documents("\n\n  \n").empty());
}

TEST(CalibDataset, TextPacksWindowsDeterministically) {
    std::string text;
    for (int i = 0; i < 50; ++i) text += "document number " + std::to_string(i) + " with some words\n\n";
    TempFile f(".txt", text);
    const CalibSet a = load_calibration(opts(f.path, 8, 32, 7), bytes_encode, 0, 1);
    const CalibSet b = load_calibration(opts(f.path, 8, 32, 7), bytes_encode, 0, 1);
    const CalibSet c = load_calibration(opts(f.path, 8, 32, 8), bytes_encode, 0, 1);
    ASSERT_EQ(a.samples.size(), 8u);
    for (const auto& s : a.samples) EXPECT_EQ(s.size(), 32u);
    EXPECT_EQ(a.samples, b.samples) << "same seed, same samples";
    EXPECT_NE(a.samples, c.samples) << "another seed shuffles differently";
    EXPECT_EQ(a.documents, 50);
    EXPECT_EQ(a.samples[0][0], 1) << "the stream starts with a document's BOS";
    EXPECT_NE(a.summary().find("8 samples x 32 tokens"), std::string::npos) << a.summary();
    EXPECT_EQ(a.content_hash, b.content_hash);
}

TEST(CalibDataset, JsonlTextAndMessages) {
    TempFile f(".jsonl", "{\"text\": \"hello world, a calibration line\"}\n\n"
                         "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"hello there\"}]}\n");
    const CalibSet s = load_calibration(opts(f.path, 1, 16), bytes_encode, 0, 1);
    EXPECT_EQ(s.format, "jsonl");
    EXPECT_EQ(s.documents, 2);
    TempFile bad(".jsonl", "{\"text\": \"ok\"}\n{\"txt\": 3}\n");
    EXPECT_NE(expect_error([&] { load_calibration(opts(bad.path, 1, 2), bytes_encode, 0, 1); }).find(":2:"), std::string::npos);
    TempFile broken(".jsonl", "{\"text\": \"ok\"\n");
    EXPECT_NE(expect_error([&] { load_calibration(opts(broken.path, 1, 2), bytes_encode, 0, 1); }).find("invalid JSON"),
              std::string::npos);
}

TEST(CalibDataset, PreTokenizedIds) {
    TempFile f(".ids.txt", "5 6 7 8 9\n10 11 12\n");
    const CalibSet s = load_calibration(opts(f.path, 2, 4), bytes_encode, 100, 1);
    EXPECT_EQ(s.format, "ids");
    EXPECT_EQ(s.tokens, 10);  // BOS added to each line
    TempFile bad(".ids", "5 6 x\n");
    EXPECT_NE(expect_error([&] { load_calibration(opts(bad.path, 1, 2), bytes_encode, 100, 1); }).find(":1: 'x'"),
              std::string::npos);
    TempFile big(".ids", "5 600\n");
    EXPECT_NE(expect_error([&] { load_calibration(opts(big.path, 1, 2), bytes_encode, 100, 1); }).find("vocabulary"),
              std::string::npos);
}

TEST(CalibDataset, EmptyOrShortDataIsAClearError) {
    TempFile empty(".txt", "\n\n");
    EXPECT_NE(expect_error([&] { load_calibration(opts(empty.path, 4, 16), bytes_encode, 0, 1); }).find("no documents"),
              std::string::npos);
    TempFile tiny(".txt", "ab\n");
    EXPECT_NE(expect_error([&] { load_calibration(opts(tiny.path, 4, 16), bytes_encode, 0, 1); }).find("fewer than one sample"),
              std::string::npos);
    TempFile some(".txt", std::string(40, 'a'));
    const CalibSet s = load_calibration(opts(some.path, 4, 16), bytes_encode, 0, 1);
    EXPECT_EQ(s.samples.size(), 2u);
    EXPECT_EQ(s.warnings.size(), 1u);
    EXPECT_NE(expect_error([&] { load_calibration(opts("/nonexistent/calib.txt", 1, 4), bytes_encode, 0, 1); })
                  .find("/nonexistent/calib.txt"),
              std::string::npos);
}
