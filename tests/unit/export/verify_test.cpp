// The export verifier: good exports pass; each corruption is reported with the tensor named.
#include "export/verify.h"

#include <gtest/gtest.h>

#include "export_fixture.h"

using namespace microscale;
using namespace microscale::exporter;
using namespace microscale::exporter::testing;
using microscale::io::testing::TempDir;

namespace {

const std::string kQ = "model.layers.0.self_attn.q_proj";
const std::string kK = "model.layers.0.self_attn.k_proj";
const std::string kO = "model.layers.0.self_attn.o_proj";
const std::string kDown = "model.layers.0.mlp.down_proj";

VerifyReport check(const ExportFixture& fx) {
    TempDir dir;
    fx.write(dir.path());
    return check_export(dir.path());
}

std::string joined(const VerifyReport& r) {
    std::string s;
    for (const auto& p : r.problems) s += p + "\n";
    return s;
}

// Some problem mentions every one of `parts`.
void expect_problem(const VerifyReport& r, std::initializer_list<std::string> parts) {
    for (const auto& p : r.problems) {
        bool all = true;
        for (const auto& part : parts) all &= p.find(part) != std::string::npos;
        if (all) return;
    }
    std::string want;
    for (const auto& part : parts) want += "'" + part + "' ";
    ADD_FAILURE() << "no problem mentions " << want << "; problems:\n" << joined(r);
}

ExportFixture nvfp4() {
    ExportFixture fx;
    fx.build_single(Format::NVFP4);
    return fx;
}

// attention NVFP4, gate/up FP8, down MXFP4: three distinct layer configs -> MIXED_PRECISION.
ExportFixture mixed() {
    ExportFixture fx;
    fx.build_llama([](const std::string& n) -> std::optional<Format> {
        if (n.find("self_attn") != std::string::npos) return Format::NVFP4;
        if (n.find("down_proj") != std::string::npos) return Format::MXFP4;
        return Format::FP8;
    });
    return fx;
}

}  // namespace

TEST(VerifyExport, GoodNvfp4Passes) {
    const ExportFixture fx = nvfp4();
    TempDir dir;
    fx.write(dir.path());
    VerifyReport r;
    ASSERT_NO_THROW(r = verify_export(dir.path()));
    EXPECT_TRUE(r.problems.empty()) << joined(r);
    EXPECT_TRUE(r.warnings.empty());
    EXPECT_EQ(r.dialect, "modelopt");
    EXPECT_EQ(r.quant_algo, "NVFP4");
    EXPECT_EQ(r.kv_cache_quant_algo, "FP8");
    EXPECT_EQ(r.quantized_layers, 7u);
    EXPECT_EQ(r.format_counts.at("nvfp4"), 7u);
    EXPECT_EQ(r.fused_groups_checked, 2u);  // q/k/v and gate/up
    EXPECT_EQ(r.kv_scales, 2u);
    EXPECT_EQ(r.tensor_count, fx.tensors.size());
    EXPECT_NE(verify_summary(r).find("7 quantized layers"), std::string::npos);
}

TEST(VerifyExport, GoodW4A16Fp8Mxfp8Pass) {
    for (Format f : {Format::W4A16_NVFP4, Format::FP8, Format::MXFP8}) {
        ExportFixture fx;
        fx.build_single(f, std::nullopt);
        const auto r = check(fx);
        EXPECT_TRUE(r.problems.empty()) << format_info(f).name << "\n" << joined(r);
        EXPECT_EQ(r.quantized_layers, 7u);
        EXPECT_EQ(r.kv_cache_quant_algo, "");
    }
}

TEST(VerifyExport, GoodMixedPasses) {
    const auto r = check(mixed());
    EXPECT_TRUE(r.problems.empty()) << joined(r);
    EXPECT_EQ(r.quant_algo, "MIXED_PRECISION");
    EXPECT_EQ(r.format_counts.at("nvfp4"), 4u);
    EXPECT_EQ(r.format_counts.at("fp8"), 2u);
    EXPECT_EQ(r.format_counts.at("mxfp4"), 1u);
    EXPECT_EQ(r.fused_groups_checked, 1u);  // FP8 gate/up keep per-shard scales
    // vLLM's ModelOpt loader has no mxfp4: loadable by others, so a warning only.
    EXPECT_FALSE(r.warnings.empty());
}

TEST(VerifyExport, NanScaleCode) {
    auto fx = nvfp4();
    fx.at(kQ + ".weight_scale").data[5] = 0x7F;
    fx.at(kO + ".weight_scale").data[0] = 0xFF;
    const auto r = check(fx);
    expect_problem(r, {kQ + ".weight_scale", "NaN", "row 1 block 1"});
    expect_problem(r, {kO + ".weight_scale", "NaN"});
}

