// CPU forward pass against transformers 5.17 (tests/golden/forward, made by
// tools/gen_forward_golden.py): tiny random models of every supported variant, fp32 eager logits
// and per-layer outputs. Tolerance: max |Δ| ≤ 1e-4 · max |golden| per sequence (fp32 both sides;
// the observed error is ~1e-6 relative). Also: RoPE frequencies, layer-at-a-time == whole model,
// batching and thread count, observer hooks, config parsing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "microscale/error.h"
#include "model/forward/config.h"
#include "model/forward/model_forward.h"
#include "model/forward/ops.h"

namespace microscale::model {
namespace {

namespace fs = std::filesystem;
constexpr double kRelTol = 1e-4;

fs::path golden_dir(const std::string& variant) {
    return fs::path(MICROSCALE_GOLDEN_DIR) / "forward" / variant;
}

// The tensors of one golden.safetensors as fp32 / int ids.
struct Golden {
    explicit Golden(const fs::path& dir) : file(io::SafetensorsFile::open(dir / "golden.safetensors")) {}
    std::vector<float> f32(const std::string& name) const {
        const io::TensorInfo* t = file.find(name);
        if (!t) throw Error("golden: no " + name);
        EXPECT_EQ(t->dtype, DType::F32) << name;
        std::vector<float> v(t->numel());
        std::memcpy(v.data(), file.bytes(*t).data(), v.size() * sizeof(float));
        return v;
    }
    std::vector<int32_t> ids(const std::string& name) const {
        const io::TensorInfo* t = file.find(name);
        if (!t) throw Error("golden: no " + name);
        std::vector<int64_t> v(t->numel());
        std::memcpy(v.data(), file.bytes(*t).data(), v.size() * sizeof(int64_t));
        return {v.begin(), v.end()};
    }
    bool has(const std::string& name) const { return file.find(name) != nullptr; }
    io::SafetensorsFile file;
};

// max |a - b| / max |b|.
double rel_err(const float* a, const float* b, size_t n) {
    double diff = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; ++i) {
        diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
        scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
    }
    return scale > 0 ? diff / scale : diff;
}

TokenSequences golden_sequences(const Golden& g) {
    return {g.ids("ids.0"), g.ids("ids.1")};
}

const char* const kVariants[] = {"llama_default", "llama_tied",  "llama_bias",   "llama_llama3",
                                 "llama_linear",  "llama_dynamic", "llama_yarn", "mistral_swa",
                                 "qwen2",         "qwen2_yarn",  "qwen3",        "phi3_partial"};

class ForwardGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(ForwardGolden, LogitsAndLayerOutputsMatchTransformers) {
    const fs::path dir = golden_dir(GetParam());
    ModelForward m(dir, 2);
    const Golden g(dir);
    const TokenSequences seqs = golden_sequences(g);
    const TokenBatch batch = m.batch_of(seqs);
    const int64_t H = m.config().hidden, V = m.config().vocab;

