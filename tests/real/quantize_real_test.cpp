// `quantize` on the real trained models in ../shared/assets (label `real`): stories260K (fp32,
// tied embeddings, down_proj with 172 inputs) and microstories10M (bf16, sharded).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "support/temp_dir.h"
#include "calib/dataset.h"
#include "export/inspect.h"
#include "export/verify.h"
#include "io/checkpoint.h"
#include "microscale/error.h"
#include "pipeline/quantize_job.h"

namespace fs = std::filesystem;
using namespace microscale;

namespace {

fs::path asset(const char* rel) { return fs::path(MICROSCALE_ASSETS_DIR) / rel; }

using microscale::test::TempDir;

pipeline::QuantizeOptions options(const fs::path& in, const fs::path& out, const char* recipe) {
    pipeline::QuantizeOptions o;
    o.model_dir = in;
    o.output_dir = out;
    o.recipe = recipe;
    return o;
}

}  // namespace

TEST(QuantizeReal, Stories260KW4A16SkipsDownProj) {
    const fs::path in = asset("stories260K/hf");
    if (!fs::exists(in / "model.safetensors")) GTEST_SKIP() << "assets not found: " << in;
    TempDir tmp;
    const fs::path out = tmp.path / "w4a16";
    // ModelOpt's behaviour: an error naming the layer that NVFP4 cannot take.
    try {
        pipeline::run_quantize(options(in, out, "W4A16_NVFP4_CFG"));
        FAIL() << "expected an error for down_proj (172 inputs)";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("model.layers.0.mlp.down_proj"), std::string::npos) << e.what();
    }
    auto o = options(in, out, "W4A16_NVFP4_CFG");
    o.plan.skip_incompatible = true;
    pipeline::run_quantize(o);
    const auto v = exporter::verify_export(out);
    EXPECT_EQ(v.quant_algo, "W4A16_NVFP4");
    EXPECT_EQ(v.quantized_layers, 5u * 6u);  // q,k,v,o,gate,up in 5 layers; down_proj stays fp32
    const io::Checkpoint ck = io::Checkpoint::open(out);
    EXPECT_EQ(ck.at("model.layers.4.mlp.down_proj.weight").info->dtype, DType::F32);
    EXPECT_EQ(ck.at("model.layers.4.mlp.up_proj.weight").info->dtype, DType::U8);
    EXPECT_TRUE(fs::exists(out / "tokenizer.json"));
    const auto hq = nlohmann::json::parse(std::ifstream(out / "hf_quant_config.json"));
    const auto ex = hq["quantization"]["exclude_modules"];
    for (int l = 0; l < 5; ++l)
        EXPECT_NE(std::find(ex.begin(), ex.end(), "model.layers." + std::to_string(l) + ".mlp.down_proj"), ex.end())
            << ex.dump();
    EXPECT_NE(std::find(ex.begin(), ex.end(), "lm_head"), ex.end());
    EXPECT_NO_THROW(exporter::inspect_checkpoint(out));
}

TEST(QuantizeReal, Stories260KFourOverSix) {
    const fs::path in = asset("stories260K/hf");
    if (!fs::exists(in / "model.safetensors")) GTEST_SKIP() << "assets not found: " << in;
    TempDir tmp;
    const fs::path out = tmp.path / "4o6";
    auto o = options(in, out, "NVFP4_FOUR_OVER_SIX_CFG");
    o.plan.skip_incompatible = true;
    o.plan.weights_only = true;
    const auto r = pipeline::run_quantize(o);
    const auto v = exporter::verify_export(out);
    EXPECT_EQ(v.quantized_layers, 30u);
    // Four-over-six: weight_scale_2 = A * RN(1/1536).
    const io::Checkpoint src = io::Checkpoint::open(in), dst = io::Checkpoint::open(out);
    float wsf2;
    std::memcpy(&wsf2, dst.bytes(dst.at("model.layers.0.mlp.up_proj.weight_scale_2")).data(), 4);
    EXPECT_GT(wsf2, 0.0f);
    double mean_err = 0;
    int n = 0;
    for (const auto& t : r.tensors)
        if (t.rel_mse >= 0) {
            mean_err += t.rel_mse;
            ++n;
        }
    EXPECT_EQ(n, 30);
    EXPECT_LT(mean_err / n, 0.02) << "NVFP4 4/6 relative MSE on trained weights should be ~1e-2 or below";
}

