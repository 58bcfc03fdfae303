// GPTQ and local_hessian on microstories10M (label `real`): every linear's layer objective drops
// for FP8 weights and with act_order, and local_hessian + GPTQ exports a checkpoint that verifies.
#include <gtest/gtest.h>

#include <fstream>

#include "calib/dataset.h"
#include "export/verify.h"
#include "pipeline/quantize_job.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace microscale;

namespace {

fs::path asset(const char* rel) { return fs::path(MICROSCALE_ASSETS_DIR) / rel; }

constexpr const char* kNvfp4 =
    "    - {quantizer_name: '*weight_quantizer', cfg: {num_bits: e2m1, block_sizes: {-1: 16, type: static, "
    "scale_bits: e4m3, four_over_six: true}}}\n";
constexpr const char* kFp8 =
    "    - {quantizer_name: '*weight_quantizer', cfg: {num_bits: e4m3, axis: null}}\n"
    "    - {quantizer_name: '*input_quantizer', cfg: {num_bits: e4m3, axis: null}}\n";

// Runs quantize on microstories10M and returns the "gptq: ..." note (empty when missing).
std::string run(const std::string& algorithm, const char* weights) {
    const fs::path in = asset("microstories10M"), calib_txt = asset("tinyshakespeare/input.txt");
    microscale::test::TempDir tmp;
    const fs::path recipe = tmp.path / "r.yaml";
    std::ofstream(recipe) << "quantize:\n  algorithm: " << algorithm << "\n  quant_cfg:\n"
                          << "    - {quantizer_name: '*', enable: false}\n" << weights
                          << "    - {quantizer_name: '*lm_head*', enable: false}\n"
                             "    - {parent_class: nn.Embedding, quantizer_name: '*', enable: false}\n";
    pipeline::QuantizeOptions o;
    o.model_dir = in;
    o.output_dir = tmp.path / "q";
    o.recipe = recipe.string();
    calib::CalibOptions c;
    c.file = calib_txt;
    c.num_samples = 8;
    c.seq_len = 256;
    o.calibration.data = c;
    const auto r = pipeline::run_quantize(o);
    EXPECT_EQ(exporter::verify_export(tmp.path / "q").quantized_layers, 42u);
    for (const auto& n : r.notes)
        if (n.rfind("gptq:", 0) == 0 && n.find("lowered") != std::string::npos) return n;
    return {};
}

bool have_assets() {
    return fs::exists(asset("microstories10M/model.safetensors.index.json")) && fs::exists(asset("tinyshakespeare/input.txt"));
}

}  // namespace

TEST(GptqReal, MicroStories10MFp8GptqLowersEveryLayerObjective) {
    if (!have_assets()) GTEST_SKIP() << "assets not found";
    const std::string note = run("[max, gptq]", kFp8);
    EXPECT_NE(note.find("lowered on 42 of 42"), std::string::npos) << note;
}

TEST(GptqReal, MicroStories10MActOrderLowersEveryLayerObjective) {
    if (!have_assets()) GTEST_SKIP() << "assets not found";
    const std::string note = run("[{method: mse, fp8_scale_sweep: false, start_multiplier: 1.0, stop_multiplier: 1.5, "
                                 "step_size: 0.5}, {method: gptq, act_order: true}]",
                                 kNvfp4);
    EXPECT_NE(note.find("lowered on 42 of 42"), std::string::npos) << note;
}

TEST(GptqReal, MicroStories10MLocalHessianThenGptqLowersEveryLayerObjective) {
    if (!have_assets()) GTEST_SKIP() << "assets not found";
    const std::string note = run("[local_hessian, gptq]", kNvfp4);
    EXPECT_NE(note.find("lowered on 42 of 42"), std::string::npos) << note;
}
