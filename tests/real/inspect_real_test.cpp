// inspect on the real checkpoints in ../shared/assets (label `real`; skipped when absent).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "export/inspect.h"
#include "export/verify.h"

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

// Runs the CLI, returns (exit status, stdout).
std::pair<int, std::string> run_cli(const std::string& args) {
    const std::string cmd = std::string(MICROSCALE_CLI_PATH) + " " + args + " 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return {-1, ""};
    std::string out;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    return {pclose(p), out};
}

TEST(InspectReal, CliJson) {
    const auto dir = kAssets / "stories260K/hf";
    REQUIRE_ASSET(dir / "model.safetensors");
    const auto [rc, out] = run_cli("inspect " + dir.string() + " --json --tensors");
    ASSERT_EQ(rc, 0) << out;
    const auto j = nlohmann::json::parse(out);
    EXPECT_EQ(j.at("dialect"), "unquantized");
    EXPECT_EQ(j.at("tensors").size(), 47u);
    EXPECT_EQ(j.at("linear").at("modules"), 35);
    // An unquantized checkpoint is not an export: --verify fails.
    EXPECT_NE(run_cli("inspect " + dir.string() + " --verify").first, 0);
}

// The "done when": stories260K quantized with W4A16_NVFP4_CFG (down_proj skipped) passes
// inspect and the verifier.
TEST(InspectReal, QuantizedStories260KVerifies) {
    const auto dir = kAssets / "stories260K/hf";
    REQUIRE_ASSET(dir / "model.safetensors");
    const auto out = std::filesystem::temp_directory_path() / ("microscale-inspect-real-" + std::to_string(getpid()));
    std::filesystem::remove_all(out);
    const auto [rc, log] = run_cli("quantize --model " + dir.string() + " --recipe W4A16_NVFP4_CFG --skip-incompatible --output " +
                                   out.string() + " --threads 2");
    ASSERT_EQ(rc, 0) << log;
    VerifyReport v;
    ASSERT_NO_THROW(v = verify_export(out));
    EXPECT_EQ(v.quantized_layers, 30u);  // 5 layers x 6 (down_proj: 172 inputs, skipped)
    EXPECT_EQ(v.fused_groups_checked, 10u);
    const auto r = inspect_checkpoint(out);
    EXPECT_EQ(r.dialect, "modelopt");
    for (const auto& k : r.kinds)
        if (k.label == "attn.q") EXPECT_NEAR(k.bits(), 4.5 + 32.0 / 4096.0, 1e-12);
    std::filesystem::remove_all(out);
}

}  // namespace
}  // namespace microscale::exporter
