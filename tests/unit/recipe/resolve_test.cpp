// Rule precedence (spec §6.1): later rules win, enable-only rules toggle, cfg rules replace fully.
#include <gtest/gtest.h>

#include "microscale/error.h"
#include "recipe/recipe.h"

namespace microscale::recipe {
namespace {

Recipe from(std::string_view yaml) { return load_recipe_text(yaml, "test.yaml"); }

TEST(RecipeResolve, UnmatchedKeepsModelOptDefaults) {
    const Recipe r = from("quantize: {quant_cfg: [{quantizer_name: '*weight_quantizer', enable: false}]}");
    const Resolution res = resolve_traced(r, "model.layers.0.mlp.up_proj.input_quantizer", "nn.Linear");
    EXPECT_EQ(res.last_rule, -1);
    EXPECT_EQ(res.cfg_rule, -1);
    EXPECT_TRUE(res.attrs.enable);  // ModelOpt's QuantizerAttributeConfig: enabled int8
    EXPECT_EQ(res.attrs.num_bits, NumBits::integer(8));
    EXPECT_FALSE(res.attrs.axis);
    EXPECT_THROW(weight_format_of(res.attrs, "x.weight_quantizer"), Error);
}

TEST(RecipeResolve, LaterRulesWinAndCfgReplacesFully) {
    const Recipe r = from(R"(
quantize:
  quant_cfg:
    - quantizer_name: '*'
      enable: false
    - quantizer_name: '*weight_quantizer'
      cfg: {num_bits: e2m1, block_sizes: {-1: 16, type: dynamic, scale_bits: e4m3}, effective_bits: 4.5}
    - quantizer_name: '*down_proj.weight_quantizer'
      cfg: {num_bits: e4m3}
)");
    const QuantizerAttributes up = resolve(r, "model.layers.0.mlp.up_proj.weight_quantizer", "nn.Linear");
    EXPECT_TRUE(up.enable);
    EXPECT_TRUE(up.num_bits.is(2, 1));
    ASSERT_TRUE(up.block_sizes);
    EXPECT_EQ(up.block_sizes->size_along(-1), 16);
    EXPECT_EQ(up.block_sizes->type, BlockType::Dynamic);
    EXPECT_EQ(up.effective_bits, 4.5);
    EXPECT_EQ(weight_format_of(up), Format::NVFP4);

    // The later cfg replaces everything: no blocks, no effective_bits survive from rule 1.
    const Resolution down = resolve_traced(r, "model.layers.0.mlp.down_proj.weight_quantizer", "nn.Linear");
    EXPECT_EQ(down.cfg_rule, 2);
    EXPECT_TRUE(down.attrs.num_bits.is(4, 3));
    EXPECT_FALSE(down.attrs.block_sizes);
    EXPECT_FALSE(down.attrs.effective_bits);
    EXPECT_EQ(weight_format_of(down.attrs), Format::FP8);

    const QuantizerAttributes in = resolve(r, "model.layers.0.mlp.up_proj.input_quantizer", "nn.Linear");
    EXPECT_FALSE(in.enable);
    EXPECT_FALSE(weight_format_of(in));
}

TEST(RecipeResolve, EnableOnlyTogglesKeepAttributes) {
    const Recipe r = from(R"(
quantize:
  quant_cfg:
    - {quantizer_name: '*', enable: false}
    - {quantizer_name: '*weight_quantizer', cfg: {num_bits: e4m3, axis: null}}
    - {quantizer_name: '*lm_head*', enable: false}
    - {quantizer_name: 'lm_head.weight_quantizer', enable: true}
    - {quantizer_name: '*o_proj*', cfg: {num_bits: e2m1, block_sizes: {-1: 16, type: static, scale_bits: e4m3}}, enable: false}
    - {quantizer_name: '*o_proj.weight_quantizer', enable: true}
)");
    // Disabled then re-enabled: the FP8 attributes from rule 1 come back.
    const Resolution head = resolve_traced(r, "lm_head.weight_quantizer", "nn.Linear");
    EXPECT_TRUE(head.attrs.enable);
    EXPECT_TRUE(head.attrs.num_bits.is(4, 3));
    EXPECT_EQ(head.cfg_rule, 1);
    EXPECT_EQ(head.last_rule, 3);
    // cfg + enable:false replaces and disables; a later toggle enables the replaced attributes.
    const QuantizerAttributes o = resolve(r, "model.layers.0.self_attn.o_proj.weight_quantizer", "nn.Linear");
    EXPECT_TRUE(o.enable);
    EXPECT_TRUE(o.num_bits.is(2, 1));
    EXPECT_EQ(o.block_sizes->type, BlockType::Static);
    const QuantizerAttributes oi = resolve(r, "model.layers.0.self_attn.o_proj.input_quantizer", "nn.Linear");
    EXPECT_FALSE(oi.enable);
    EXPECT_TRUE(oi.num_bits.is(2, 1));
}

TEST(RecipeResolve, EnableTrueOnDefaultsGivesInt8) {
    const Recipe r = from("quant_cfg: [{quantizer_name: '*', enable: false}, {quantizer_name: '*q_proj*', enable: true}]");
    const QuantizerAttributes q = resolve(r, "m.q_proj.weight_quantizer", "nn.Linear");
    EXPECT_TRUE(q.enable);
    EXPECT_EQ(q.num_bits, NumBits::integer(8));
}

TEST(RecipeResolve, ParentClassMatchesModuleKind) {
    const Recipe r = load_preset("NVFP4_DEFAULT_CFG");
    EXPECT_FALSE(resolve(r, "model.embed_tokens.weight_quantizer", "nn.Embedding").enable);
    // Without the module kind the parent_class rule cannot apply and the glob rules decide.
    EXPECT_TRUE(resolve(r, "model.embed_tokens.weight_quantizer", "nn.Linear").enable);
    EXPECT_FALSE(resolve(r, "model.layers.0.bn.weight_quantizer", "nn.BatchNorm2d").enable);
}

TEST(RecipeResolve, FusedExpertListNamesMatchSingularGlobs) {
    const Recipe r = from(R"(
quant_cfg:
  - {quantizer_name: '*', enable: false}
  - {quantizer_name: '*mlp.experts*weight_quantizer', cfg: {num_bits: e4m3}}
)");
    EXPECT_TRUE(resolve(r, "model.layers.0.mlp.experts.gate_up_proj_weight_quantizers.3", "").enable);
    EXPECT_FALSE(resolve(r, "model.layers.0.mlp.experts.gate_up_proj_input_quantizers.3", "").enable);
}

TEST(RecipeResolve, LinearFormat) {
    const Recipe w4a4 = load_preset("NVFP4_DEFAULT_CFG");
    const Recipe w4a16 = load_preset("W4A16_NVFP4_CFG");
    const Recipe fp8 = load_preset("FP8_DEFAULT_CFG");
    const Recipe w4a8 = load_preset("W4A8_NVFP4_FP8_CFG");
    auto fmt_of = [](const Recipe& r, const std::string& m) {
        return linear_format_of(resolve(r, m + ".weight_quantizer", "nn.Linear"),
                                resolve(r, m + ".input_quantizer", "nn.Linear"), m);
    };
    const std::string m = "model.layers.0.mlp.up_proj";
    EXPECT_EQ(fmt_of(w4a4, m), Format::NVFP4);
    EXPECT_EQ(fmt_of(w4a16, m), Format::W4A16_NVFP4);
    EXPECT_EQ(fmt_of(fp8, m), Format::FP8);
    EXPECT_EQ(fmt_of(w4a4, "lm_head"), std::nullopt);
    EXPECT_TRUE(quantizes_activations(resolve(w4a4, m + ".input_quantizer", "nn.Linear")));
    EXPECT_FALSE(quantizes_activations(resolve(w4a16, m + ".input_quantizer", "nn.Linear")));
    try {
        (void)fmt_of(w4a8, m);
        FAIL() << "W4A8 (NVFP4 bs32 weights) has no microscale format";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("up_proj.weight_quantizer"), std::string::npos) << e.what();
    }
}

TEST(RecipeResolve, ClassifierRejectsWhatWeCannotWrite) {
    const Recipe r = from(R"(
quant_cfg:
  - {quantizer_name: 'int4', cfg: {num_bits: 4, block_sizes: {-1: 128}}}
  - {quantizer_name: 'fp8ch', cfg: {num_bits: e4m3, axis: 0}}
  - {quantizer_name: 'nvfp4_32', cfg: {num_bits: e2m1, block_sizes: {-1: 32, type: dynamic, scale_bits: e4m3}}}
  - {quantizer_name: 'mx4', cfg: {num_bits: e2m1, block_sizes: {-1: 32, type: dynamic, scale_bits: e8m0}}}
  - {quantizer_name: 'mx8', cfg: {num_bits: e4m3, block_sizes: {-1: 32, type: dynamic, scale_bits: e8m0}}}
  - {quantizer_name: 'rot', cfg: {num_bits: e4m3, rotate: true}}
)");
    for (const char* bad : {"int4", "fp8ch", "nvfp4_32", "rot"}) {
        try {
            (void)weight_format_of(resolve(r, bad, ""), bad);
            ADD_FAILURE() << bad << " should not classify";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
        }
    }
    EXPECT_EQ(weight_format_of(resolve(r, "mx4", "")), Format::MXFP4);
    EXPECT_EQ(weight_format_of(resolve(r, "mx8", "")), Format::MXFP8);
}

TEST(RecipeResolve, EffectiveBitsAsModelOptCostsThem) {
    // spec §8 table.
    EXPECT_DOUBLE_EQ(autoquant_effective_bits(load_preset("NVFP4_DEFAULT_CFG")), 4.5);
    EXPECT_DOUBLE_EQ(autoquant_effective_bits(load_preset("W4A16_NVFP4_CFG")), 4.5);
    EXPECT_DOUBLE_EQ(autoquant_effective_bits(load_preset("FP8_DEFAULT_CFG")), 8.0);
    EXPECT_DOUBLE_EQ(autoquant_effective_bits(load_preset("MXFP4_DEFAULT_CFG")), 4.0);
    EXPECT_DOUBLE_EQ(autoquant_effective_bits(load_preset("NVFP4_W4A4_WEIGHT_MSE_FP8_SWEEP_CFG")), 4.0);
    EXPECT_DOUBLE_EQ(autoquant_effective_bits(load_preset("NVFP4_FOUR_OVER_SIX_CFG")), 4.0);
    EXPECT_DOUBLE_EQ(autoquant_effective_bits(from("effective_bits: 6.0\nquant_cfg: [{quantizer_name: '*', enable: false}]")), 6.0);
    EXPECT_DOUBLE_EQ(autoquant_effective_bits(from("quant_cfg: [{quantizer_name: '*', enable: false}]")), 16.0);
}

TEST(RecipeResolve, MseMultipliers) {
    const Recipe d = from("algorithm: mse\nquant_cfg: [{quantizer_name: '*', enable: false}]");
    const std::vector<float> m = format::mse_multipliers(mse_sweep_of(d.algorithms.at(0)));
    ASSERT_EQ(m.size(), 39u);  // ceil(3.75 / 0.1) + 1
    EXPECT_EQ(m.front(), 0.25f);
    EXPECT_EQ(m.back(), 4.0f);
    EXPECT_NEAR(m[1] - m[0], 3.75 / 38, 1e-7);
    const std::vector<float> fos = format::mse_multipliers(mse_sweep_of(load_preset("NVFP4_FOUR_OVER_SIX_CFG").algorithms.at(0)));
    EXPECT_EQ(fos, (std::vector<float>{1.0f, 1.5f}));
}

TEST(RecipeResolve, AppendRulesMergesKvUnit) {
    const Recipe r = load_recipe("NVFP4_DEFAULT_CFG+FP8_KV_CFG");
    EXPECT_EQ(r.algorithms.at(0).method, "max");
    const QuantizerAttributes k = resolve(r, "model.layers.0.self_attn.k_bmm_quantizer", "LlamaAttention");
    EXPECT_EQ(activation_format_of(k), Format::FP8);
    EXPECT_FALSE(resolve(load_preset("NVFP4_DEFAULT_CFG"), "model.layers.0.self_attn.k_bmm_quantizer", "").enable);
    const QuantizerAttributes kv4 = resolve(load_recipe("NVFP4_DEFAULT_CFG+NVFP4_KV_CFG"), "x.self_attn.v_bmm_quantizer", "");
    EXPECT_EQ(activation_format_of(kv4), Format::NVFP4);
}

}  // namespace
}  // namespace microscale::recipe