    // Layer by layer, checking every layer's output against the hooked transformers output.
    std::vector<float> hidden = m.embed(seqs);
    for (int l = 0; l < m.config().layers; ++l) {
        m.run_layer(m.load_layer(l), batch, hidden);
        for (int64_t s = 0; s < batch.sequences(); ++s) {
            const std::vector<float> want = g.f32("hidden." + std::to_string(l) + "." + std::to_string(s));
            const int64_t r0 = batch.offsets[static_cast<size_t>(s)];
            ASSERT_EQ(want.size(), static_cast<size_t>((batch.offsets[static_cast<size_t>(s) + 1] - r0) * H));
            EXPECT_LE(rel_err(hidden.data() + r0 * H, want.data(), want.size()), kRelTol)
                << "layer " << l << " seq " << s;
        }
    }
    m.final_norm(hidden);
    const std::vector<float> logits = m.lm_head(hidden, batch.tokens());
    for (int64_t s = 0; s < batch.sequences(); ++s) {
        const std::vector<float> want = g.f32("logits." + std::to_string(s));
        const int64_t r0 = batch.offsets[static_cast<size_t>(s)];
        ASSERT_EQ(want.size(), seqs[static_cast<size_t>(s)].size() * static_cast<size_t>(V));
        const double e = rel_err(logits.data() + r0 * V, want.data(), want.size());
        EXPECT_LE(e, kRelTol) << GetParam() << " seq " << s;
        RecordProperty("rel_err_seq" + std::to_string(s), std::to_string(e));
        std::printf("[ %s ] seq %lld: max|dlogit|/max|logit| = %.2e\n", GetParam(),
                    static_cast<long long>(s), e);
    }
    // The one-call path is the same computation.
    EXPECT_EQ(m.forward(seqs), logits);
}

TEST_P(ForwardGolden, RopeFrequenciesMatchTransformers) {
    const fs::path dir = golden_dir(GetParam());
    const ForwardConfig c = parse_forward_config(load_config_json(dir / "config.json"), "config.json");
    const Golden g(dir);
    const int64_t T = static_cast<int64_t>(g.ids("ids.0").size());
    const RopeFrequencies f = rope_frequencies(c.rope, c.rotary_dim, c.max_position_embeddings, T);
    const std::vector<float> want = g.f32("inv_freq");
    ASSERT_EQ(f.inv_freq.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i)
        EXPECT_NEAR(f.inv_freq[i], want[i], 2e-6 * std::fabs(want[i])) << "i=" << i;
    EXPECT_NEAR(f.attention_scaling, g.f32("attention_scaling")[0], 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Variants, ForwardGolden, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param); });

// Each row of a batch depends only on its own sequence, and the thread count changes nothing.
TEST(ForwardBatch, BatchedEqualsSingleSequencesAndThreadCountsAgree) {
    const fs::path dir = golden_dir("mistral_swa");
    const Golden g(dir);
    const TokenSequences seqs = golden_sequences(g);
    ModelForward m1(dir, 1), m2(dir, 2);
    const std::vector<float> batched = m2.forward(seqs);
    const std::vector<float> one_thread = m1.forward(seqs);
    EXPECT_LE(rel_err(one_thread.data(), batched.data(), batched.size()), 1e-6);
    const int64_t V = m1.config().vocab;
    int64_t row = 0;
    for (const auto& s : seqs) {
        const std::vector<float> alone = m2.forward({s});
        EXPECT_LE(rel_err(alone.data(), batched.data() + row * V, alone.size()), 1e-6);
        row += static_cast<int64_t>(s.size());
    }
}

// Records what the hooks see.
struct Recorder : LayerObserver {
    struct Seen {
        std::string name;
        Role role;
        int64_t rows, cols;
        std::vector<float> data;
    };
    std::vector<Seen> inputs;
    std::vector<std::vector<float>> keys, values;
    int64_t kv_rows = 0, kv_cols = 0;
    void linear_input(const LinearWeights& l, const float* x, int64_t rows, int64_t ld) override {
        Seen s{l.name, l.role, rows, l.in, {}};
        for (int64_t r = 0; r < rows; ++r) s.data.insert(s.data.end(), x + r * ld, x + r * ld + l.in);
        inputs.push_back(std::move(s));
    }
    void key_values(int, const float* k, const float* v, int64_t rows, int64_t cols, int64_t ld) override {
        kv_rows = rows;
        kv_cols = cols;
        std::vector<float> kk, vv;
        for (int64_t r = 0; r < rows; ++r) {
            kk.insert(kk.end(), k + r * ld, k + r * ld + cols);
            vv.insert(vv.end(), v + r * ld, v + r * ld + cols);
        }
        keys.push_back(std::move(kk));
        values.push_back(std::move(vv));
    }
};

