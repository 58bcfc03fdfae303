// Writer side: every dtype round-trips bit-identically, chunked appends, zero-size tensors, the
// error cases, and that nothing but the final file is ever left behind.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <iterator>

#include "io/io_test_util.h"
#include "io/safetensors.h"

namespace microscale::io {
namespace {

using testing::expect_error;
using testing::pattern_bytes;
using testing::TempDir;

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

TEST(SafetensorsWriter, EveryDtypeRoundTripsBitIdentically) {
    TempDir dir;
    std::vector<TensorDecl> decls;
    std::vector<std::vector<uint8_t>> data;
    for (size_t i = 0; i < static_cast<size_t>(DType::COUNT); ++i) {
        const DType t = static_cast<DType>(i);
        decls.push_back({"t." + std::string(dtype_name(t)), t, {3, static_cast<int64_t>(i + 1)}});
        data.push_back(pattern_bytes(dtype_size(t) * 3 * (i + 1), static_cast<uint32_t>(i)));
    }
    const Metadata meta = {{"format", "pt"}, {"quote\"and\\slash", "ünïcödé\n"}};
    const auto path = dir / "all.safetensors";
    {
        SafetensorsWriter w(path, decls, meta);
        for (size_t i = 0; i < decls.size(); ++i) w.write(decls[i].name, data[i]);
        w.commit();
    }
    EXPECT_EQ(dir.list(), std::vector<std::string>{"all.safetensors"});

    auto f = SafetensorsFile::open(path);
    EXPECT_EQ(f.metadata(), meta);
    ASSERT_EQ(f.tensors().size(), decls.size());
    for (size_t i = 0; i < decls.size(); ++i) {
        const TensorInfo& t = f.tensors()[i];  // data order == declaration order
        EXPECT_EQ(t.name, decls[i].name);
        EXPECT_EQ(t.dtype, decls[i].dtype);
        EXPECT_EQ(t.shape, decls[i].shape);
        auto b = f.bytes(t);
        ASSERT_EQ(b.size(), data[i].size()) << t.name;
        EXPECT_TRUE(std::equal(b.begin(), b.end(), data[i].begin())) << t.name;
        // Data section starts 8-aligned.
        EXPECT_EQ(reinterpret_cast<uintptr_t>(f.bytes(f.tensors()[0]).data()) % 8, 0u);
    }

    // Re-writing what was read gives the same file, byte for byte (deterministic header).
    const auto again = dir / "again.safetensors";
    {
        std::vector<TensorDecl> d2;
        for (const auto& t : f.tensors()) d2.push_back({t.name, t.dtype, t.shape});
        SafetensorsWriter w(again, d2, f.metadata());
        for (const auto& t : f.tensors()) w.write(t.name, f.bytes(t));
        w.commit();
    }
    EXPECT_EQ(slurp(path), slurp(again));
}

TEST(SafetensorsWriter, ChunkedAppendAndLargeTensor) {
    TempDir dir;
    // Bigger than the writer's internal buffer so both the buffered and direct paths run.
    const auto big = pattern_bytes(3u << 20, 7);
    const auto small = pattern_bytes(12, 8);
    const auto path = dir / "c.safetensors";
    {
        SafetensorsWriter w(path, {{"small", DType::F32, {3}}, {"big", DType::BF16, {3, 1 << 19}}});
        w.append("small", std::span(small).subspan(0, 5));
        w.append("small", std::span(small).subspan(5));
        size_t off = 0;
        for (size_t step : {1u, 100u, 2u << 20, 1u << 20}) {
            const size_t n = std::min(step, big.size() - off);
            w.append("big", std::span(big).subspan(off, n));
            off += n;
        }
        if (off < big.size()) w.append("big", std::span(big).subspan(off));
        EXPECT_TRUE(w.done());
        w.commit();
    }
    auto f = SafetensorsFile::open(path);
    auto b = f.bytes(*f.find("big"));
    ASSERT_EQ(b.size(), big.size());
    EXPECT_TRUE(std::equal(b.begin(), b.end(), big.begin()));
    auto s = f.bytes(*f.find("small"));
    EXPECT_TRUE(std::equal(s.begin(), s.end(), small.begin()));
}

TEST(SafetensorsWriter, ZeroSizeTensorsAndEmptyFile) {
    TempDir dir;
    const auto one = pattern_bytes(2, 1);
    {
        SafetensorsWriter w(dir / "z.safetensors",
                            {{"e0", DType::F32, {0}}, {"x", DType::U8, {2}}, {"e1", DType::BF16, {4, 0, 3}},
                             {"scalar", DType::U8, {}}});
        w.write("e0", {});
        w.write("x", one);
        w.append("e1", {});  // an empty append completes an empty tensor
        w.write("scalar", std::span(one).subspan(0, 1));
        w.commit();
    }
    auto f = SafetensorsFile::open(dir / "z.safetensors");
    ASSERT_EQ(f.tensors().size(), 4u);
    EXPECT_EQ(f.tensors()[0].name, "e0");
    EXPECT_EQ(f.tensors()[2].name, "e1");
    EXPECT_EQ(f.bytes(*f.find("e1")).size(), 0u);
    EXPECT_EQ(f.find("e1")->shape, (std::vector<int64_t>{4, 0, 3}));
    {
        SafetensorsWriter w(dir / "empty.safetensors", {});
        w.commit();
    }
    EXPECT_TRUE(SafetensorsFile::open(dir / "empty.safetensors").tensors().empty());
}

TEST(SafetensorsWriter, AbandonedWriterLeavesNothing) {
    TempDir dir;
    {
        SafetensorsWriter w(dir / "a.safetensors", {{"x", DType::U8, {4}}, {"y", DType::U8, {4}}});
        const auto d = pattern_bytes(4, 1);
        w.write("x", d);
        // The temporary file exists while writing, next to the destination.
        auto names = dir.list();
        ASSERT_EQ(names.size(), 1u);
        EXPECT_EQ(names[0].rfind("a.safetensors.tmp-" + std::to_string(getpid()) + "-", 0), 0u) << names[0];
    }
    EXPECT_TRUE(dir.list().empty());
}

TEST(SafetensorsWriter, ExistingFileReplacedOnlyOnCommit) {
    TempDir dir;
    const auto path = dir / "m.safetensors";
    testing::write_bytes(path, "old contents");
    {
        SafetensorsWriter w(path, {{"x", DType::U8, {1}}});
        w.write("x", pattern_bytes(1, 3));
    }  // abandoned
    EXPECT_EQ(slurp(path), "old contents");
    {
        SafetensorsWriter w(path, {{"x", DType::U8, {1}}});
        w.write("x", pattern_bytes(1, 3));
        EXPECT_EQ(slurp(path), "old contents");
        w.commit();
    }
    EXPECT_EQ(SafetensorsFile::open(path).tensors().size(), 1u);
    EXPECT_EQ(dir.list(), std::vector<std::string>{"m.safetensors"});
}

TEST(SafetensorsWriter, Errors) {
    TempDir dir;
    const auto path = dir / "e.safetensors";
    const auto p = path.string();
    const std::vector<TensorDecl> decls = {{"a", DType::F32, {2}}, {"b", DType::U8, {3}}};
    const auto eight = pattern_bytes(8, 1), three = pattern_bytes(3, 2);

    auto fresh = [&] { return std::make_unique<SafetensorsWriter>(path, decls); };
    // Each misuse throws naming the file and tensor, and leaves no temporary behind.
    auto check = [&](const std::function<void(SafetensorsWriter&)>& misuse,
                     std::initializer_list<std::string> parts) {
        auto w = fresh();
        expect_error([&] { misuse(*w); }, parts);
        EXPECT_TRUE(dir.list().empty()) << "temporary file left after an error";
        expect_error([&] { w->write("a", eight); }, {p, "already failed"});
        expect_error([&] { w->commit(); }, {p, "already failed"});
    };
    check([&](auto& w) { w.write("a", three); }, {p, "'a'", "shape [2]", "F32", "8 bytes", "got 3"});
    check([&](auto& w) { w.write("b", three); }, {p, "'b'", "out of order", "'a'"});
    check([&](auto& w) { w.write("nope", eight); }, {p, "'nope'", "out of order"});
    check([&](auto& w) { w.append("a", three); w.write("b", three); }, {p, "'b'", "'a'", "incomplete"});
    check([&](auto& w) { w.append("a", three); w.write("a", eight); }, {p, "'a'", "partial append"});
    check([&](auto& w) { w.append("a", three); w.append("a", three); w.append("a", three); },
          {p, "'a'", "overruns"});
    check([&](auto& w) { w.write("a", eight); w.write("b", three); w.write("b", three); },
          {p, "'b'", "already written"});
    check([&](auto& w) { w.write("a", eight); w.commit(); }, {p, "'b'", "incomplete"});

    // Declaration errors are caught before any file is created.
    expect_error([&] { SafetensorsWriter(path, {{"a", DType::U8, {1}}, {"a", DType::U8, {1}}}); },
                 {p, "'a'", "declared twice"});
    expect_error([&] { SafetensorsWriter(path, {{"a", DType::U8, {-1}}}); }, {p, "'a'", "negative"});
    expect_error([&] { SafetensorsWriter(path, {{"a", DType::F64, {1ll << 40, 1ll << 40}}}); },
                 {p, "'a'", "overflow"});
    expect_error([&] { SafetensorsWriter(path, {{"__metadata__", DType::U8, {1}}}); }, {p, "reserved"});
    expect_error([&] { SafetensorsWriter(path, {{"", DType::U8, {1}}}); }, {p, "empty name"});
    expect_error([&] { SafetensorsWriter(path, {{"bad\xff", DType::U8, {1}}}); }, {p, "UTF-8"});
    expect_error([&] { SafetensorsWriter(path, {}, {{"k", "\xc3"}}); }, {p, "UTF-8"});
    expect_error([&] { SafetensorsWriter(dir / "no/such/dir/x.safetensors", {}); },
                 {"x.safetensors", "cannot create"});
    EXPECT_TRUE(dir.list().empty());

    // Use after commit.
    SafetensorsWriter w(path, {});
    w.commit();
    expect_error([&] { w.write("a", eight); }, {p, "after finish/commit"});
}

}  // namespace
}  // namespace microscale::io

