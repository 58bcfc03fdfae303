// `quantize` with layerwise algorithms: a gptq stage keeps the grid of the scale search (NVFP4
// block codes, the FP8 weight scale), changes the weights and lowers the layer objective on every
// linear, also with act_order; local_hessian moves block scales away from the plain fp8 sweep;
// fused groups share one Hessian accumulator and only they do.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "calib/dataset.h"
#include "cuda/device.h"
#include "format/quantize.h"
#include "io/checkpoint.h"
#include "microscale/error.h"
#include "model/synthetic.h"
#include "pipeline/layerwise_weights.h"
#include "pipeline/quantize_job.h"
#include "recipe/recipe.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace microscale;

namespace {

constexpr const char* kDisabled = R"(
    - {quantizer_name: '*lm_head*', enable: false}
    - {parent_class: nn.Embedding, quantizer_name: '*', enable: false}
)";
constexpr const char* kNvfp4Static = R"(
  quant_cfg:
    - {quantizer_name: '*', enable: false}
    - quantizer_name: '*weight_quantizer'
      cfg: {num_bits: e2m1, block_sizes: {-1: 16, type: static, scale_bits: e4m3}})";

std::string recipe_yaml(const std::string& algorithm, const char* quant_cfg = kNvfp4Static) {
    return "metadata: {recipe_type: ptq, description: test}\nquantize:\n  algorithm: " + algorithm + quant_cfg + kDisabled;
}

struct Layerwise {
    microscale::test::TempDir tmp{"ms-gptq"};
    fs::path in = tmp.path / "in", ids = tmp.path / "calib.ids";
    Layerwise() {
        model::SyntheticSpec spec;
        spec.hidden = 128;
        spec.vocab = 256;
        model::write_synthetic_llama(in, spec);
        std::ofstream f(ids);
        std::mt19937 rng(9);
        for (int d = 0; d < 40; ++d) {
            for (int t = 0; t < 60; ++t) f << (rng() % 255 + 1) << ' ';
            f << '\n';
        }
    }
    pipeline::QuantizeReport run(const std::string& yaml, const std::string& out) {
        const fs::path r = tmp.path / (out + ".yaml");
        std::ofstream(r) << yaml;
        pipeline::QuantizeOptions o;
        o.model_dir = in;
        o.output_dir = tmp.path / out;
        o.recipe = r.string();
        o.threads = 2;
        calib::CalibOptions c;
        c.file = ids;
        c.num_samples = 8;
        c.seq_len = 128;
        o.calibration.data = c;
        return pipeline::run_quantize(o);
    }
    format::QuantizedWeight rtn(const std::string& name, const format::WeightQuantSpec& s) const {
        const io::Checkpoint src = io::Checkpoint::open(in);
        const auto& t = src.at(name + ".weight");
        return format::quantize_weight({src.bytes(t).data(), t.info->dtype, t.info->shape[0], t.info->shape[1], name}, s,
                                       format::Backend::REF, nullptr);
    }
};

bool has_note(const pipeline::QuantizeReport& r, const std::string& text) {
    for (const auto& n : r.notes)
        if (n.find(text) != std::string::npos) return true;
    return false;
}

// The "(-x%)" of the "gptq: ... layer objective sum" note; 0 when missing.
double gptq_change_percent(const pipeline::QuantizeReport& r) {
    for (const auto& n : r.notes)
        if (n.rfind("gptq: ", 0) == 0 && n.find("objective") != std::string::npos) {
            const size_t pct = n.find("%)");
            const size_t at = pct == std::string::npos ? pct : n.rfind('(', pct);
            if (at != std::string::npos) return std::stod(n.substr(at + 1, pct - at - 1));
        }
    return 0.0;
}

std::vector<uint8_t> bytes_of(const io::Checkpoint& c, const std::string& name) {
    const auto b = c.bytes(c.at(name));
    return {b.begin(), b.end()};
}

}  // namespace

