// Model layouts: the Llama family (llama tied/untied, mistral head_dim, qwen2 biases, qwen3 q/k
// norms) on synthetic checkpoints, the generic fallback, and every way a checkpoint can disagree
// with its config.json.
#include <gtest/gtest.h>

#include <algorithm>

#include "model/layout.h"
#include "model/model_test_util.h"
#include "model/synthetic.h"

namespace microscale::model {
namespace {

using testing::decls_of;
using testing::describe_dir;
using testing::describe_error;
using testing::expect_accounted_once;
using testing::find_linear;
using testing::read_json;
using testing::TempDir;
using testing::write_checkpoint;
using testing::write_json;

SyntheticSpec small(std::string type = "llama") {
    SyntheticSpec s;
    s.model_type = std::move(type);
    s.hidden = 64, s.layers = 3, s.heads = 4, s.kv_heads = 2, s.ffn = 96, s.vocab = 128;
    s.threads = 1;
    return s;
}

struct Described {
    TempDir dir;
    ModelLayout layout;
};

// Writes `spec` under a temp dir and describes it, checking the accounting on the way.
void describe_synthetic(const SyntheticSpec& spec, Described& d) {
    write_synthetic_llama(d.dir.path() / "m", spec);
    const auto dir = d.dir.path() / "m";
    d.layout = describe_dir(dir);
    expect_accounted_once(d.layout, io::Checkpoint::open(dir));
}

void expect_linear(const ModelLayout& l, const std::string& name, Role role, int layer, int64_t out,
                   int64_t in, const char* cls = "nn.Linear") {
    const int i = find_linear(l, name);
    ASSERT_GE(i, 0) << name;
    const LinearModule& m = l.linears[static_cast<size_t>(i)];
    EXPECT_EQ(m.role, role) << name;
    EXPECT_EQ(m.weight, name + ".weight");
    EXPECT_EQ(m.module_class, cls) << name;
    EXPECT_EQ(m.layer, layer) << name;
    EXPECT_EQ(m.out_features, out) << name;
    EXPECT_EQ(m.in_features, in) << name;
}

std::vector<std::string> member_names(const ModelLayout& l, const FusedGroup& g) {
    std::vector<std::string> out;
    for (int m : g.members) out.push_back(l.linears[static_cast<size_t>(m)].name);
    return out;
}

// The q/k/v and gate/up groups of every layer, members in order, back-linked from the linears.
void expect_llama_groups(const ModelLayout& l, int layers) {
    ASSERT_EQ(l.groups.size(), static_cast<size_t>(2 * layers));
    for (int i = 0; i < layers; ++i) {
        const std::string p = "model.layers." + std::to_string(i) + ".";
        const FusedGroup& qkv = l.groups[static_cast<size_t>(2 * i)];
        const FusedGroup& gu = l.groups[static_cast<size_t>(2 * i + 1)];
        EXPECT_EQ(qkv.kind, "qkv");
        EXPECT_EQ(member_names(l, qkv), (std::vector<std::string>{p + "self_attn.q_proj", p + "self_attn.k_proj",
                                                                  p + "self_attn.v_proj"}));
        EXPECT_EQ(gu.kind, "gate_up");
        EXPECT_EQ(member_names(l, gu), (std::vector<std::string>{p + "mlp.gate_proj", p + "mlp.up_proj"}));
        for (size_t g = 0; g < l.groups.size(); ++g)
            for (int m : l.groups[g].members) EXPECT_EQ(l.linears[static_cast<size_t>(m)].group, static_cast<int>(g));
        EXPECT_EQ(l.linears[static_cast<size_t>(find_linear(l, p + "self_attn.o_proj"))].group, -1);
        EXPECT_EQ(l.linears[static_cast<size_t>(find_linear(l, p + "mlp.down_proj"))].group, -1);
    }
}

void expect_attentions(const ModelLayout& l, int layers, const std::string& cls) {
    ASSERT_EQ(l.attentions.size(), static_cast<size_t>(layers));
    for (int i = 0; i < layers; ++i) {
        const AttentionModule& a = l.attentions[static_cast<size_t>(i)];
        const std::string name = "model.layers." + std::to_string(i) + ".self_attn";
        EXPECT_EQ(a.name, name);
        EXPECT_EQ(a.module_class, cls);
        EXPECT_EQ(a.layer, i);
        EXPECT_EQ(l.linears.at(static_cast<size_t>(a.k_proj)).name, name + ".k_proj");
        EXPECT_EQ(l.linears.at(static_cast<size_t>(a.v_proj)).name, name + ".v_proj");
    }
}

TEST(ModelLayoutLlama, UntiedSynthetic) {
    Described d;
    describe_synthetic(small(), d);
    const ModelLayout& l = d.layout;
    EXPECT_EQ(l.model_type, "llama");
    EXPECT_EQ(l.architecture, "llama");
    EXPECT_FALSE(l.generic_fallback);
    ASSERT_EQ(l.linears.size(), 1u + 3 * 7 + 1);
    EXPECT_EQ(l.linears.front().name, "model.embed_tokens");
    expect_linear(l, "model.embed_tokens", Role::EMBED, -1, 128, 64, "nn.Embedding");
    expect_linear(l, "model.layers.1.self_attn.q_proj", Role::ATTN_Q, 1, 64, 64);
    expect_linear(l, "model.layers.1.self_attn.k_proj", Role::ATTN_K, 1, 32, 64);
    expect_linear(l, "model.layers.1.self_attn.v_proj", Role::ATTN_V, 1, 32, 64);
    expect_linear(l, "model.layers.1.self_attn.o_proj", Role::ATTN_O, 1, 64, 64);
    expect_linear(l, "model.layers.2.mlp.gate_proj", Role::MLP_GATE, 2, 96, 64);
    expect_linear(l, "model.layers.2.mlp.up_proj", Role::MLP_UP, 2, 96, 64);
    expect_linear(l, "model.layers.2.mlp.down_proj", Role::MLP_DOWN, 2, 64, 96);
    EXPECT_EQ(l.linears.back().name, "lm_head");
    expect_linear(l, "lm_head", Role::LM_HEAD, -1, 128, 64);
    expect_llama_groups(l, 3);
    expect_attentions(l, 3, "LlamaAttention");
    // Norms only: 2 per layer + final.
    EXPECT_EQ(l.passthrough.size(), 7u);
    EXPECT_NE(std::find(l.passthrough.begin(), l.passthrough.end(), "model.norm.weight"), l.passthrough.end());
}

TEST(ModelLayoutLlama, TiedHasLmHeadModuleWithoutWeight) {
    SyntheticSpec s = small();
    s.tied = true;
    Described d;
    describe_synthetic(s, d);
    const int head = find_linear(d.layout, "lm_head");
    ASSERT_GE(head, 0);
    const LinearModule& m = d.layout.linears[static_cast<size_t>(head)];
    EXPECT_TRUE(m.weight.empty());
    EXPECT_EQ(m.role, Role::LM_HEAD);
    EXPECT_EQ(m.module_class, "nn.Linear");
    EXPECT_EQ(m.out_features, 128);
    EXPECT_EQ(m.in_features, 64);
}

TEST(ModelLayoutLlama, TiedButStoredLmHeadIsPassthrough) {
    TempDir t;
    write_synthetic_llama(t / "m", small());
    auto decls = decls_of(t / "m");
    nlohmann::json cfg = read_json(t / "m/config.json");
    cfg["tie_word_embeddings"] = true;
    write_checkpoint(t / "x", cfg, decls);
    const ModelLayout l = describe_dir(t / "x");
    expect_accounted_once(l, io::Checkpoint::open(t / "x"));
    EXPECT_TRUE(l.linears[static_cast<size_t>(find_linear(l, "lm_head"))].weight.empty());
    EXPECT_NE(std::find(l.passthrough.begin(), l.passthrough.end(), "lm_head.weight"), l.passthrough.end());
}

TEST(ModelLayoutLlama, RotaryInvFreqBuffersArePassthrough) {
    TempDir t;
    write_synthetic_llama(t / "m", small());
    auto decls = decls_of(t / "m");
    decls.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", DType::F32, {8}});
    write_checkpoint(t / "x", read_json(t / "m/config.json"), decls);
    const ModelLayout l = describe_dir(t / "x");
    expect_accounted_once(l, io::Checkpoint::open(t / "x"));
}

TEST(ModelLayoutLlama, AttentionAndMlpBiasFromConfig) {
    TempDir t;
    write_synthetic_llama(t / "m", small());
    auto decls = decls_of(t / "m");
    nlohmann::json cfg = read_json(t / "m/config.json");
    cfg["attention_bias"] = true;
    cfg["mlp_bias"] = true;
    // Without the biases on disk: the first expected one is named.
    write_checkpoint(t / "a", cfg, decls);
    EXPECT_CONTAINS(describe_error(t / "a"), "'model.layers.0.self_attn.q_proj.bias' is missing");
    for (int i = 0; i < 3; ++i) {
        const std::string p = "model.layers." + std::to_string(i) + ".";
        for (auto [n, len] : std::vector<std::pair<const char*, int64_t>>{
                 {"self_attn.q_proj.bias", 64}, {"self_attn.k_proj.bias", 32}, {"self_attn.v_proj.bias", 32},
                 {"self_attn.o_proj.bias", 64}, {"mlp.gate_proj.bias", 96}, {"mlp.up_proj.bias", 96},
                 {"mlp.down_proj.bias", 64}})
            decls.push_back({p + n, DType::BF16, {len}});
    }
    write_checkpoint(t / "b", cfg, decls);
    const ModelLayout l = describe_dir(t / "b");
    expect_accounted_once(l, io::Checkpoint::open(t / "b"));
    EXPECT_EQ(l.passthrough.size(), 7u + 21u);
}

TEST(ModelLayoutMistral, HeadDimOverride) {
    SyntheticSpec s = small("mistral");
    s.head_dim = 32;  // nh * d = 128 != hidden 64, as Mistral-Nemo
    Described d;
    describe_synthetic(s, d);
    const ModelLayout& l = d.layout;
    EXPECT_EQ(l.architecture, "mistral");
    expect_linear(l, "model.layers.0.self_attn.q_proj", Role::ATTN_Q, 0, 128, 64);
    expect_linear(l, "model.layers.0.self_attn.k_proj", Role::ATTN_K, 0, 64, 64);
    expect_linear(l, "model.layers.0.self_attn.o_proj", Role::ATTN_O, 0, 64, 128);
    expect_llama_groups(l, 3);
    expect_attentions(l, 3, "MistralAttention");
}

TEST(ModelLayoutMistral, HeadDimMismatchNamesTensorAndShapes) {
    SyntheticSpec s = small("mistral");
    s.head_dim = 32;
    TempDir t;
    write_synthetic_llama(t / "m", s);
    nlohmann::json cfg = read_json(t / "m/config.json");
    cfg.erase("head_dim");  // now d = 64 / 4 = 16
    write_json(t / "m/config.json", cfg);
    const std::string e = describe_error(t / "m");
    EXPECT_CONTAINS(e, "model.layers.0.self_attn.q_proj.weight");
    EXPECT_CONTAINS(e, "[128, 64]");
    EXPECT_CONTAINS(e, "expected [64, 64]");
    EXPECT_CONTAINS(e, "head_dim=16");
}

TEST(ModelLayoutQwen2, QkvBiasesArePassthrough) {
    Described d;
    describe_synthetic(small("qwen2"), d);
    const ModelLayout& l = d.layout;
    EXPECT_EQ(l.architecture, "qwen2");
    expect_attentions(l, 3, "Qwen2Attention");
    expect_llama_groups(l, 3);
    EXPECT_EQ(l.passthrough.size(), 7u + 9u);
    for (const char* b : {"q_proj.bias", "k_proj.bias", "v_proj.bias"})
        EXPECT_NE(std::find(l.passthrough.begin(), l.passthrough.end(), std::string("model.layers.1.self_attn.") + b),
                  l.passthrough.end())
            << b;
}

TEST(ModelLayoutQwen2, MissingBiasIsNamed) {
    TempDir t;
    write_synthetic_llama(t / "m", small("qwen2"));
    auto decls = decls_of(t / "m");
    std::erase_if(decls, [](const io::TensorDecl& d) { return d.name == "model.layers.2.self_attn.k_proj.bias"; });
    write_checkpoint(t / "x", read_json(t / "m/config.json"), decls);
    const std::string e = describe_error(t / "x");
    EXPECT_CONTAINS(e, "'model.layers.2.self_attn.k_proj.bias' is missing");
    EXPECT_CONTAINS(e, "[32]");
}

TEST(ModelLayoutQwen3, QkNormsArePassthrough) {
    SyntheticSpec s = small("qwen3");
    s.head_dim = 32;
    Described d;
    describe_synthetic(s, d);
    const ModelLayout& l = d.layout;
    EXPECT_EQ(l.architecture, "qwen3");
    expect_attentions(l, 3, "Qwen3Attention");
    expect_llama_groups(l, 3);
    EXPECT_EQ(l.passthrough.size(), 7u + 6u);
    EXPECT_EQ(find_linear(l, "model.layers.0.self_attn.q_norm"), -1);
    EXPECT_NE(std::find(l.passthrough.begin(), l.passthrough.end(), "model.layers.0.self_attn.k_norm.weight"),
              l.passthrough.end());
    expect_linear(l, "model.layers.0.self_attn.q_proj", Role::ATTN_Q, 0, 128, 64);
}

TEST(ModelLayoutQwen3, QNormWrongShapeIsNamed) {
    SyntheticSpec s = small("qwen3");
    s.head_dim = 32;
    TempDir t;
    write_synthetic_llama(t / "m", s);
    auto decls = decls_of(t / "m");
    for (auto& d : decls)
        if (d.name == "model.layers.1.self_attn.q_norm.weight") d.shape = {16};
    write_checkpoint(t / "x", read_json(t / "m/config.json"), decls);
    const std::string e = describe_error(t / "x");
    EXPECT_CONTAINS(e, "'model.layers.1.self_attn.q_norm.weight' has shape [16], expected [32]");
}

TEST(ModelLayoutErrors, MissingTensorNamed) {
    TempDir t;
    write_synthetic_llama(t / "m", small());
    auto decls = decls_of(t / "m");
    std::erase_if(decls, [](const io::TensorDecl& d) { return d.name == "model.layers.2.mlp.up_proj.weight"; });
    write_checkpoint(t / "x", read_json(t / "m/config.json"), decls);
    const std::string e = describe_error(t / "x");
    EXPECT_CONTAINS(e, "'model.layers.2.mlp.up_proj.weight' is missing; expected shape [96, 64]");
    EXPECT_CONTAINS(e, "config.json");
}

TEST(ModelLayoutErrors, ShapeContradictingConfigNamed) {
    TempDir t;
    write_synthetic_llama(t / "m", small());
    nlohmann::json cfg = read_json(t / "m/config.json");
    cfg["intermediate_size"] = 100;
    write_json(t / "m/config.json", cfg);
    const std::string e = describe_error(t / "m");
    EXPECT_CONTAINS(e, "'model.layers.0.mlp.gate_proj.weight' has shape [96, 64], expected [100, 64]");
    EXPECT_CONTAINS(e, "intermediate_size=100");

    cfg["intermediate_size"] = 96;
    cfg["num_key_value_heads"] = 4;
    write_json(t / "m/config.json", cfg);
    EXPECT_CONTAINS(describe_error(t / "m"), "'model.layers.0.self_attn.k_proj.weight' has shape [32, 64], expected [64, 64]");

    cfg["num_key_value_heads"] = 2;
    cfg["hidden_size"] = 128;
    write_json(t / "m/config.json", cfg);
    EXPECT_CONTAINS(describe_error(t / "m"), "'model.embed_tokens.weight' has shape [128, 64], expected [128, 128]");
}

TEST(ModelLayoutErrors, UnexpectedTensorNamed) {
    TempDir t;
    write_synthetic_llama(t / "m", small());
    auto decls = decls_of(t / "m");
    decls.push_back({"model.layers.0.mlp.extra_proj.weight", DType::BF16, {4, 64}});
    write_checkpoint(t / "x", read_json(t / "m/config.json"), decls);
    EXPECT_CONTAINS(describe_error(t / "x"), "unexpected tensor 'model.layers.0.mlp.extra_proj.weight' [4, 64]");

    // More layers on disk than config.json says.
    nlohmann::json cfg = read_json(t / "m/config.json");
    cfg["num_hidden_layers"] = 2;
    write_json(t / "m/config.json", cfg);
    const std::string e = describe_error(t / "m");
    EXPECT_CONTAINS(e, "unexpected tensor 'model.layers.2.");
    EXPECT_CONTAINS(e, "num_hidden_layers=2");
}

TEST(ModelLayoutErrors, QuantizedWeightDtypeNamed) {
    TempDir t;
    write_synthetic_llama(t / "m", small());
    auto decls = decls_of(t / "m");
    for (auto& d : decls)
        if (d.name == "model.layers.1.self_attn.v_proj.weight") d.dtype = DType::U8;
    write_checkpoint(t / "x", read_json(t / "m/config.json"), decls);
    EXPECT_CONTAINS(describe_error(t / "x"), "'model.layers.1.self_attn.v_proj.weight' has dtype U8");
}

TEST(ModelLayoutErrors, BadConfigNamesKey) {
    TempDir t;
    write_synthetic_llama(t / "m", small());
    const nlohmann::json good = read_json(t / "m/config.json");
    auto with = [&](auto edit) {
        nlohmann::json c = good;
        edit(c);
        write_json(t / "m/config.json", c);
        return describe_error(t / "m");
    };
    EXPECT_CONTAINS(with([](nlohmann::json& c) { c.erase("hidden_size"); }), "missing 'hidden_size'");
    EXPECT_CONTAINS(with([](nlohmann::json& c) { c["hidden_size"] = "64"; }), "'hidden_size' must be an integer");
    EXPECT_CONTAINS(with([](nlohmann::json& c) { c["num_attention_heads"] = -4; }), "'num_attention_heads' = -4");
    EXPECT_CONTAINS(with([](nlohmann::json& c) { c["num_key_value_heads"] = 3; }), "num_attention_heads=4 is not a multiple of num_key_value_heads=3");
    EXPECT_CONTAINS(with([](nlohmann::json& c) { c["tie_word_embeddings"] = 1; }), "'tie_word_embeddings' must be true or false");
    EXPECT_CONTAINS(with([](nlohmann::json& c) { c.erase("model_type"); }), "'model_type'");
    EXPECT_CONTAINS(with([](nlohmann::json& c) { c["hidden_size"] = 1ull << 40; }), "out of range");
}

TEST(ModelLayoutErrors, ConfigFileErrorsNameFile) {
    TempDir t;
    std::ofstream(t / "config.json") << "{ not json";
    try {
        load_config_json(t / "config.json");
        FAIL();
    } catch (const Error& e) {
        EXPECT_CONTAINS(e.what(), "config.json: not valid JSON");
    }
    std::ofstream(t / "array.json") << "[1, 2]";
    EXPECT_THROW(load_config_json(t / "array.json"), Error);
    EXPECT_THROW(load_config_json(t / "absent.json"), Error);
}

// --- generic fallback -----------------------------------------------------------------------

std::vector<io::TensorDecl> generic_tensors() {
    const DType b = DType::BF16;
    std::vector<io::TensorDecl> d = {{"model.embed_tokens.weight", b, {100, 32}}};
    for (int i = 0; i < 2; ++i) {
        const std::string p = "model.layers." + std::to_string(i) + ".";
        d.push_back({p + "ln_1.weight", b, {32}});
        d.push_back({p + "attn.q_proj.weight", b, {32, 32}});
        d.push_back({p + "attn.q_proj.bias", b, {32}});
        d.push_back({p + "attn.k_proj.weight", b, {16, 32}});
        d.push_back({p + "attn.v_proj.weight", b, {16, 32}});
        d.push_back({p + "attn.o_proj.weight", b, {32, 32}});
        d.push_back({p + "attn.q_layernorm.weight", b, {1, 32}});  // a 2-D norm is still a norm
        d.push_back({p + "mlp.gate_proj.weight", b, {64, 32}});
        d.push_back({p + "mlp.up_proj.weight", b, {64, 32}});
        d.push_back({p + "mlp.down_proj.weight", b, {32, 64}});
        d.push_back({p + "moe.router.weight", b, {2, 32}});
        for (int e = 0; e < 2; ++e) {
            const std::string x = p + "moe.experts." + std::to_string(e) + ".";
            d.push_back({x + "w1.weight", b, {48, 32}});
            d.push_back({x + "w2.weight", b, {32, 48}});
            d.push_back({x + "w3.weight", b, {48, 32}});
        }
        d.push_back({p + "moe.fused_experts.weight", b, {2, 48, 32}});  // 3-D: not a linear
    }
    d.push_back({"model.final_norm.weight", b, {32}});
    d.push_back({"lm_head.weight", b, {100, 32}});
    return d;
}

nlohmann::json generic_config() {
    return {{"model_type", "foo_lm"}, {"architectures", {"FooForCausalLM"}}, {"hidden_size", 32}};
}

TEST(ModelLayoutGeneric, UnknownTypeFallsBack) {
    TempDir t;
    write_checkpoint(t.path(), generic_config(), generic_tensors());
    const ModelLayout l = describe_dir(t.path());
    expect_accounted_once(l, io::Checkpoint::open(t.path()));
    EXPECT_TRUE(l.generic_fallback);
    EXPECT_EQ(l.architecture, "generic");
    EXPECT_EQ(l.model_type, "foo_lm");
    // embed + 2 x (4 attn + 3 mlp + router + 6 experts) + lm_head
    EXPECT_EQ(l.linears.size(), 1u + 2 * 14 + 1);
    expect_linear(l, "model.embed_tokens", Role::EMBED, -1, 100, 32, "nn.Embedding");
    expect_linear(l, "lm_head", Role::LM_HEAD, -1, 100, 32);
    expect_linear(l, "model.layers.1.attn.k_proj", Role::LINEAR_OTHER, 1, 16, 32);
    expect_linear(l, "model.layers.1.moe.router", Role::LINEAR_OTHER, 1, 2, 32);
    expect_linear(l, "model.layers.0.moe.experts.1.w2", Role::LINEAR_OTHER, 0, 32, 48);
    EXPECT_EQ(find_linear(l, "model.layers.0.attn.q_layernorm"), -1);
    for (const char* p : {"model.layers.0.ln_1.weight", "model.layers.0.attn.q_proj.bias",
                          "model.layers.0.attn.q_layernorm.weight", "model.layers.0.moe.fused_experts.weight",
                          "model.final_norm.weight"})
        EXPECT_NE(std::find(l.passthrough.begin(), l.passthrough.end(), p), l.passthrough.end()) << p;

    // Per layer: qkv, gate_up, and w1_w3 per expert; in model order.
    ASSERT_EQ(l.groups.size(), 2u * 4);
    std::vector<std::pair<std::string, std::vector<std::string>>> got;
    for (const auto& g : l.groups) got.emplace_back(g.kind, member_names(l, g));
    const std::string p = "model.layers.1.";
    EXPECT_EQ(got[4], (std::pair<std::string, std::vector<std::string>>{
                          "qkv", {p + "attn.q_proj", p + "attn.k_proj", p + "attn.v_proj"}}));
    EXPECT_EQ(got[5], (std::pair<std::string, std::vector<std::string>>{
                          "gate_up", {p + "mlp.gate_proj", p + "mlp.up_proj"}}));
    EXPECT_EQ(got[7], (std::pair<std::string, std::vector<std::string>>{
                          "w1_w3", {p + "moe.experts.1.w1", p + "moe.experts.1.w3"}}));
    for (size_t g = 0; g < l.groups.size(); ++g)
        for (int m : l.groups[g].members) EXPECT_EQ(l.linears[static_cast<size_t>(m)].group, static_cast<int>(g));

    ASSERT_EQ(l.attentions.size(), 2u);
    EXPECT_EQ(l.attentions[1].name, "model.layers.1.attn");
    EXPECT_EQ(l.attentions[1].module_class, "FooAttention");
    EXPECT_EQ(l.attentions[1].layer, 1);
    EXPECT_EQ(l.linears[static_cast<size_t>(l.attentions[1].v_proj)].name, "model.layers.1.attn.v_proj");
}

TEST(ModelLayoutGeneric, TiedCausalLmGetsLmHeadModule) {
    auto decls = generic_tensors();
    decls.pop_back();  // no lm_head.weight
    TempDir t;
    write_checkpoint(t.path(), generic_config(), decls);
    ModelLayout l = describe_dir(t.path());
    int head = find_linear(l, "lm_head");
    ASSERT_GE(head, 0);
    EXPECT_TRUE(l.linears[static_cast<size_t>(head)].weight.empty());
    EXPECT_EQ(l.linears[static_cast<size_t>(head)].out_features, 100);

    nlohmann::json cfg = generic_config();
    cfg["tie_word_embeddings"] = false;  // a headless model: no module invented
    write_json(t / "config.json", cfg);
    l = describe_dir(t.path());
    EXPECT_EQ(find_linear(l, "lm_head"), -1);
}

TEST(ModelLayoutGeneric, NoLinearWeightsIsAnError) {
    TempDir t;
    write_checkpoint(t.path(), generic_config(),
                     {{"model.embed_tokens.weight", DType::BF16, {100, 32}},
                      {"model.norm.weight", DType::BF16, {32}},
                      {"lm_head.weight", DType::BF16, {100, 32}}});
    const std::string e = describe_error(t.path());
    EXPECT_CONTAINS(e, "unknown model_type 'foo_lm'");
    EXPECT_CONTAINS(e, "no linear weights");
    EXPECT_CONTAINS(e, "llama, mistral, phi3, qwen2, qwen3");
}

TEST(ModelLayoutGeneric, AgreesWithLlamaTableOnALlamaCheckpoint) {
    Described d;
    describe_synthetic(small(), d);
    const auto dir = d.dir.path() / "m";
    nlohmann::json cfg = read_json(dir / "config.json");
    cfg["model_type"] = "llama_like";
    write_json(dir / "config.json", cfg);
    const ModelLayout g = describe_dir(dir);
    EXPECT_TRUE(g.generic_fallback);
    ASSERT_EQ(g.linears.size(), d.layout.linears.size());
    std::vector<std::string> a, b;
    for (const auto& m : g.linears) a.push_back(m.weight + "/" + m.module_class + "/" + std::to_string(m.layer));
    for (const auto& m : d.layout.linears) b.push_back(m.weight + "/" + m.module_class + "/" + std::to_string(m.layer));
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    EXPECT_EQ(a, b);
    ASSERT_EQ(g.groups.size(), d.layout.groups.size());
    for (size_t i = 0; i < g.groups.size(); ++i) {
        EXPECT_EQ(g.groups[i].kind, d.layout.groups[i].kind);
        EXPECT_EQ(member_names(g, g.groups[i]), member_names(d.layout, d.layout.groups[i]));
    }
    ASSERT_EQ(g.attentions.size(), 3u);
    EXPECT_EQ(g.attentions[2].name, "model.layers.2.self_attn");
    EXPECT_EQ(g.attentions[2].module_class, "LlamaAttention");  // from LlamaForCausalLM
    EXPECT_EQ(g.passthrough, d.layout.passthrough);
}

TEST(ModelLayoutRegistry, SupportedTypesAndRoleNames) {
    EXPECT_EQ(supported_model_types(), (std::vector<std::string>{"llama", "mistral", "phi3", "qwen2", "qwen3"}));
    EXPECT_EQ(role_name(Role::ATTN_Q), "attn_q");
    EXPECT_EQ(role_name(Role::MLP_GATE_UP), "mlp_gate_up");
    EXPECT_EQ(role_name(Role::LINEAR_OTHER), "linear_other");
}

}  // namespace
}  // namespace microscale::model