TEST(ForwardHooks, SeeEveryLinearInputAndPostRopeKeyValues) {
    const fs::path dir = golden_dir("llama_default");
    const Golden g(dir);
    const TokenSequences seqs = golden_sequences(g);
    ModelForward m(dir, 2);
    const ForwardConfig& c = m.config();
    const TokenBatch batch = m.batch_of(seqs);
    const int64_t T = batch.tokens(), H = c.hidden;

    std::vector<float> hidden = m.embed(seqs);
    const std::vector<float> embedded = hidden;
    const DecoderLayerWeights w0 = m.load_layer(0);
    Recorder rec;
    m.run_layer(w0, batch, hidden, &rec);

    // One call per linear of the layer, in order, with [tokens, in] inputs.
    ASSERT_EQ(rec.inputs.size(), w0.linears.size());
    for (size_t i = 0; i < w0.linears.size(); ++i) {
        EXPECT_EQ(rec.inputs[i].name, w0.linears[i].name);
        EXPECT_EQ(rec.inputs[i].rows, T);
        EXPECT_EQ(rec.inputs[i].cols, w0.linears[i].in);
    }
    EXPECT_EQ(rec.inputs[0].name, "model.layers.0.self_attn.q_proj");
    EXPECT_EQ(rec.inputs[3].role, Role::ATTN_O);
    EXPECT_EQ(rec.inputs.back().role, Role::MLP_DOWN);
    EXPECT_EQ(rec.inputs.back().cols, c.intermediate);

    // q_proj's input is RMSNorm(embeddings) (computed here in double) and transformers' q_proj input.
    const std::vector<float>& q_in = rec.inputs[0].data;
    double worst = 0.0;
    for (int64_t t = 0; t < T; ++t) {
        double ms = 0.0;
        for (int64_t i = 0; i < H; ++i) ms += double(embedded[t * H + i]) * embedded[t * H + i];
        const double r = 1.0 / std::sqrt(ms / double(H) + c.rms_norm_eps);
        for (int64_t i = 0; i < H; ++i)
            worst = std::max(worst, std::fabs(q_in[t * H + i] - w0.input_norm[i] * embedded[t * H + i] * r));
    }
    EXPECT_LE(worst, 1e-5);
    for (int64_t s = 0; s < 2; ++s) {
        const std::vector<float> hf = g.f32("attn_in.0." + std::to_string(s));
        EXPECT_LE(rel_err(q_in.data() + batch.offsets[s] * H, hf.data(), hf.size()), 1e-5);
    }
    // k and v are k_proj/v_proj of that input; RoPE only rotates pairs, so each (j, j+d/2) pair of
    // the post-RoPE key keeps the norm of the pre-RoPE pair (attention factor 1 here).
    ASSERT_EQ(rec.kv_rows, T);
    ASSERT_EQ(rec.kv_cols, c.kv_dim());
    const LinearWeights& wk = w0.at(Role::ATTN_K);
    const LinearWeights& wv = w0.at(Role::ATTN_V);
    const int64_t d = c.head_dim, half = c.rotary_dim / 2;
    double v_err = 0.0, k_err = 0.0, k_moved = 0.0;
    for (int64_t t = 0; t < T; ++t) {
        std::vector<double> kp(static_cast<size_t>(c.kv_dim()));
        for (int64_t o = 0; o < c.kv_dim(); ++o) {
            double sk = 0.0, sv = 0.0;
            for (int64_t i = 0; i < H; ++i) {
                sk += double(q_in[t * H + i]) * wk.weight[o * H + i];
                sv += double(q_in[t * H + i]) * wv.weight[o * H + i];
            }
            kp[o] = sk;
            v_err = std::max(v_err, std::fabs(sv - rec.values[0][t * c.kv_dim() + o]));
        }
        for (int64_t h = 0; h < c.kv_heads; ++h)
            for (int64_t j = 0; j < half; ++j) {
                const int64_t a = h * d + j, b = a + half;
                const double n_pre = std::hypot(kp[a], kp[b]);
                const float* kr = rec.keys[0].data() + t * c.kv_dim();
                k_err = std::max(k_err, std::fabs(n_pre - std::hypot(double(kr[a]), double(kr[b]))));
                k_moved = std::max(k_moved, std::fabs(kp[a] - kr[a]));
            }
    }
    EXPECT_LE(v_err, 1e-4);
    EXPECT_LE(k_err, 1e-4);
    EXPECT_GT(k_moved, 1e-2);  // the keys really were rotated
}