TEST(GptqPipeline, FixedCodesChangedWeightsLowerObjective) {
    Layerwise s;
    const auto r = s.run(recipe_yaml("[max, {method: gptq, perc_damp: 0.01, block_size: 64}]"), "out");
    EXPECT_TRUE(has_note(r, "lowered on 14 of 14")) << "GPTQ must lower the objective on all 14 linears";
    // Same codes as static max (with the group's shared amax), different element bytes.
    const io::Checkpoint dst = io::Checkpoint::open(s.tmp.path / "out");
    const std::string name = "model.layers.1.mlp.down_proj";
    format::WeightQuantSpec spec;
    spec.format = Format::W4A16_NVFP4;
    spec.nvfp4.search = format::Nvfp4Search::STATIC_MAX;
    const auto q = s.rtn(name, spec);
    EXPECT_EQ(bytes_of(dst, name + ".weight_scale"), q.block_scales) << "GPTQ keeps the starting codes";
    EXPECT_NE(bytes_of(dst, name + ".weight"), q.data) << "GPTQ changes the elements";
}

TEST(GptqPipeline, ActOrderLowersEveryObjective) {
    Layerwise s;
    const auto r = s.run(recipe_yaml("[max, {method: gptq, act_order: true}]"), "out");
    EXPECT_TRUE(has_note(r, "lowered on 14 of 14"));
    EXPECT_NE(r.plan_text.find("gptq act_order"), std::string::npos) << r.plan_text;
}

TEST(GptqPipeline, Fp8KeepsTheWeightScaleAndLowersEveryObjective) {
    Layerwise s;
    const auto r = s.run(recipe_yaml("[max, gptq]", R"(
  quant_cfg:
    - {quantizer_name: '*', enable: false}
    - {quantizer_name: '*weight_quantizer', cfg: {num_bits: e4m3, axis: null}}
    - {quantizer_name: '*input_quantizer', cfg: {num_bits: e4m3, axis: null}})"),
                         "out");
    EXPECT_TRUE(has_note(r, "lowered on 14 of 14"));
    const io::Checkpoint dst = io::Checkpoint::open(s.tmp.path / "out");
    const std::string name = "model.layers.0.self_attn.o_proj";
    format::WeightQuantSpec spec;
    spec.format = Format::FP8;
    const auto q = s.rtn(name, spec);
    float scale = 0;
    std::memcpy(&scale, bytes_of(dst, name + ".weight_scale").data(), 4);
    EXPECT_EQ(scale, q.global_scale) << "GPTQ keeps the max-calibrated FP8 scale";
    EXPECT_NE(bytes_of(dst, name + ".weight"), q.data) << "GPTQ changes the codes";
}

TEST(GptqPipeline, LocalHessianMovesBlockScalesAndStacksWithGptq) {
    Layerwise s;
    EXPECT_TRUE(has_note(s.run(recipe_yaml("{method: local_hessian}"), "lh"), "local_hessian: 14 linears"));
    const io::Checkpoint dst = io::Checkpoint::open(s.tmp.path / "lh");
    format::WeightQuantSpec spec;
    spec.format = Format::W4A16_NVFP4;
    spec.nvfp4.search = format::Nvfp4Search::FP8_SWEEP;
    size_t moved = 0, blocks = 0;
    for (const char* name : {"model.layers.0.mlp.down_proj", "model.layers.1.self_attn.o_proj"}) {
        const auto q = s.rtn(name, spec);
        const auto codes = bytes_of(dst, std::string(name) + ".weight_scale");
        ASSERT_EQ(codes.size(), q.block_scales.size());
        for (size_t i = 0; i < codes.size(); ++i) moved += codes[i] != q.block_scales[i];
        blocks += codes.size();
        float wsf2 = 0;
        std::memcpy(&wsf2, bytes_of(dst, std::string(name) + ".weight_scale_2").data(), 4);
        EXPECT_EQ(wsf2, q.global_scale) << name;
    }
    EXPECT_GT(moved, 0u) << "the Hessian-weighted loss must choose differently from plain MSE somewhere";
    EXPECT_LT(moved, blocks) << "but not everywhere";
    // On top of Hessian-aware codes GPTQ is not guaranteed to win on every random synthetic
    // linear (13 of 14 here); the real test asks for all 42 of microstories10M.
    const auto r = s.run(recipe_yaml("[{method: local_hessian}, gptq]"), "lh_gptq");
    EXPECT_LT(gptq_change_percent(r), -30.0);
    const io::Checkpoint both = io::Checkpoint::open(s.tmp.path / "lh_gptq");
    EXPECT_EQ(bytes_of(both, "model.layers.0.mlp.down_proj.weight_scale"),
              bytes_of(dst, "model.layers.0.mlp.down_proj.weight_scale"))
        << "GPTQ keeps the local_hessian codes";
}

