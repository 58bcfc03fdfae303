// HF checkpoint directories: single file, sharded with index, every inconsistency between the
// index and the shards, and the shard planner / sharded writer.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "io/io_test_util.h"

namespace microscale::io {
namespace {

using testing::expect_error;
using testing::pattern_bytes;
using testing::TempDir;
using testing::write_bytes;

// 5 tensors of 40, 40, 100, 8, 0 bytes.
std::vector<TensorDecl> five() {
    return {{"model.embed.weight", DType::F32, {10}},
            {"model.layers.0.w", DType::BF16, {4, 5}},
            {"model.layers.1.w", DType::U8, {100}},
            {"model.norm.weight", DType::F64, {1}},
            {"empty", DType::F16, {0, 3}}};
}

void write_checkpoint(const std::filesystem::path& dir, uint64_t max_shard) {
    ShardedWriter w(dir, five(), {{"format", "pt"}}, max_shard);
    uint32_t seed = 0;
    for (const auto& d : five()) w.write(d.name, pattern_bytes(tensor_nbytes(d, "t"), seed++));
    w.commit();
}

void write_raw_file(const std::filesystem::path& path, const std::vector<std::pair<std::string, int64_t>>& u8s) {
    std::vector<TensorDecl> d;
    for (const auto& [n, len] : u8s) d.push_back({n, DType::U8, {len}});
    SafetensorsWriter w(path, d);
    for (const auto& [n, len] : u8s) w.write(n, pattern_bytes(static_cast<size_t>(len), 9));
    w.commit();
}

void write_index(const std::filesystem::path& dir, const nlohmann::json& weight_map) {
    nlohmann::json idx = {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}};
    write_bytes(dir / kIndexFileName, idx.dump());
}

TEST(SafetensorsShards, PlanFollowsHfGreedyRule) {
    const std::vector<uint64_t> sizes = {40, 40, 100, 8, 0};
    auto single = plan_shards(sizes);
    EXPECT_EQ(single.files, std::vector<std::string>{"model.safetensors"});
    EXPECT_EQ(single.total_bytes, 188u);

    auto p = plan_shards(sizes, 90);
    // 40+40 fits 90; 100 is over the cap and sits alone; 8 and 0 share the last shard.
    EXPECT_EQ(p.shard_of, (std::vector<size_t>{0, 0, 1, 2, 2}));
    EXPECT_EQ(p.shard_bytes, (std::vector<uint64_t>{80, 100, 8}));
    EXPECT_EQ(p.files, (std::vector<std::string>{"model-00001-of-00003.safetensors",
                                                 "model-00002-of-00003.safetensors",
                                                 "model-00003-of-00003.safetensors"}));
    // Exactly at the cap still fits.
    EXPECT_EQ(plan_shards(std::vector<uint64_t>{50, 50, 1}, 100).shard_of, (std::vector<size_t>{0, 0, 1}));
    EXPECT_EQ(plan_shards(std::vector<uint64_t>{}, 100).files.size(), 1u);
    EXPECT_EQ(plan_shards(std::vector<uint64_t>{UINT64_MAX - 1, 5}, kDefaultMaxShardBytes).shard_of,
              (std::vector<size_t>{0, 1}));
}

TEST(SafetensorsCheckpoint, SingleFile) {
    TempDir dir;
    write_checkpoint(dir.path(), kDefaultMaxShardBytes);
    EXPECT_EQ(dir.list(), std::vector<std::string>{"model.safetensors"});
    auto c = Checkpoint::open(dir.path());
    EXPECT_FALSE(c.sharded());
    EXPECT_EQ(c.shard_count(), 1u);
    ASSERT_EQ(c.tensors().size(), 5u);
    EXPECT_EQ(c.at("model.layers.0.w").info->dtype, DType::BF16);
    EXPECT_EQ(c.find("nope"), nullptr);
    expect_error([&] { c.at("nope"); }, {dir.path().string(), "'nope'"});
}

TEST(SafetensorsCheckpoint, ShardedRoundTrip) {
    TempDir dir;
    write_checkpoint(dir.path(), 90);
    EXPECT_EQ(dir.list(), (std::vector<std::string>{"model-00001-of-00003.safetensors",
                                                    "model-00002-of-00003.safetensors",
                                                    "model-00003-of-00003.safetensors",
                                                    "model.safetensors.index.json"}));
    std::ifstream in(dir / kIndexFileName);
    const auto idx = nlohmann::json::parse(in);
    EXPECT_EQ(idx["metadata"]["total_size"], 188);
    EXPECT_EQ(idx["weight_map"]["model.layers.1.w"], "model-00002-of-00003.safetensors");
    EXPECT_EQ(idx["weight_map"].size(), 5u);

    auto c = Checkpoint::open(dir.path());
    EXPECT_TRUE(c.sharded());
    EXPECT_EQ(c.shard_count(), 3u);
    ASSERT_EQ(c.tensors().size(), 5u);
    uint32_t seed = 0;
    for (const auto& d : five()) {  // stream order == declaration order here
        const TensorRef& t = c.at(d.name);
        EXPECT_EQ(t.info->shape, d.shape);
        const auto want = pattern_bytes(tensor_nbytes(d, "t"), seed++);
        const auto got = c.bytes(t);
        ASSERT_EQ(got.size(), want.size());
        EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin())) << d.name;
    }
    EXPECT_EQ(c.at("model.norm.weight").file->path().filename(), "model-00003-of-00003.safetensors");
    EXPECT_EQ(c.shard(0).metadata().at("format"), "pt");
}