TEST(ForwardHooks, FusedPhi3ShowsOneQkvAndOneGateUpInput) {
    const fs::path dir = golden_dir("phi3_partial");
    ModelForward m(dir, 1);
    const Golden g(dir);
    const TokenSequences seqs = golden_sequences(g);
    std::vector<float> hidden = m.embed(seqs);
    Recorder rec;
    m.run_layer(m.load_layer(1), m.batch_of(seqs), hidden, &rec);
    ASSERT_EQ(rec.inputs.size(), 4u);
    EXPECT_EQ(rec.inputs[0].name, "model.layers.1.self_attn.qkv_proj");
    EXPECT_EQ(rec.inputs[0].role, Role::ATTN_QKV);
    EXPECT_EQ(rec.inputs[2].role, Role::MLP_GATE_UP);
    EXPECT_EQ(rec.kv_cols, m.config().kv_dim());
}

// The layout publishes what the forward pass reads: biases on the linears, norms by role, and
// phi3's fused projections as single linears without fused groups.
TEST(ForwardLayout, BiasesNormsAndFusedPhi3) {
    ModelForward bias(golden_dir("llama_bias"), 1);
    int with_bias = 0;
    for (const LinearModule& m : bias.layout().linears)
        if (!m.bias.empty()) {
            EXPECT_EQ(m.bias, m.name + ".bias");
            ++with_bias;
        }
    EXPECT_EQ(with_bias, 2 * 7);  // q, k, v, o, gate, up, down per layer
    EXPECT_EQ(bias.layout().norms.size(), 2u * 2 + 1);
    ModelForward q3(golden_dir("qwen3"), 1);
    EXPECT_EQ(q3.layout().norms.size(), 2u * 4 + 1);
    ModelForward phi(golden_dir("phi3_partial"), 1);
    EXPECT_EQ(phi.layout().architecture, "phi3");
    EXPECT_TRUE(phi.layout().groups.empty());
    EXPECT_EQ(phi.layout().linears.size(), 1u + 2 * 4 + 1);
    ASSERT_EQ(phi.layout().attentions.size(), 2u);
    EXPECT_EQ(phi.layout().attentions[0].k_proj, -1);
    EXPECT_EQ(phi.config().rotary_dim, 8);
}

// --- config parsing -------------------------------------------------------------------------

nlohmann::json base_config(const std::string& type) {
    return {{"model_type", type},           {"hidden_size", 64},   {"intermediate_size", 128},
            {"num_hidden_layers", 3},       {"num_attention_heads", 4}, {"num_key_value_heads", 2},
            {"vocab_size", 100},            {"max_position_embeddings", 512}};
}