TEST(GptqPipeline, LayerwiseAlgorithmsOutsideTheDecoderAreRefused) {
    Layerwise s;
    const std::string yaml = "quantize:\n  algorithm: [max, gptq]" + std::string(kNvfp4Static) +
                             "\n    - {parent_class: nn.Embedding, quantizer_name: '*', enable: false}\n";
    try {
        s.run(yaml, "out");
        FAIL() << "gptq on lm_head must be refused";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("lm_head"), std::string::npos) << e.what();
    }
}

// q/k/v share one input and one accumulator, gate/up another; the decoder reuses one buffer for
// both, so sharing must follow the fused groups, not the pointer.
TEST(GptqPipeline, FusedGroupsShareOneHessianAndOnlyThey) {
    Layerwise s;
    model::ModelForward model(s.in, 1);
    const recipe::Recipe rec = recipe::load_recipe_text(recipe_yaml("[{method: local_hessian}, gptq]"), "t.yaml");
    const pipeline::Plan plan = pipeline::build_plan(rec, model.layout(), {});
    pipeline::LayerwiseWeights lw(plan, model);
    const model::DecoderLayerWeights w = model.load_layer(0);
    const model::TokenSequences seqs = {{1, 2, 3, 4, 5, 6, 7, 8}, {9, 10, 11, 12, 13, 14, 15, 16}};
    for (int batch = 0; batch < 2; ++batch) {  // two batches: the running mean sees both
        const model::TokenSequences one = {seqs[static_cast<size_t>(batch)]};
        std::vector<float> x = model.embed(one);
        model.run_layer(w, model.batch_of(one), x, &lw);
    }
    int q = -1, k = -1, gate = -1, up = -1;
    for (const model::LinearWeights& l : w.linears) {
        if (l.name.ends_with("q_proj")) q = l.linear;
        if (l.name.ends_with("k_proj")) k = l.linear;
        if (l.name.ends_with("gate_proj")) gate = l.linear;
        if (l.name.ends_with("up_proj")) up = l.linear;
    }
    ASSERT_TRUE(lw.hessian_of(q) && lw.hessian_of(gate) && lw.block_hessians_of(q));
    EXPECT_EQ(lw.hessian_of(q), lw.hessian_of(k));
    EXPECT_EQ(lw.hessian_of(gate), lw.hessian_of(up));
    EXPECT_NE(lw.hessian_of(q), lw.hessian_of(gate));
    EXPECT_EQ(lw.hessian_of(q)->samples(), 16) << "each batch added once for the whole group";
    EXPECT_EQ(lw.block_hessians_of(q)->samples(), 16);
    EXPECT_NE(lw.hessian_of(q)->hessian(), lw.hessian_of(gate)->hessian());
}

// --device cuda sets LayerwiseWeights' gpu flag, which sends GPTQ to cuda::gptq: without a usable
// GPU (or without the CUDA backend) that is a clear error, not a silent CPU run. With a GPU,
// tests/gpu/gptq_gpu_test.cpp compares the two runs.
TEST(GptqPipeline, GpuFlagSendsGptqToTheCudaBackend) {
    if (cuda::device_count() > 0) GTEST_SKIP() << "a GPU is present: the gpu tests cover this";
    Layerwise s;
    model::ModelForward model(s.in, 1);
    const recipe::Recipe rec = recipe::load_recipe_text(recipe_yaml("gptq"), "t.yaml");
    const pipeline::Plan plan = pipeline::build_plan(rec, model.layout(), {});
    pipeline::LayerwiseWeights lw(plan, model, true);
    model::DecoderLayerWeights w = model.load_layer(0);
    const model::TokenSequences one = {{1, 2, 3, 4, 5, 6, 7, 8}};
    std::vector<float> x = model.embed(one);
    model.run_layer(w, model.batch_of(one), x, &lw);
    std::map<int, format::QuantizedWeight> q;
    std::vector<pipeline::GptqLayerReport> report;
    EXPECT_THROW(lw.finish_layer(w, false, q, report), Error);
    EXPECT_TRUE(report.empty());
}