TEST(SafetensorsCheckpoint, ShardedWriterAbandonAndErrors) {
    TempDir dir;
    {
        ShardedWriter w(dir.path(), five(), {}, 90);
        w.write("model.embed.weight", pattern_bytes(40, 0));
        w.write("model.layers.0.w", pattern_bytes(40, 1));
        w.write("model.layers.1.w", pattern_bytes(100, 2));  // two shards in flight
    }
    EXPECT_TRUE(dir.list().empty());
    {
        ShardedWriter w(dir.path(), five(), {}, 90);
        w.write("model.embed.weight", pattern_bytes(40, 0));
        expect_error([&] { w.write("model.layers.1.w", pattern_bytes(100, 2)); },
                     {"'model.layers.1.w'", "out of order"});
        EXPECT_TRUE(dir.list().empty());
        expect_error([&] { w.commit(); }, {dir.path().string(), "already failed"});
    }
    {
        ShardedWriter w(dir.path(), five(), {}, 90);
        w.write("model.embed.weight", pattern_bytes(40, 0));
        w.write("model.layers.0.w", pattern_bytes(40, 1));
        w.write("model.layers.1.w", pattern_bytes(100, 2));
        w.write("model.norm.weight", pattern_bytes(8, 3));
        // "empty" (zero bytes) still has to be written.
        expect_error([&] { w.commit(); }, {"'empty'"});
        EXPECT_TRUE(dir.list().empty());
    }
    expect_error([&] { ShardedWriter(dir.path(), {{"a", DType::U8, {1}}, {"a", DType::U8, {1}}}); },
                 {"'a'", "declared twice"});
    {
        ShardedWriter w(dir.path(), {});
        w.commit();
    }
    EXPECT_EQ(dir.list(), std::vector<std::string>{"model.safetensors"});
}

TEST(SafetensorsCheckpoint, NoWeights) {
    TempDir dir;
    expect_error([&] { Checkpoint::open(dir.path()); }, {dir.path().string(), "no model.safetensors"});
    expect_error([&] { Checkpoint::open(dir / "missing"); }, {"missing", "not a checkpoint directory"});
}

TEST(SafetensorsCheckpoint, IndexNamesMissingShard) {
    TempDir dir;
    write_raw_file(dir / "s1.safetensors", {{"a", 2}});
    write_index(dir.path(), {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}});
    expect_error([&] { Checkpoint::open(dir.path()); },
                 {kIndexFileName, "s2.safetensors", "'b'", "does not exist"});
}

TEST(SafetensorsCheckpoint, TensorListedButAbsentFromShard) {
    TempDir dir;
    write_raw_file(dir / "s1.safetensors", {{"a", 2}});
    write_index(dir.path(), {{"a", "s1.safetensors"}, {"ghost", "s1.safetensors"}});
    expect_error([&] { Checkpoint::open(dir.path()); }, {kIndexFileName, "'ghost'", "s1.safetensors", "no such tensor"});
}

TEST(SafetensorsCheckpoint, TensorInTwoShards) {
    TempDir dir;
    write_raw_file(dir / "s1.safetensors", {{"a", 2}, {"dup", 1}});
    write_raw_file(dir / "s2.safetensors", {{"b", 2}, {"dup", 1}});
    write_index(dir.path(), {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}, {"dup", "s1.safetensors"}});
    expect_error([&] { Checkpoint::open(dir.path()); }, {"'dup'", "two shards", "s1.safetensors", "s2.safetensors"});
}

TEST(SafetensorsCheckpoint, TensorInShardButNotInIndexOrInWrongShard) {
    TempDir dir;
    write_raw_file(dir / "s1.safetensors", {{"a", 2}, {"extra", 1}});
    write_raw_file(dir / "s2.safetensors", {{"b", 2}});
    write_index(dir.path(), {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}});
    expect_error([&] { Checkpoint::open(dir.path()); }, {"'extra'", "s1.safetensors", "not listed"});
    write_index(dir.path(), {{"a", "s1.safetensors"}, {"b", "s1.safetensors"}, {"extra", "s2.safetensors"}});
    expect_error([&] { Checkpoint::open(dir.path()); }, {"'extra'", "listed in s2.safetensors", "found in s1"});
}

TEST(SafetensorsCheckpoint, MalformedIndex) {
    TempDir dir;
    write_raw_file(dir / "s1.safetensors", {{"a", 2}});
    const auto idx = (dir / kIndexFileName).string();
    auto expect_bad = [&](const std::string& text, std::initializer_list<std::string> parts) {
        write_bytes(dir / kIndexFileName, text);
        expect_error([&] { Checkpoint::open(dir.path()); }, {idx});
        expect_error([&] { Checkpoint::open(dir.path()); }, parts);
    };
    expect_bad("{\"weight_map\": {\"a\": ", {"not valid JSON"});
    expect_bad("[]", {"JSON object"});
    expect_bad("{\"metadata\": {}}", {"weight_map"});
    expect_bad("{\"weight_map\": []}", {"weight_map"});
    expect_bad("{\"weight_map\": {}}", {"empty"});
    expect_bad("{\"weight_map\": {\"a\": 3}}", {"'a'", "not a string"});
    expect_bad("{\"weight_map\": {\"a\": \"s1.safetensors\", \"a\": \"s1.safetensors\"}}", {"duplicate key 'a'"});
    expect_bad("{\"weight_map\": {\"a\": \"../s1.safetensors\"}}", {"'a'", "plain file name"});
    expect_bad("{\"weight_map\": {\"a\": \"/etc/passwd\"}}", {"'a'", "plain file name"});
    // A bad shard surfaces with the shard's own path.
    write_bytes(dir / "s2.safetensors", "garbage!garbage");
    write_index(dir.path(), {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}});
    expect_error([&] { Checkpoint::open(dir.path()); }, {"s2.safetensors", "header length"});
}

}  // namespace
}  // namespace microscale::io
