// hf_quant_config.json / quantization_config / exclude_modules against the examples of spec
// nvfp4-modelopt.md §4.2-4.3, field by field.
#include <gtest/gtest.h>

#include "export/modelopt_config.h"

using namespace microscale;
using namespace microscale::exporter;

namespace {
std::vector<LayerQuant> llama_layers(std::optional<Format> f, int layers = 2) {
    std::vector<LayerQuant> v{{"model.embed_tokens", std::nullopt}};
    for (int i = 0; i < layers; ++i)
        for (const char* m : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                              "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"})
            v.push_back({"model.layers." + std::to_string(i) + "." + m, f});
    v.push_back({"lm_head", std::nullopt});
    return v;
}
}  // namespace

TEST(ExcludeModules, SpecExamples) {
    EXPECT_EQ(summarize_exclude_modules({"lm_head", "model.embed_tokens"}, {"model.layers.0.mlp.up_proj"}),
              (std::vector<std::string>{"lm_head", "model.embed_tokens"}));
    // A whole unquantized subtree collapses to its prefix wildcard.
    EXPECT_EQ(summarize_exclude_modules({"model.visual.blocks.0.attn", "model.visual.blocks.1.attn"},
                                        {"model.layers.0.mlp.up_proj"}),
              (std::vector<std::string>{"model.visual*"}));
    // A sibling of a quantized module stays exact.
    EXPECT_EQ(summarize_exclude_modules({"model.layers.0.mlp.gate"}, {"model.layers.0.mlp.up_proj"}),
              (std::vector<std::string>{"model.layers.0.mlp.gate"}));
    // test_export.py style: linears.0 unquantized next to linears.1 quantized.
    EXPECT_EQ(summarize_exclude_modules({"linears.0"}, {"linears.1"}), (std::vector<std::string>{"linears.0"}));
    // Pair form: "layers.1" is a prefix of quantized "layers.10", so `layers.1*` is forbidden but
    // {layers.1, layers.1.*} is not.
    EXPECT_EQ(summarize_exclude_modules({"layers.1.a", "layers.1.b"}, {"layers.10.a"}),
              (std::vector<std::string>{"layers.1", "layers.1.*"}));
}

TEST(HfQuantConfig, DenseNvfp4WithFp8Kv) {
    const auto j = build_hf_quant_config(llama_layers(Format::NVFP4), std::string("FP8"));
    const auto& q = j.at("quantization");
    EXPECT_EQ(q.at("quant_algo"), "NVFP4");
    EXPECT_EQ(q.at("kv_cache_quant_algo"), "FP8");
    EXPECT_EQ(q.at("group_size"), 16);
    EXPECT_EQ(q.at("exclude_modules"), (std::vector<std::string>{"lm_head", "model.embed_tokens"}));
    // vLLM requires these keys, in this order after quant_algo (spec §4.2, ecosystem §6.1).
    std::vector<std::string> keys;
    for (const auto& [k, v] : q.items()) keys.push_back(k);
    EXPECT_EQ(keys, (std::vector<std::string>{"quant_algo", "kv_cache_quant_algo", "group_size", "exclude_modules"}));
    EXPECT_EQ(j.at("producer").at("name"), "microscale");

    const auto c = build_quantization_config(j);
    EXPECT_EQ(c.at("quant_method"), "modelopt");
    EXPECT_EQ(c.at("quant_algo"), "NVFP4");
    EXPECT_EQ(c.at("ignore"), (std::vector<std::string>{"lm_head", "model.embed_tokens"}));
    const auto& g = c.at("config_groups").at("group_0");
    EXPECT_EQ(g.at("weights").dump(), R"({"dynamic":false,"num_bits":4,"type":"float","group_size":16})");
    EXPECT_EQ(g.at("input_activations").dump(), R"({"dynamic":false,"num_bits":4,"type":"float","group_size":16})");
    EXPECT_EQ(g.at("targets"), (std::vector<std::string>{"Linear"}));
    EXPECT_EQ(c.at("kv_cache_scheme").dump(), R"({"dynamic":false,"num_bits":8,"type":"float"})");
}

TEST(HfQuantConfig, W4A16HasOnlyWeightsAndNullKv) {
    const auto j = build_hf_quant_config(llama_layers(Format::W4A16_NVFP4), std::nullopt);
    EXPECT_EQ(j.at("quantization").at("quant_algo"), "W4A16_NVFP4");
    EXPECT_TRUE(j.at("quantization").at("kv_cache_quant_algo").is_null());
    const auto c = build_quantization_config(j);
    EXPECT_FALSE(c.at("config_groups").at("group_0").contains("input_activations"));
    EXPECT_FALSE(c.contains("kv_cache_scheme"));
}

TEST(HfQuantConfig, MixedPrecision) {
    std::vector<LayerQuant> layers{{"backbone.layers.0.mixer.in_proj", Format::FP8},
                                   {"backbone.layers.1.mixer.experts.0.up_proj", Format::NVFP4},
                                   {"backbone.layers.1.mixer.experts.0.down_proj", Format::NVFP4},
                                   {"backbone.layers.0.mixer.out_proj", Format::FP8},
                                   {"lm_head", std::nullopt}};
    const auto j = build_hf_quant_config(layers, std::string("FP8"));
    const auto& q = j.at("quantization");
    EXPECT_EQ(q.at("quant_algo"), "MIXED_PRECISION");
    EXPECT_FALSE(q.contains("exclude_modules"));
    EXPECT_EQ(q.at("quantized_layers").at("backbone.layers.0.mixer.in_proj").dump(), R"({"quant_algo":"FP8"})");
    EXPECT_EQ(q.at("quantized_layers").at("backbone.layers.1.mixer.experts.0.up_proj").dump(),
              R"({"quant_algo":"NVFP4","group_size":16})");
    EXPECT_FALSE(q.at("quantized_layers").contains("lm_head"));
    const auto c = build_quantization_config(j);
    EXPECT_EQ(c.at("config_groups").at("group_0").at("targets"),
              (std::vector<std::string>{"backbone.layers.0.mixer.in_proj", "backbone.layers.0.mixer.out_proj"}));
    EXPECT_EQ(c.at("config_groups").at("group_1").at("weights").at("num_bits"), 4);
    EXPECT_EQ(c.at("ignore"), ordered_json::array());
    EXPECT_TRUE(c.contains("quantized_layers"));
}
