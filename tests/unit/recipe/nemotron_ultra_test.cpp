// The Nemotron 3 Ultra NVFP4 4/6 recipe from issue 3, loaded verbatim; assertions follow its comments
// (routed experts NVFP4 4/6 weights + dynamic NVFP4 inputs, shared experts and Mamba in/out_proj
// FP8, FP8 KV, everything else BF16).
#include <gtest/gtest.h>

#include "recipe/recipe.h"

namespace microscale::recipe {
namespace {

constexpr std::string_view kUltra = R"(quantize:
  algorithm: {method: mse, fp8_scale_sweep: false, start_multiplier: 1.0, stop_multiplier: 1.5, step_size: 0.5}
  quant_cfg:
    - quantizer_name: '*'
      enable: false
    - quantizer_name: '*mixer.experts.*weight_quantizer'
      enable: true
      cfg:
        block_sizes: {-1: 16, type: static, scale_bits: e4m3, four_over_six: true}
        num_bits: e2m1
    - quantizer_name: '*mixer.experts.*input_quantizer'
      enable: true
      cfg:
        block_sizes: {-1: 16, type: dynamic, scale_bits: e4m3}
        num_bits: e2m1
    - quantizer_name: '*mixer.shared_experts*'
      enable: true
      cfg: {num_bits: e4m3, axis: null}
    - quantizer_name: '*mixer.in_proj*'
      enable: true
      cfg: {num_bits: e4m3, axis: null}
    - quantizer_name: '*mixer.out_proj*'
      enable: true
      cfg: {num_bits: e4m3, axis: null}
    - quantizer_name: '*[kv]_bmm_quantizer'
      enable: true
      cfg: {num_bits: e4m3}
)";

class RecipeNemotronUltra : public ::testing::Test {
protected:
    Recipe r_ = load_recipe_text(kUltra, "nvfp4-4o6.yaml");
    QuantizerAttributes at(const std::string& name, std::string_view kind = "nn.Linear") const {
        return resolve(r_, name, kind);
    }
};

TEST_F(RecipeNemotronUltra, Loads) {
    EXPECT_EQ(r_.rules.size(), 7u);
    EXPECT_TRUE(r_.warnings.empty());
    ASSERT_EQ(r_.algorithms.size(), 1u);
    const Algorithm& a = r_.algorithms[0];
    EXPECT_EQ(a.method, "mse");
    EXPECT_FALSE(a.flag("fp8_scale_sweep", true));
    EXPECT_EQ(format::mse_multipliers(mse_sweep_of(a)), (std::vector<float>{1.0f, 1.5f}));  // M=6, M=4 (spec §5.3)
    EXPECT_EQ(r_.rules[1].where.line, 6);
}

TEST_F(RecipeNemotronUltra, RoutedExpertsAreNvfp4FourOverSix) {
    for (const char* layer : {"1", "47"}) {
        for (const char* proj : {"up_proj", "down_proj"}) {
            const std::string m = std::string("backbone.layers.") + layer + ".mixer.experts.3." + proj;
            const QuantizerAttributes w = at(m + ".weight_quantizer");
            ASSERT_TRUE(w.enable) << m;
            EXPECT_TRUE(w.num_bits.is(2, 1));
            ASSERT_TRUE(w.block_sizes);
            EXPECT_EQ(w.block_sizes->size_along(-1), 16);
            EXPECT_EQ(w.block_sizes->type, BlockType::Static);
            EXPECT_TRUE(w.block_sizes->four_over_six);
            EXPECT_TRUE(w.block_sizes->scale_bits->is(4, 3));
            const QuantizerAttributes in = at(m + ".input_quantizer");
            ASSERT_TRUE(in.enable);
            EXPECT_EQ(in.block_sizes->type, BlockType::Dynamic);
            EXPECT_FALSE(in.block_sizes->four_over_six);
            EXPECT_EQ(linear_format_of(w, in, m), Format::NVFP4);
        }
    }
}

TEST_F(RecipeNemotronUltra, SharedExpertsAndMambaProjectionsAreFp8) {
    for (const char* m : {"backbone.layers.1.mixer.shared_experts.down_proj", "backbone.layers.1.mixer.shared_experts.up_proj",
                          "backbone.layers.0.mixer.in_proj", "backbone.layers.0.mixer.out_proj"}) {
        const QuantizerAttributes w = at(std::string(m) + ".weight_quantizer");
        const QuantizerAttributes in = at(std::string(m) + ".input_quantizer");
        EXPECT_TRUE(w.num_bits.is(4, 3)) << m;
        EXPECT_FALSE(w.axis) << m;  // per-tensor
        EXPECT_FALSE(w.block_sizes) << m;
        EXPECT_TRUE(in.enable) << m;
        EXPECT_EQ(weight_format_of(w, m), Format::FP8) << m;
        EXPECT_EQ(linear_format_of(w, in, m), Format::FP8) << m;
    }
}

TEST_F(RecipeNemotronUltra, KvCacheIsFp8) {
    for (const char* q : {"backbone.layers.0.mixer.k_bmm_quantizer", "backbone.layers.0.mixer.v_bmm_quantizer"}) {
        const QuantizerAttributes kv = at(q, "NemotronHAttention");
        EXPECT_TRUE(kv.enable) << q;
        EXPECT_TRUE(kv.num_bits.is(4, 3)) << q;
        EXPECT_FALSE(kv.use_constant_amax) << q;  // calibrated
        EXPECT_EQ(activation_format_of(kv, q), Format::FP8) << q;
    }
    EXPECT_FALSE(at("backbone.layers.0.mixer.q_bmm_quantizer").enable);
}

TEST_F(RecipeNemotronUltra, EverythingElseStaysBf16) {
    for (const char* q : {"lm_head.weight_quantizer", "lm_head.input_quantizer",
                          "backbone.layers.5.self_attn.q_proj.weight_quantizer",
                          "backbone.layers.5.mixer.q_proj.weight_quantizer", "backbone.layers.5.mixer.o_proj.input_quantizer",
                          "backbone.layers.1.mixer.gate.weight_quantizer", "backbone.layers.0.mixer.conv1d.weight_quantizer",
                          "backbone.layers.1.mixer.fc1_latent_proj.weight_quantizer", "mtp.layers.0.mixer.experts.0.up_proj.x",
                          "backbone.embeddings.weight_quantizer"}) {
        const QuantizerAttributes a = at(q);
        EXPECT_FALSE(a.enable) << q;
        EXPECT_EQ(weight_format_of(a, q), std::nullopt) << q;
    }
    // The '*' rule is the only one that touched them.
    EXPECT_EQ(resolve_traced(r_, "lm_head.weight_quantizer", "nn.Linear").last_rule, 0);
}

}  // namespace
}  // namespace microscale::recipe
