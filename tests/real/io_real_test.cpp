// The reader on real checkpoints from ../shared/assets (label `real`; skipped when absent).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace microscale::io {
namespace {

const std::filesystem::path kAssets = MICROSCALE_ASSETS_DIR;

#define REQUIRE_ASSET(p)                                                        \
    do {                                                                        \
        if (!std::filesystem::exists(p)) GTEST_SKIP() << "no asset " << (p);    \
    } while (0)

TEST(SafetensorsReal, Stories260K) {
    const auto path = kAssets / "stories260K/hf/model.safetensors";
    REQUIRE_ASSET(path);
    auto f = SafetensorsFile::open(path);
    // 5 layers x 9 tensors + embed + final norm; embeddings are tied (no lm_head).
    EXPECT_EQ(f.tensors().size(), 47u);
    EXPECT_EQ(f.metadata().at("format"), "pt");
    uint64_t params = 0;
    for (const auto& t : f.tensors()) {
        EXPECT_EQ(t.dtype, DType::F32) << t.name;
        params += t.numel();
    }
    EXPECT_EQ(params, 260032u);  // assets/README.md
    const TensorInfo* emb = f.find("model.embed_tokens.weight");
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ(emb->shape, (std::vector<int64_t>{512, 64}));  // vocab x hidden
    // GQA: 4 KV heads x head_dim 8.
    EXPECT_EQ(f.find("model.layers.4.self_attn.k_proj.weight")->shape, (std::vector<int64_t>{32, 64}));
    EXPECT_EQ(f.find("model.layers.0.mlp.down_proj.weight")->shape, (std::vector<int64_t>{64, 172}));
    EXPECT_EQ(f.find("lm_head.weight"), nullptr);
    // Norm weights of a trained model are finite and not all zero.
    auto norm = f.bytes(*f.find("model.norm.weight"));
    ASSERT_EQ(norm.size(), 64u * 4);
    float v[64];
    std::memcpy(v, norm.data(), sizeof v);
    bool nonzero = false;
    for (float x : v) {
        EXPECT_TRUE(std::isfinite(x));
        nonzero |= x != 0.0f;
    }
    EXPECT_TRUE(nonzero);

    // The same file as a checkpoint directory.
    auto c = Checkpoint::open(path.parent_path());
    EXPECT_FALSE(c.sharded());
    EXPECT_EQ(c.tensors().size(), 47u);
}

TEST(SafetensorsReal, MicroStories10MSharded) {
    const auto dir = kAssets / "microstories10M";
    REQUIRE_ASSET(dir / kIndexFileName);
    auto c = Checkpoint::open(dir);
    EXPECT_TRUE(c.sharded());
    EXPECT_EQ(c.shard_count(), 2u);
    // 6 layers x 9 + embed + norm.
    EXPECT_EQ(c.tensors().size(), 56u);
    uint64_t params = 0;
    for (const auto& t : c.tensors()) {
        EXPECT_EQ(t.info->dtype, DType::BF16) << t.info->name;
        params += t.info->numel();
    }
    EXPECT_EQ(params, 9638784u);  // index metadata.total_parameters
    EXPECT_EQ(c.at("model.embed_tokens.weight").info->shape, (std::vector<int64_t>{512, 384}));
    EXPECT_EQ(c.at("model.layers.5.self_attn.q_proj.weight").info->shape, (std::vector<int64_t>{384, 384}));
    EXPECT_EQ(c.at("model.layers.5.self_attn.v_proj.weight").info->shape, (std::vector<int64_t>{128, 384}));
    EXPECT_EQ(c.at("model.layers.2.mlp.gate_proj.weight").info->shape, (std::vector<int64_t>{1024, 384}));
    EXPECT_EQ(c.at("model.layers.0.input_layernorm.weight").file->path().filename(),
              "model-00001-of-00002.safetensors");
    EXPECT_EQ(c.at("model.norm.weight").file->path().filename(), "model-00002-of-00002.safetensors");
    // A streaming pass over every tensor, releasing pages behind it.
    uint64_t total = 0;
    for (const auto& t : c.tensors()) {
        auto b = c.bytes(t);
        total += b.size();
        t.file->release(*t.info);
    }
    EXPECT_EQ(total, 19277568u);  // index metadata.total_size
}

}  // namespace
}  // namespace microscale::io
