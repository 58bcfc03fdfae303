// Every built-in preset loads and resolves as spec §5.9 says on a Llama-like set of quantizers.
#include <gtest/gtest.h>

#include <map>

#include "microscale/error.h"
#include "recipe/recipe.h"

namespace microscale::recipe {
namespace {

const std::vector<std::string> kLinears = {
    "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.v_proj",
    "model.layers.0.self_attn.o_proj", "model.layers.0.mlp.gate_proj",    "model.layers.0.mlp.up_proj",
    "model.layers.0.mlp.down_proj",    "lm_head"};

// Format per Llama linear, "bf16" when unquantized, "error" when no format fits.
std::map<std::string, std::string> llama_plan(const Recipe& r) {
    std::map<std::string, std::string> plan;
    for (const std::string& m : kLinears) {
        try {
            const auto f = linear_format_of(resolve(r, m + ".weight_quantizer", "nn.Linear"),
                                            resolve(r, m + ".input_quantizer", "nn.Linear"), m);
            plan[m] = f ? std::string(format_info(*f).name) : "bf16";
        } catch (const Error&) {
            plan[m] = "error";
        }
    }
    const QuantizerAttributes emb = resolve(r, "model.embed_tokens.weight_quantizer", "nn.Embedding");
    plan["model.embed_tokens"] = emb.enable ? "on" : "bf16";
    return plan;
}

std::map<std::string, std::string> uniform(const std::string& body, const std::string& head = "bf16") {
    std::map<std::string, std::string> plan;
    for (const std::string& m : kLinears) plan[m] = body;
    plan["lm_head"] = head;
    plan["model.embed_tokens"] = "bf16";
    return plan;
}

TEST(RecipePresets, RequiredPresetsExist) {
    for (const char* name : {"NVFP4_DEFAULT_CFG", "W4A16_NVFP4_CFG", "NVFP4_W4A4_WEIGHT_MSE_FP8_SWEEP_CFG",
                             "NVFP4_FOUR_OVER_SIX_CFG", "NVFP4_MLP_ONLY_CFG", "NVFP4_EXPERTS_ONLY_CFG", "NVFP4_OMLP_ONLY_CFG",
                             "FP8_DEFAULT_CFG", "MXFP4_DEFAULT_CFG", "MXFP8_DEFAULT_CFG", "FP8_KV_CFG", "NVFP4_KV_CFG"})
        EXPECT_NE(find_preset(name), nullptr) << name;
}

TEST(RecipePresets, EveryPresetAndBuiltinLoads) {
    for (const PresetInfo& p : presets()) {
        const Recipe r = load_preset(p.name);
        EXPECT_EQ(r.name, p.name);
        EXPECT_FALSE(r.description.empty()) << p.name;
        EXPECT_FALSE(r.rules.empty()) << p.name;
        EXPECT_TRUE(r.warnings.empty()) << p.name;
        EXPECT_NE(builtin_file(p.path), std::nullopt) << p.name;
    }
    for (std::string_view path : builtin_paths()) EXPECT_NE(builtin_file(path), std::nullopt);
}

TEST(RecipePresets, ResolveOnLlamaNames) {
    EXPECT_EQ(llama_plan(load_preset("NVFP4_DEFAULT_CFG")), uniform("nvfp4"));
    EXPECT_EQ(llama_plan(load_preset("W4A16_NVFP4_CFG")), uniform("w4a16_nvfp4"));
    EXPECT_EQ(llama_plan(load_preset("NVFP4_W4A4_WEIGHT_MSE_FP8_SWEEP_CFG")), uniform("nvfp4"));
    EXPECT_EQ(llama_plan(load_preset("NVFP4_W4A4_WEIGHT_LOCAL_HESSIAN_CFG")), uniform("nvfp4"));
    EXPECT_EQ(llama_plan(load_preset("NVFP4_FOUR_OVER_SIX_CFG")), uniform("nvfp4"));
    EXPECT_EQ(llama_plan(load_preset("FP8_DEFAULT_CFG")), uniform("fp8"));
    EXPECT_EQ(llama_plan(load_preset("MXFP4_DEFAULT_CFG")), uniform("mxfp4"));
    EXPECT_EQ(llama_plan(load_preset("MXFP8_DEFAULT_CFG")), uniform("mxfp8"));
    EXPECT_EQ(llama_plan(load_preset("NVFP4_EXPERTS_ONLY_CFG")), uniform("bf16"));
    EXPECT_EQ(llama_plan(load_preset("W4A8_NVFP4_FP8_CFG")), uniform("error"));

    auto mlp_only = uniform("bf16");
    for (const char* m : {"model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj"})
        mlp_only[m] = "nvfp4";
    EXPECT_EQ(llama_plan(load_preset("NVFP4_MLP_ONLY_CFG")), mlp_only);
    auto omlp = mlp_only;
    omlp["model.layers.0.self_attn.o_proj"] = "nvfp4";
    EXPECT_EQ(llama_plan(load_preset("NVFP4_OMLP_ONLY_CFG")), omlp);
    auto mx_mlp = uniform("bf16");
    for (const char* m : {"model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj"})
        mx_mlp[m] = "mxfp4";
    EXPECT_EQ(llama_plan(load_preset("MXFP4_MLP_WEIGHT_ONLY_CFG")), mx_mlp);
}

TEST(RecipePresets, Algorithms) {
    EXPECT_EQ(describe(load_preset("NVFP4_DEFAULT_CFG").algorithms.at(0)), "max");
    EXPECT_EQ(describe(load_preset("NVFP4_W4A4_WEIGHT_MSE_FP8_SWEEP_CFG").algorithms.at(0)), "mse {fp8_scale_sweep: true}");
    EXPECT_EQ(describe(load_preset("NVFP4_FOUR_OVER_SIX_CFG").algorithms.at(0)),
              "mse {fp8_scale_sweep: false, start_multiplier: 1, stop_multiplier: 1.5, step_size: 0.5}");
    EXPECT_EQ(load_preset("NVFP4_W4A4_WEIGHT_LOCAL_HESSIAN_CFG").algorithms.at(0).method, "local_hessian");
    EXPECT_TRUE(load_preset("MXFP4_DEFAULT_CFG").algorithms.empty());
    EXPECT_TRUE(load_preset("MXFP8_DEFAULT_CFG").algorithms.empty());
    EXPECT_EQ(load_preset("NVFP4_AWQ_FULL_CFG").algorithms.at(0).number("alpha_step", 0), 0.1);
}

TEST(RecipePresets, WeightNumerics) {
    const std::string w = "model.layers.0.mlp.up_proj.weight_quantizer";
    const std::string in = "model.layers.0.mlp.up_proj.input_quantizer";
    const QuantizerAttributes dyn = resolve(load_preset("NVFP4_DEFAULT_CFG"), w, "nn.Linear");
    EXPECT_EQ(dyn.block_sizes->type, BlockType::Dynamic);
    EXPECT_EQ(dyn.effective_bits, 4.5);
    const QuantizerAttributes st = resolve(load_preset("NVFP4_W4A4_WEIGHT_MSE_FP8_SWEEP_CFG"), w, "nn.Linear");
    EXPECT_EQ(st.block_sizes->type, BlockType::Static);
    EXPECT_FALSE(st.block_sizes->four_over_six);
    EXPECT_FALSE(st.effective_bits);
    const Recipe fos = load_preset("NVFP4_FOUR_OVER_SIX_CFG");
    EXPECT_TRUE(resolve(fos, w, "nn.Linear").block_sizes->four_over_six);
    EXPECT_EQ(resolve(fos, w, "nn.Linear").block_sizes->type, BlockType::Static);
    EXPECT_EQ(resolve(fos, in, "nn.Linear").block_sizes->type, BlockType::Dynamic);
    EXPECT_FALSE(resolve(fos, in, "nn.Linear").block_sizes->four_over_six);
    const QuantizerAttributes mx = resolve(load_preset("MXFP4_DEFAULT_CFG"), w, "nn.Linear");
    EXPECT_TRUE(mx.block_sizes->scale_bits->is(8, 0));
    EXPECT_EQ(mx.block_sizes->size_along(-1), 32);
}

TEST(RecipePresets, DefaultDisabledList) {
    const Recipe r = load_preset("NVFP4_DEFAULT_CFG");
    ASSERT_EQ(r.rules.size(), 1u + 2u + 23u);
    EXPECT_EQ(r.rules.front().quantizer_name, "*");
    EXPECT_EQ(r.rules.front().enable, false);
    EXPECT_EQ(r.rules.back().parent_class, "nn.Embedding");
    for (const char* q : {"model.layers.0.block_sparse_moe.gate.weight_quantizer", "model.layers.0.mlp.gate.weight_quantizer",
                          "model.layers.0.mlp.shared_expert_gate.weight_quantizer", "model.layers.0.mlp.router.weight_quantizer",
                          "model.layers.0.linear_attn.conv1d.weight_quantizer", "model.layers.0.linear_attn.in_proj_a.weight_quantizer",
                          "backbone.layers.0.mixer.conv1d.input_quantizer", "output_layer.weight_quantizer",
                          "output.weight_quantizer", "mtp.layers.0.eh_proj.weight_quantizer", "model.proj_out.weight_quantizer",
                          "model.visual.blocks.0.attn.qkv.weight_quantizer", "vision_tower.encoder.fc1.weight_quantizer",
                          "model.multi_modal_projector.linear_1.weight_quantizer", "model.embed_vision.proj.weight_quantizer"})
        EXPECT_FALSE(resolve(r, q, "nn.Linear").enable) << q;
    // Not caught by the list: a Llama mlp.gate_proj, an MoE expert, a nested "output" module.
    for (const char* q : {"model.layers.0.mlp.gate_proj.weight_quantizer", "model.layers.0.mlp.experts.3.up_proj.weight_quantizer",
                          "model.layers.0.attn.output.dense.weight_quantizer"})
        EXPECT_TRUE(resolve(r, q, "nn.Linear").enable) << q;
}

TEST(RecipePresets, ExpertsOnMoeNames) {
    const Recipe experts = load_preset("NVFP4_EXPERTS_ONLY_CFG");
    EXPECT_EQ(weight_format_of(resolve(experts, "model.layers.0.mlp.experts.3.up_proj.weight_quantizer", "nn.Linear")),
              Format::NVFP4);
    EXPECT_TRUE(resolve(experts, "model.layers.0.block_sparse_moe.experts.3.w1.input_quantizer", "nn.Linear").enable);
    EXPECT_FALSE(resolve(experts, "model.layers.0.block_sparse_moe.gate.weight_quantizer", "nn.Linear").enable);
    EXPECT_FALSE(resolve(experts, "model.layers.0.mlp.shared_expert.up_proj.weight_quantizer", "nn.Linear").enable);
    const Recipe omlp = load_preset("NVFP4_OMLP_ONLY_CFG");  // no experts unit, but *mlp* covers mlp.experts
    EXPECT_TRUE(resolve(omlp, "model.layers.0.mlp.experts.3.up_proj.weight_quantizer", "nn.Linear").enable);
    EXPECT_FALSE(resolve(omlp, "backbone.layers.0.mixer.experts.3.up_proj.weight_quantizer", "nn.Linear").enable);
    EXPECT_TRUE(resolve(load_preset("NVFP4_MLP_ONLY_CFG"), "backbone.layers.0.mixer.experts.3.up_proj.weight_quantizer", "nn.Linear").enable);
    EXPECT_TRUE(resolve(omlp, "backbone.layers.0.mixer.up_proj.weight_quantizer", "nn.Linear").enable);
}

}  // namespace
}  // namespace microscale::recipe