TEST(QuantizeReal, MicroStories10MShardedBf16) {
    const fs::path in = asset("microstories10M");
    if (!fs::exists(in / "model.safetensors.index.json")) GTEST_SKIP() << "assets not found: " << in;
    TempDir tmp;
    const fs::path out = tmp.path / "q";
    auto o = options(in, out, "NVFP4_FOUR_OVER_SIX_CFG");
    o.plan.weights_only = true;
    const auto r = pipeline::run_quantize(o);
    const auto v = exporter::verify_export(out);
    EXPECT_EQ(v.quantized_layers, 6u * 7u);
    EXPECT_NEAR(r.bpe_without_lm_head, 4.5, 0.01);
}

TEST(QuantizeReal, MicroStories10MW4A4WithFp8KvCalibrated) {
    const fs::path in = asset("microstories10M");
    const fs::path calib_txt = asset("tinystories_val1000/tinystories_val_first1000.txt");
    if (!fs::exists(in / "model.safetensors.index.json") || !fs::exists(calib_txt)) GTEST_SKIP() << "assets not found";
    TempDir tmp;
    const fs::path out = tmp.path / "w4a4";
    auto o = options(in, out, "NVFP4_DEFAULT_CFG+FP8_KV_CFG");
    calib::CalibOptions c;
    c.file = calib_txt;
    c.num_samples = 8;
    c.seq_len = 128;
    o.calibration.data = c;
    pipeline::run_quantize(o);
    const auto v = exporter::verify_export(out);
    EXPECT_EQ(v.quant_algo, "NVFP4");
    EXPECT_EQ(v.kv_cache_quant_algo, "FP8");
    const io::Checkpoint ck = io::Checkpoint::open(out);
    for (int l = 0; l < 6; ++l) {
        const std::string p = "model.layers." + std::to_string(l);
        float is, ks;
        std::memcpy(&is, ck.bytes(ck.at(p + ".mlp.down_proj.input_scale")).data(), 4);
        std::memcpy(&ks, ck.bytes(ck.at(p + ".self_attn.k_proj.k_scale")).data(), 4);
        EXPECT_GT(is, 0.0f);
        EXPECT_GT(ks, 0.0f);
    }
}

TEST(QuantizeReal, MicroStories10MGptqLowersEveryLayerObjective) {
    const fs::path in = asset("microstories10M");
    const fs::path calib_txt = asset("tinyshakespeare/input.txt");
    if (!fs::exists(in / "model.safetensors.index.json") || !fs::exists(calib_txt)) GTEST_SKIP() << "assets not found";
    TempDir tmp;
    const fs::path recipe = tmp.path / "gptq.yaml";
    std::ofstream(recipe) << "quantize:\n  algorithm: [{method: mse, fp8_scale_sweep: false, start_multiplier: 1.0, "
                             "stop_multiplier: 1.5, step_size: 0.5}, gptq]\n  quant_cfg:\n"
                             "    - {quantizer_name: '*', enable: false}\n"
                             "    - {quantizer_name: '*weight_quantizer', cfg: {num_bits: e2m1, block_sizes: {-1: 16, type: "
                             "static, scale_bits: e4m3, four_over_six: true}}}\n"
                             "    - {quantizer_name: '*lm_head*', enable: false}\n"
                             "    - {parent_class: nn.Embedding, quantizer_name: '*', enable: false}\n";
    auto o = options(in, tmp.path / "q", recipe.c_str());
    calib::CalibOptions c;
    c.file = calib_txt;
    c.num_samples = 8;
    c.seq_len = 256;
    o.calibration.data = c;
    const auto r = pipeline::run_quantize(o);
    bool all = false;
    for (const auto& n : r.notes) all |= n.find("lowered on 42 of 42") != std::string::npos;
    EXPECT_TRUE(all) << "four-over-six + GPTQ must lower the objective on every linear of microstories10M";
    EXPECT_EQ(exporter::verify_export(tmp.path / "q").quantized_layers, 42u);
}