std::string error_of(const nlohmann::json& c) {
    try {
        parse_forward_config(c, "cfg.json");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(ForwardConfig, LegacyRopeScalingEqualsRopeParameters) {
    nlohmann::json legacy = base_config("qwen2");
    legacy["rope_theta"] = 1e6;
    legacy["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 128}};
    nlohmann::json v5 = base_config("qwen2");
    v5["rope_parameters"] = {{"rope_type", "yarn"}, {"rope_theta", 1e6}, {"factor", 4.0},
                             {"original_max_position_embeddings", 128}};
    const RopeConfig a = parse_forward_config(legacy, "a").rope, b = parse_forward_config(v5, "b").rope;
    EXPECT_EQ(a.type, RopeType::YARN);
    EXPECT_EQ(b.type, RopeType::YARN);
    EXPECT_EQ(a.theta, 1e6);
    EXPECT_EQ(b.theta, 1e6);
    EXPECT_EQ(a.factor, b.factor);
    EXPECT_EQ(a.original_max_position_embeddings, 128);
    EXPECT_TRUE(a.truncate);
    EXPECT_EQ(rope_frequencies(a, 16, 512, 10).inv_freq, rope_frequencies(b, 16, 512, 10).inv_freq);
}

TEST(ForwardConfig, DefaultsAndWindows) {
    nlohmann::json c = base_config("llama");
    ForwardConfig f = parse_forward_config(c, "c");
    EXPECT_EQ(f.head_dim, 16);
    EXPECT_EQ(f.rotary_dim, 16);
    EXPECT_EQ(f.rope.type, RopeType::DEFAULT);
    EXPECT_EQ(f.rope.theta, 10000.0);
    c["sliding_window"] = 4;  // llama has no sliding window
    EXPECT_EQ(parse_forward_config(c, "c").sliding_window, (std::vector<int64_t>{0, 0, 0}));
    c["model_type"] = "mistral";
    EXPECT_EQ(parse_forward_config(c, "c").sliding_window, (std::vector<int64_t>{4, 4, 4}));
    c["model_type"] = "qwen2";
    c["use_sliding_window"] = true;
    c["max_window_layers"] = 1;
    EXPECT_EQ(parse_forward_config(c, "c").sliding_window, (std::vector<int64_t>{0, 4, 4}));
    c["layer_types"] = {"sliding_attention", "full_attention", "full_attention"};
    EXPECT_EQ(parse_forward_config(c, "c").sliding_window, (std::vector<int64_t>{4, 0, 0}));
    nlohmann::json q3 = base_config("qwen3");
    EXPECT_EQ(parse_forward_config(q3, "c").head_dim, 128);  // Qwen3Config default
    EXPECT_TRUE(parse_forward_config(q3, "c").qk_norm);
    nlohmann::json phi = base_config("phi3");
    phi["partial_rotary_factor"] = 0.75;
    EXPECT_EQ(parse_forward_config(phi, "c").rotary_dim, 12);
    EXPECT_FLOAT_EQ(parse_forward_config(phi, "c").rms_norm_eps, 1e-5f);
}

TEST(ForwardConfig, ErrorsNameTheKey) {
    nlohmann::json c = base_config("llama");
    c.erase("hidden_size");
    EXPECT_NE(error_of(c).find("'hidden_size' is missing"), std::string::npos) << error_of(c);
    c = base_config("gemma");
    EXPECT_NE(error_of(c).find("supported: llama, mistral, phi3, qwen2, qwen3"), std::string::npos)
        << error_of(c);
    c = base_config("llama");
    c["rope_parameters"] = {{"rope_type", "ntk-by-parts"}, {"rope_theta", 1e4}};
    EXPECT_NE(error_of(c).find("'rope_parameters.rope_type'"), std::string::npos) << error_of(c);
    c["rope_parameters"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
    EXPECT_NE(error_of(c).find("'rope_parameters.low_freq_factor' is missing"), std::string::npos)
        << error_of(c);
    c.erase("rope_parameters");
    c["rope_scaling"] = {{"type", "longrope"}};
    EXPECT_NE(error_of(c).find("longrope"), std::string::npos) << error_of(c);
    c.erase("rope_scaling");
    c["hidden_act"] = "gelu";
    EXPECT_NE(error_of(c).find("'hidden_act'"), std::string::npos) << error_of(c);
    c = base_config("llama");
    c["num_key_value_heads"] = 3;
    EXPECT_NE(error_of(c).find("'num_key_value_heads'"), std::string::npos) << error_of(c);
    c = base_config("llama");
    c["rope_scaling"] = {{"rope_type", "linear"}};
    EXPECT_NE(error_of(c).find("'rope_scaling.factor' is missing"), std::string::npos) << error_of(c);
}

TEST(ForwardModel, BadTokenIdIsAnError) {
    ModelForward m(golden_dir("llama_tied"), 1);
    try {
        m.forward({{1, 2, 3}, {4, 500}});
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("sequence 1, position 1"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace microscale::model