namespace microscale::io {
namespace {

// DIRECT (O_DIRECT from aligned staging blocks, padded and truncated at the end) and BUFFERED
// write the same bytes: sizes around the 4 KiB alignment and the 8 MiB staging block, whole
// writes and chunked appends, zero-size tensors, and a total that is no multiple of anything.
TEST(SafetensorsWriter, DirectAndBufferedWriteTheSameBytes) {
    TempDir dir;
    const std::vector<size_t> sizes = {0, 1, 4095, 4096, 4097, (8u << 20) - 3, 8u << 20, (8u << 20) + 1, 3, (17u << 20) + 11, 0, 5};
    std::vector<TensorDecl> decls;
    std::vector<std::vector<uint8_t>> data;
    for (size_t i = 0; i < sizes.size(); ++i) {
        decls.push_back({"t" + std::to_string(i), DType::U8, {static_cast<int64_t>(sizes[i])}});
        data.push_back(testing::pattern_bytes(sizes[i], static_cast<uint32_t>(i + 1)));
    }
    const auto write = [&](const std::string& name, WriteMode mode) {
        SafetensorsWriter w(dir / name, decls, {{"format", "pt"}}, mode);
        for (size_t i = 0; i < decls.size(); ++i) {
            if (i % 3 == 2 && data[i].size() > 2) {  // chunked, unaligned pieces
                const size_t half = data[i].size() / 2 + 1;
                w.append(decls[i].name, std::span<const uint8_t>(data[i]).first(half));
                w.append(decls[i].name, std::span<const uint8_t>(data[i]).subspan(half));
            } else {
                w.write(decls[i].name, data[i]);
            }
        }
        w.commit();
    };
    write("buffered.safetensors", WriteMode::BUFFERED);
    write("direct.safetensors", WriteMode::DIRECT);
    const std::string a = slurp(dir / "buffered.safetensors"), b = slurp(dir / "direct.safetensors");
    EXPECT_EQ(a.size(), b.size()) << "the padding of the last direct block must be truncated";
    EXPECT_TRUE(a == b) << "direct and buffered files differ";
    EXPECT_EQ(dir.list(), (std::vector<std::string>{"buffered.safetensors", "direct.safetensors"}));
    // Say whether this filesystem took the O_DIRECT path at all (tmpfs on old kernels does not).
    TempFile probe(dir / "probe", WriteMode::DIRECT);
    if (!probe.direct()) std::cout << "note: O_DIRECT not supported under " << dir.path() << ", buffered fallback tested\n";
}

// A small file in DIRECT mode (less than one block) and an empty tensor list.
TEST(SafetensorsWriter, DirectSmallAndEmptyFiles) {
    TempDir dir;
    for (const auto& decls : {std::vector<TensorDecl>{}, std::vector<TensorDecl>{{"x", DType::F32, {3}}}}) {
        const std::vector<uint8_t> x = testing::pattern_bytes(12, 9);
        for (WriteMode m : {WriteMode::BUFFERED, WriteMode::DIRECT}) {
            SafetensorsWriter w(dir / (m == WriteMode::DIRECT ? "d" : "b"), decls, {}, m);
            if (!decls.empty()) w.write("x", x);
            w.commit();
        }
        EXPECT_EQ(slurp(dir / "d"), slurp(dir / "b"));
        auto f = SafetensorsFile::open(dir / "d");
        EXPECT_EQ(f.tensors().size(), decls.size());
    }
}

}  // namespace
}  // namespace microscale::io
