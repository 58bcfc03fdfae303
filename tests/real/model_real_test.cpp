// Model layouts of the real checkpoints in ../shared/assets (label `real`; skipped when absent).
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "io/checkpoint.h"
#include "model/layout.h"

namespace microscale::model {
namespace {

const std::filesystem::path kAssets = MICROSCALE_ASSETS_DIR;

ModelLayout describe(const std::filesystem::path& dir, const io::Checkpoint& c) {
    const auto cfg = dir / "config.json";
    return describe_model(load_config_json(cfg), c, cfg.string());
}

void expect_accounted_once(const ModelLayout& l, const io::Checkpoint& c) {
    std::multiset<std::string> seen(l.passthrough.begin(), l.passthrough.end());
    for (const auto& m : l.linears)
        if (!m.weight.empty()) seen.insert(m.weight);
    std::multiset<std::string> disk;
    for (const auto& t : c.tensors()) disk.insert(t.info->name);
    EXPECT_EQ(seen, disk);
}

const LinearModule* find(const ModelLayout& l, const std::string& name) {
    for (const auto& m : l.linears)
        if (m.name == name) return &m;
    return nullptr;
}

TEST(ModelLayoutReal, Stories260K) {
    const auto dir = kAssets / "stories260K/hf";
    if (!std::filesystem::exists(dir / "model.safetensors")) GTEST_SKIP() << "no asset " << dir;
    const auto c = io::Checkpoint::open(dir);
    const ModelLayout l = describe(dir, c);
    expect_accounted_once(l, c);
    EXPECT_EQ(l.architecture, "llama");
    EXPECT_FALSE(l.generic_fallback);
    EXPECT_EQ(l.linears.size(), 1u + 5 * 7 + 1);
    EXPECT_EQ(l.passthrough.size(), 5u * 2 + 1);
    EXPECT_EQ(l.groups.size(), 10u);
    EXPECT_EQ(l.attentions.size(), 5u);
    const LinearModule* head = find(l, "lm_head");
    ASSERT_NE(head, nullptr);
    EXPECT_TRUE(head->weight.empty());  // tied
    EXPECT_EQ(head->out_features, 512);
    const LinearModule* down = find(l, "model.layers.4.mlp.down_proj");
    ASSERT_NE(down, nullptr);
    EXPECT_EQ(down->in_features, 172);  // not a multiple of 16: NVFP4 must skip or refuse it
    EXPECT_EQ(down->out_features, 64);
    const LinearModule* k = find(l, "model.layers.0.self_attn.k_proj");
    ASSERT_NE(k, nullptr);
    EXPECT_EQ(k->out_features, 32);  // 4 KV heads x 8
    EXPECT_EQ(l.attentions[0].module_class, "LlamaAttention");
}

TEST(ModelLayoutReal, MicroStories10MSharded) {
    const auto dir = kAssets / "microstories10M";
    if (!std::filesystem::exists(dir / "model.safetensors.index.json")) GTEST_SKIP() << "no asset " << dir;
    const auto c = io::Checkpoint::open(dir);
    ASSERT_TRUE(c.sharded());
    const ModelLayout l = describe(dir, c);  // rope_parameters (transformers 5), dtype key
    expect_accounted_once(l, c);
    EXPECT_EQ(l.architecture, "llama");
    EXPECT_EQ(l.linears.size(), 1u + 6 * 7 + 1);
    EXPECT_EQ(l.passthrough.size(), 6u * 2 + 1);
    EXPECT_TRUE(find(l, "lm_head")->weight.empty());
    EXPECT_EQ(find(l, "model.layers.5.self_attn.q_proj")->out_features, 384);  // 6 heads x 64
    EXPECT_EQ(find(l, "model.layers.5.self_attn.v_proj")->out_features, 128);  // 2 KV heads x 64
    EXPECT_EQ(find(l, "model.layers.5.mlp.up_proj")->out_features, 1024);
    for (const auto& m : l.linears)
        if (!m.weight.empty()) EXPECT_EQ(c.at(m.weight).info->dtype, DType::BF16) << m.weight;
}

}  // namespace
}  // namespace microscale::model
