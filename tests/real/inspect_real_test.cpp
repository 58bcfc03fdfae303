// inspect on the real checkpoints in ../shared/assets (label `real`; skipped when absent).
#include <gtest/gtest.h>

#include <filesystem>

#include "export/inspect.h"

namespace microscale::exporter {
namespace {

const std::filesystem::path kAssets = MICROSCALE_ASSETS_DIR;

#define REQUIRE_ASSET(p)                                                     \
    do {                                                                     \
        if (!std::filesystem::exists(p)) GTEST_SKIP() << "no asset " << (p); \
    } while (0)

TEST(InspectReal, Stories260K) {
    const auto dir = kAssets / "stories260K/hf";
    REQUIRE_ASSET(dir / "model.safetensors");
    const auto r = inspect_checkpoint(dir, true);
    EXPECT_EQ(r.dialect, "unquantized");
    EXPECT_EQ(r.model_type, "llama");
    EXPECT_EQ(r.tensor_count, 47u);
    EXPECT_EQ(r.tensors.size(), 47u);
    EXPECT_TRUE(r.tied_lm_head);
    // 5 layers x 7 linears, fp32; the tied embedding is the only other matrix.
    EXPECT_EQ(r.linear.modules, 35u);
    EXPECT_EQ(r.linear_lm_head.modules, 35u);
    EXPECT_EQ(r.all_weights.modules, 36u);
    EXPECT_DOUBLE_EQ(r.linear.bits(), 32.0);
    EXPECT_EQ(r.all_weights.elements, 260032u - 5u * 2u * 64u - 64u);  // all params minus the norms
    const auto text = format_inspect_text(r);
    EXPECT_NE(text.find("tied to the embeddings"), std::string::npos);
    EXPECT_NE(text.find("[mlp.down]"), std::string::npos);
}

TEST(InspectReal, Microstories10M) {
    const auto dir = kAssets / "microstories10M";
    REQUIRE_ASSET(dir / "model.safetensors.index.json");
    const auto r = inspect_checkpoint(dir);
    EXPECT_EQ(r.dialect, "unquantized");
    EXPECT_EQ(r.shards, 2u);
    EXPECT_DOUBLE_EQ(r.linear.bits(), 16.0);  // bf16
    EXPECT_EQ(r.linear.modules, 6u * 7u);
    uint64_t per_layer = 384 * 384 + 2 * 128 * 384 + 384 * 384 + 3 * 1024 * 384;  // q, k+v, o, mlp
    EXPECT_EQ(r.linear.elements, 6 * per_layer);
    for (const auto& m : r.modules) EXPECT_EQ(m.storage, "bf16") << m.name;
    const auto j = inspect_to_json(r);
    EXPECT_EQ(j.at("linear").at("bits_per_element").get<double>(), 16.0);
}

}  // namespace
}  // namespace microscale::exporter