TEST(VerifyExport, ZeroScaleCode) {
    auto fx = nvfp4();
    fx.at(kDown + ".weight_scale").data[3] = 0x00;
    fx.at(kDown + ".weight_scale").data[9] = 0x80;
    const auto r = check(fx);
    expect_problem(r, {kDown + ".weight_scale", "2 zero"});
}

TEST(VerifyExport, NegativeScales) {
    auto fx = nvfp4();
    fx.at(kK + ".weight_scale").data[2] |= 0x80;
    fx.at(kO + ".weight_scale_2").data = f32_bytes(-0.001f);
    fx.at(kO + ".input_scale").data = f32_bytes(std::numeric_limits<float>::infinity());
    const auto r = check(fx);
    expect_problem(r, {kK + ".weight_scale", "negative"});
    expect_problem(r, {kO + ".weight_scale_2", "not finite and > 0"});
    expect_problem(r, {kO + ".input_scale", "not finite and > 0"});
}

TEST(VerifyExport, Mxfp4NanScale) {
    auto fx = mixed();
    fx.at(kDown + ".weight_scale").data[1] = 0xFF;
    expect_problem(check(fx), {kDown + ".weight_scale", "NaN E8M0"});
}

TEST(VerifyExport, MissingWeightScale2AndInputScale) {
    auto fx = nvfp4();
    fx.remove(kO + ".weight_scale_2");
    fx.remove(kDown + ".input_scale");
    const auto r = check(fx);
    expect_problem(r, {"missing tensor " + kO + ".weight_scale_2"});
    expect_problem(r, {"missing tensor " + kDown + ".input_scale"});
}

TEST(VerifyExport, WrongShape) {
    auto fx = nvfp4();
    fx.at(kO + ".weight_scale").shape = {32, 8};  // same bytes, wrong layout
    fx.at(kQ + ".weight_scale_2").shape = {1};
    const auto r = check(fx);
    expect_problem(r, {kO + ".weight_scale", "shape [32, 8], expected [64, 4]"});
    expect_problem(r, {kQ + ".weight_scale_2", "shape [1]"});
}

TEST(VerifyExport, WrongDtype) {
    auto fx = nvfp4();
    fx.at(kO + ".weight_scale").dtype = DType::U8;
    fx.at(kQ + ".weight").dtype = DType::I8;
    const auto r = check(fx);
    expect_problem(r, {kO + ".weight_scale", "dtype U8, expected F8_E4M3"});
    expect_problem(r, {kQ + ".weight", "dtype I8, expected U8"});
}

TEST(VerifyExport, FusedGroupScalesDiffer) {
    auto fx = nvfp4();
    // Re-quantize k_proj against its own amax: its weight_scale_2 no longer matches q and v.
    for (const char* s : {".weight", ".weight_scale", ".weight_scale_2", ".input_scale"}) fx.remove(kK + s);
    fx.add_quantized(kK, Format::NVFP4, 32, 64, 11);
    fx.at("model.layers.0.mlp.up_proj.input_scale").data = f32_bytes(0.5f);
    const auto r = check(fx);
    expect_problem(r, {"qkv", "weight_scale_2 must be bit-identical", kQ, kK});
    expect_problem(r, {"gate_up", "input_scale must be bit-identical", "model.layers.0.mlp.up_proj"});
}

TEST(VerifyExport, FusedGroupFormatsDiffer) {
    ExportFixture fx;
    fx.build_llama([](const std::string& n) -> std::optional<Format> {
        return n.find("v_proj") != std::string::npos ? Format::FP8 : Format::NVFP4;
    });
    expect_problem(check(fx), {"members differ in format", "v_proj fp8"});
}

TEST(VerifyExport, JsonListedLayerWithoutTensors) {
    auto fx = mixed();
    for (auto* j : {&fx.hf_quant["quantization"], &fx.config["quantization_config"]})
        (*j)["quantized_layers"]["model.layers.0.mlp.shared_expert"] = {{"quant_algo", "FP8"}};
    // A listed layer that exists only in bf16.
    for (auto* j : {&fx.hf_quant["quantization"], &fx.config["quantization_config"]})
        (*j)["quantized_layers"]["lm_head"] = {{"quant_algo", "FP8"}};
    const auto r = check(fx);
    expect_problem(r, {"model.layers.0.mlp.shared_expert", "has no tensors"});
    expect_problem(r, {"lm_head", "BF16 with no scale tensors"});
}

