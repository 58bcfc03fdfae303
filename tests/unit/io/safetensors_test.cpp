// Reader side: every malformed header the parser must reject, each error naming the file (and the
// tensor where there is one); valid corner cases (padding, order, zero-size, empty file).
#include <gtest/gtest.h>

#include <string>

#include "io/io_test_util.h"
#include "io/safetensors.h"

namespace microscale::io {
namespace {

using testing::expect_error;
using testing::raw_safetensors;
using testing::TempDir;
using testing::write_bytes;

// Writes `bytes` as bad.safetensors, opens it, expects an Error naming the path and `parts`.
void expect_open_error(const std::string& bytes, std::initializer_list<std::string> parts) {
    TempDir dir;
    const auto path = dir / "bad.safetensors";
    write_bytes(path, bytes);
    expect_error([&] { SafetensorsFile::open(path); }, {path.string()});
    expect_error([&] { SafetensorsFile::open(path); }, parts);
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":" + offsets + "}";
}

TEST(SafetensorsHeader, ValidTwoTensorsWithMetadataAndPadding) {
    const std::string h = "{\"__metadata__\":{\"format\":\"pt\"}," + entry("b", "F32", "[2]", "[8,16]") +
                          "," + entry("a", "F16", "[2,2]", "[0,8]") + "}     ";
    TempDir dir;
    write_bytes(dir / "ok.safetensors", raw_safetensors(h, 16));
    auto f = SafetensorsFile::open(dir / "ok.safetensors");
    ASSERT_EQ(f.tensors().size(), 2u);
    // Data order, not JSON order.
    EXPECT_EQ(f.tensors()[0].name, "a");
    EXPECT_EQ(f.tensors()[1].name, "b");
    EXPECT_EQ(f.tensors()[0].dtype, DType::F16);
    EXPECT_EQ(f.tensors()[0].shape, (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(f.tensors()[0].numel(), 4u);
    EXPECT_EQ(f.metadata().at("format"), "pt");
    ASSERT_NE(f.find("b"), nullptr);
    EXPECT_EQ(f.find("zz"), nullptr);
    auto b = f.bytes(*f.find("b"));
    ASSERT_EQ(b.size(), 8u);
    EXPECT_EQ(b[0], static_cast<uint8_t>(8 * 7 + 1));  // raw_safetensors' data pattern, byte 8
    f.prefetch(*f.find("a"));
    f.release(*f.find("a"));
    EXPECT_EQ(f.bytes(*f.find("a"))[1], static_cast<uint8_t>(1 * 7 + 1));  // re-faults fine
}

TEST(SafetensorsHeader, EmptyHeaderAndZeroSizeTensors) {
    auto h = parse_safetensors_header(
        reinterpret_cast<const uint8_t*>(raw_safetensors("{}", 0).data()), 10, "e.safetensors");
    EXPECT_TRUE(h.tensors.empty());
    const std::string text = "{" + entry("z1", "BF16", "[0,5]", "[0,0]") + "," +
                             entry("x", "U8", "[3]", "[0,3]") + "," +
                             entry("z0", "I64", "[7,0]", "[3,3]") + "," + entry("s", "U8", "[]", "[3,4]") + "}";
    const std::string file = raw_safetensors(text, 4);
    auto h2 = parse_safetensors_header(reinterpret_cast<const uint8_t*>(file.data()), file.size(), "z");
    ASSERT_EQ(h2.tensors.size(), 4u);
    EXPECT_EQ(h2.tensors[0].name, "z1");
    EXPECT_EQ(h2.tensors[1].name, "x");
    EXPECT_EQ(h2.tensors[2].name, "z0");
    EXPECT_EQ(h2.tensors[3].name, "s");  // scalar: shape [] holds one element
    EXPECT_EQ(h2.tensors[3].numel(), 1u);
}

TEST(SafetensorsHeader, TooShortFile) {
    expect_open_error("abc", {"too short"});
    expect_open_error("", {"too short"});
}

TEST(SafetensorsHeader, HeaderLengthOverCap) {
    expect_open_error(raw_safetensors("{}", 0, 200ull << 20), {"cap"});
}

TEST(SafetensorsHeader, HeaderLengthPastEndOfFile) {
    expect_open_error(raw_safetensors("{}", 0, 3), {"past the end"});
    expect_open_error(raw_safetensors("{}", 0, UINT64_MAX - 1), {"cap"});
}

TEST(SafetensorsHeader, InvalidJson) {
    expect_open_error(raw_safetensors("{\"a\":{\"dtype\":", 0), {"not valid JSON"});
    expect_open_error(raw_safetensors("", 0), {"not valid JSON"});
    // NUL padding is not JSON whitespace.
    expect_open_error(raw_safetensors(std::string("{}\0\0", 4), 0), {"NUL byte at offset 10"});
    expect_open_error(raw_safetensors(std::string("{}\0junk", 6), 0), {"NUL byte"});
}

TEST(SafetensorsHeader, TopLevelNotObject) {
    expect_open_error(raw_safetensors("[1,2]", 0), {"JSON object"});
    expect_open_error(raw_safetensors("\"x\"", 0), {"JSON object"});
}

TEST(SafetensorsHeader, DuplicateTensor) {
    const std::string h = "{" + entry("w", "U8", "[1]", "[0,1]") + "," + entry("w", "U8", "[1]", "[1,2]") + "}";
    expect_open_error(raw_safetensors(h, 2), {"'w'", "duplicate"});
}

TEST(SafetensorsHeader, DuplicateField) {
    const std::string h = "{\"w\":{\"dtype\":\"U8\",\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    expect_open_error(raw_safetensors(h, 1), {"'w'", "duplicate field 'dtype'"});
}

TEST(SafetensorsHeader, MissingFields) {
    expect_open_error(raw_safetensors("{\"w\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1), {"'w'", "dtype"});
    expect_open_error(raw_safetensors("{\"w\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1), {"'w'", "shape"});
    expect_open_error(raw_safetensors("{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1), {"'w'", "data_offsets"});
}

TEST(SafetensorsHeader, UnknownDtypeAndField) {
    expect_open_error(raw_safetensors("{" + entry("w", "F4", "[1]", "[0,1]") + "}", 1), {"'w'", "unknown dtype 'F4'"});
    expect_open_error(raw_safetensors("{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,1]}}", 1), {"'w'", "dtype"});
    expect_open_error(
        raw_safetensors("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}", 1),
        {"'w'", "unknown field 'x'"});
}

TEST(SafetensorsHeader, BadShape) {
    expect_open_error(raw_safetensors("{" + entry("w", "U8", "[-1]", "[0,1]") + "}", 1), {"'w'", "non-negative"});
    expect_open_error(raw_safetensors("{" + entry("w", "U8", "[1.0]", "[0,1]") + "}", 1), {"'w'", "non-negative"});
    expect_open_error(raw_safetensors("{" + entry("w", "U8", "[\"1\"]", "[0,1]") + "}", 1), {"'w'", "non-negative"});
    expect_open_error(raw_safetensors("{" + entry("w", "U8", "7", "[0,1]") + "}", 1), {"'w'", "shape must be an array"});
    expect_open_error(raw_safetensors("{" + entry("w", "U8", "[[1]]", "[0,1]") + "}", 1), {"'w'", "too deep"});
    expect_open_error(raw_safetensors("{" + entry("w", "U8", "[18446744073709551615]", "[0,1]") + "}", 1),
                      {"'w'", "int64"});
}

TEST(SafetensorsHeader, BadOffsets) {
    expect_open_error(raw_safetensors("{" + entry("w", "U8", "[1]", "[0]") + "}", 1), {"'w'", "[begin, end]"});
    expect_open_error(raw_safetensors("{" + entry("w", "U8", "[1]", "[0,1,2]") + "}", 1), {"'w'", "[begin, end]"});
    expect_open_error(raw_safetensors("{" + entry("w", "U8", "[1]", "[0,-1]") + "}", 1), {"'w'", "non-negative"});
    expect_open_error(raw_safetensors("{" + entry("w", "U8", "[0]", "[1,0]") + "}", 1), {"'w'", "begin > end"});
    expect_open_error(raw_safetensors("{" + entry("w", "U8", "[4]", "[0,4]") + "}", 2), {"'w'", "past the data section"});
}

TEST(SafetensorsHeader, SizeMismatchAndOverflow) {
    expect_open_error(raw_safetensors("{" + entry("w", "F32", "[2]", "[0,4]") + "}", 4),
                      {"'w'", "shape [2]", "F32", "needs 8"});
    expect_open_error(
        raw_safetensors("{" + entry("w", "F32", "[4611686018427387904,4]", "[0,16]") + "}", 16),
        {"'w'", "overflow"});
    expect_open_error(
        raw_safetensors("{" + entry("w", "F64", "[2305843009213693952]", "[0,16]") + "}", 16),
        {"'w'", "overflow"});
    // An empty tensor whose other dims multiply past int64 is rejected too.
    expect_open_error(
        raw_safetensors("{" + entry("w", "U8", "[0,4294967296,4294967296]", "[0,0]") + "}", 0),
        {"'w'", "overflow"});
}

TEST(SafetensorsHeader, OverlapHoleAndUncoveredTail) {
    expect_open_error(
        raw_safetensors("{" + entry("a", "U8", "[4]", "[0,4]") + "," + entry("b", "U8", "[4]", "[2,6]") + "}", 6),
        {"'b'", "overlap", "'a'"});
    expect_open_error(
        raw_safetensors("{" + entry("a", "U8", "[2]", "[0,2]") + "," + entry("b", "U8", "[2]", "[3,5]") + "}", 5),
        {"'b'", "hole"});
    expect_open_error(
        raw_safetensors("{" + entry("a", "U8", "[2]", "[1,3]") + "}", 3), {"'a'", "hole"});
    expect_open_error(raw_safetensors("{" + entry("a", "U8", "[2]", "[0,2]") + "}", 5), {"cover only 2"});
    expect_open_error(raw_safetensors("{}", 1), {"cover only 0"});
    // Same range twice.
    expect_open_error(
        raw_safetensors("{" + entry("a", "U8", "[2]", "[0,2]") + "," + entry("b", "U8", "[2]", "[0,2]") + "}", 2),
        {"overlap"});
}

TEST(SafetensorsHeader, BadMetadataAndEntries) {
    expect_open_error(raw_safetensors("{\"__metadata__\":{\"k\":1}}", 0), {"__metadata__", "'k'"});
    expect_open_error(raw_safetensors("{\"__metadata__\":[]}", 0), {"__metadata__"});
    expect_open_error(raw_safetensors("{\"__metadata__\":{\"k\":{\"x\":1}}}", 0), {"__metadata__"});
    expect_open_error(raw_safetensors("{\"w\":[1,2]}", 0), {"'w'", "JSON object"});
    expect_open_error(raw_safetensors("{\"w\":3}", 0), {"'w'", "JSON object"});
}

TEST(SafetensorsHeader, InvalidUtf8Name) {
    expect_open_error(raw_safetensors("{" + entry("w\xff", "U8", "[1]", "[0,1]") + "}", 1), {"not valid JSON"});
}

TEST(SafetensorsHeader, LongNamesAreTruncatedInMessages) {
    const std::string name(5000, 'n');
    try {
        const std::string f = raw_safetensors("{" + entry(name, "F4", "[1]", "[0,1]") + "}", 1);
        parse_safetensors_header(reinterpret_cast<const uint8_t*>(f.data()), f.size(), "long.safetensors");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_LT(std::string(e.what()).size(), 500u);
        EXPECT_NE(std::string(e.what()).find("5000 bytes"), std::string::npos);
    }
}

TEST(SafetensorsFileOpen, MissingFileAndDirectory) {
    TempDir dir;
    expect_error([&] { SafetensorsFile::open(dir / "nope.safetensors"); }, {"nope.safetensors", "cannot open"});
    expect_error([&] { SafetensorsFile::open(dir.path()); }, {dir.path().string()});
}

TEST(SafetensorsFileOpen, BytesRejectsForeignInfo) {
    TempDir dir;
    write_bytes(dir / "a.safetensors", raw_safetensors("{" + entry("a", "U8", "[2]", "[0,2]") + "}", 2));
    auto f = SafetensorsFile::open(dir / "a.safetensors");
    TensorInfo other{"x", DType::U8, {100}, 0, 100};
    expect_error([&] { f.bytes(other); }, {"a.safetensors", "'x'"});
    SafetensorsFile moved = std::move(f);
    EXPECT_EQ(moved.bytes(*moved.find("a")).size(), 2u);
}

}  // namespace
}  // namespace microscale::io