TEST(VerifyExport, QuantizedLayerNotListed) {
    auto fx = mixed();
    for (auto* j : {&fx.hf_quant["quantization"], &fx.config["quantization_config"]})
        (*j)["quantized_layers"].erase(kDown);
    expect_problem(check(fx), {kDown, "not in quantized_layers"});
}

TEST(VerifyExport, QuantizedLayerExcluded) {
    auto fx = nvfp4();
    fx.hf_quant["quantization"]["exclude_modules"].push_back("*down_proj");
    fx.config["quantization_config"]["ignore"].push_back("*down_proj");
    expect_problem(check(fx), {kDown, "exclude_modules pattern '*down_proj'"});
}

TEST(VerifyExport, UnquantizedLayerNotExcluded) {
    auto fx = nvfp4();
    fx.hf_quant["quantization"]["exclude_modules"] = {"model.embed_tokens"};
    fx.config["quantization_config"]["ignore"] = {"model.embed_tokens"};
    expect_problem(check(fx), {"lm_head.weight", "neither quantized nor in exclude_modules"});
}

TEST(VerifyExport, MissingRequiredKeys) {
    auto fx = nvfp4();
    auto& q = fx.hf_quant["quantization"];
    q.erase("group_size");
    q.erase("kv_cache_quant_algo");
    q.erase("exclude_modules");
    const auto r = check(fx);
    expect_problem(r, {"quantization.group_size is missing"});
    expect_problem(r, {"quantization.kv_cache_quant_algo is missing"});
    expect_problem(r, {"quantization.exclude_modules is missing"});

    auto mx = mixed();
    mx.hf_quant["quantization"]["quantized_layers"] = nlohmann::ordered_json::object();
    expect_problem(check(mx), {"non-empty quantized_layers"});
}

TEST(VerifyExport, ConfigFilesAndMethod) {
    auto fx = nvfp4();
    fx.hf_quant = nullptr;
    expect_problem(check(fx), {"hf_quant_config.json is missing"});

    auto bad = nvfp4();
    bad.config["quantization_config"]["quant_method"] = "gptq";
    bad.config["quantization_config"].erase("quant_algo");
    const auto r = check(bad);
    expect_problem(r, {"quant_method is \"gptq\""});
    expect_problem(r, {"quantization_config.quant_algo"});

    auto none = nvfp4();
    none.config.erase("quantization_config");
    expect_problem(check(none), {"no quantization_config"});
}

TEST(VerifyExport, KvScales) {
    auto fx = nvfp4();
    fx.at(kK + ".k_scale").data = f32_bytes(0.0f);
    expect_problem(check(fx), {kK + ".k_scale", "not finite and > 0"});

    ExportFixture nokv;
    nokv.build_single(Format::NVFP4, std::nullopt);
    nokv.add_scalar(kK + ".k_scale", 0.1f);
    expect_problem(check(nokv), {kK + ".k_scale", "no KV cache quantization"});
}

TEST(VerifyExport, ThrowsListingProblems) {
    auto fx = nvfp4();
    fx.at(kQ + ".weight_scale").data[0] = 0x7F;
    fx.remove(kO + ".weight_scale_2");
    TempDir dir;
    fx.write(dir.path());
    io::testing::expect_error([&] { verify_export(dir.path()); },
                              {"2 problem(s)", kQ + ".weight_scale", kO + ".weight_scale_2"});
}

TEST(VerifyExport, CompressedTensorsPassesAndCatches) {
    ExportFixture fx;
    fx.build_single(Format::NVFP4);
    fx.to_compressed_tensors();
    {
        const auto r = check(fx);
        EXPECT_TRUE(r.problems.empty()) << joined(r);
        EXPECT_EQ(r.dialect, "compressed-tensors");
        EXPECT_EQ(r.quant_algo, "nvfp4-pack-quantized");
        EXPECT_EQ(r.format_counts.at("nvfp4"), 7u);
        EXPECT_EQ(r.fused_groups_checked, 2u);
    }
    fx.at(kK + ".weight_global_scale").data = f32_bytes(123.0f);
    fx.at(kO + ".weight_scale").data[0] = 0x00;
    fx.rename(kDown + ".weight_packed", kDown + ".weight");
    const auto r = check(fx);
    expect_problem(r, {"weight_global_scale must be bit-identical", kK});
    expect_problem(r, {kO + ".weight_scale", "zero"});
    expect_problem(r, {"missing tensor " + kDown + ".weight_packed"});
}
