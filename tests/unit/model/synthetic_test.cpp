// The synthetic checkpoint generator: files and config, determinism (seed, threads, sharding),
// weight statistics that make quantization realistic, target sizes, and its errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>

#include "format/codec/bf16.h"
#include "format/codec/fp16.h"
#include "model/model_test_util.h"
#include "model/synthetic.h"

namespace microscale::model {
namespace {

using testing::describe_dir;
using testing::expect_accounted_once;
using testing::read_json;
using testing::TempDir;

SyntheticSpec small() {
    SyntheticSpec s;
    s.hidden = 128, s.layers = 2, s.heads = 4, s.kv_heads = 2, s.ffn = 320, s.vocab = 256;
    s.seed = 7;
    s.threads = 1;
    return s;
}

std::string file_bytes(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

// A tensor as floats, [rows, cols].
std::vector<float> read_floats(const io::Checkpoint& c, const std::string& name) {
    const io::TensorRef& t = c.at(name);
    const auto bytes = c.bytes(t);
    std::vector<float> out(t.info->numel());
    for (size_t i = 0; i < out.size(); ++i) {
        if (t.info->dtype == DType::F32) {
            std::memcpy(&out[i], bytes.data() + 4 * i, 4);
        } else {
            uint16_t h;
            std::memcpy(&h, bytes.data() + 2 * i, 2);
            out[i] = t.info->dtype == DType::BF16 ? codec::bf16_to_float(h) : codec::fp16_to_float(h);
        }
    }
    return out;
}

TEST(SynthWrite, FilesConfigAndTensors) {
    TempDir t;
    const SyntheticResult r = write_synthetic_llama(t / "m", small());
    EXPECT_EQ(r.shards, 1u);
    EXPECT_EQ(r.tensors, 1u + 2 * 9 + 2);
    EXPECT_EQ(r.spec.head_dim, 32);
    EXPECT_TRUE(std::filesystem::exists(t / "m/model.safetensors"));
    EXPECT_TRUE(std::filesystem::exists(t / "m/generation_config.json"));
    const auto cfg = read_json(t / "m/config.json");
    EXPECT_EQ(cfg["architectures"][0], "LlamaForCausalLM");
    EXPECT_EQ(cfg["model_type"], "llama");
    EXPECT_EQ(cfg["hidden_size"], 128);
    EXPECT_EQ(cfg["intermediate_size"], 320);
    EXPECT_EQ(cfg["num_key_value_heads"], 2);
    EXPECT_EQ(cfg["torch_dtype"], "bfloat16");
    EXPECT_EQ(cfg["tie_word_embeddings"], false);
    EXPECT_TRUE(cfg.contains("rope_theta"));
    EXPECT_TRUE(cfg.contains("rms_norm_eps"));
    EXPECT_TRUE(cfg.contains("max_position_embeddings"));
    const auto c = io::Checkpoint::open(t / "m");
    uint64_t bytes = 0;
    for (const auto& x : c.tensors()) {
        EXPECT_EQ(x.info->dtype, DType::BF16) << x.info->name;
        bytes += x.info->nbytes();
    }
    EXPECT_EQ(bytes, r.data_bytes);
    EXPECT_EQ(bytes, synthetic_bytes(r.spec));
    EXPECT_EQ(c.at("model.layers.1.mlp.down_proj.weight").info->shape, (std::vector<int64_t>{128, 320}));
    expect_accounted_once(describe_dir(t / "m"), c);
}

TEST(SynthWrite, DeterministicInSeedAndThreads) {
    TempDir t;
    SyntheticSpec s = small();
    write_synthetic_llama(t / "a", s);
    s.threads = 3;
    write_synthetic_llama(t / "b", s);
    s.seed = 8;
    write_synthetic_llama(t / "c", s);
    const std::string a = file_bytes(t / "a/model.safetensors");
    EXPECT_EQ(a, file_bytes(t / "b/model.safetensors"));
    EXPECT_NE(a, file_bytes(t / "c/model.safetensors"));
    EXPECT_EQ(file_bytes(t / "a/config.json"), file_bytes(t / "b/config.json"));
}

TEST(SynthWrite, ShardedSameTensors) {
    TempDir t;
    SyntheticSpec s = small();
    write_synthetic_llama(t / "one", s);
    s.max_shard_bytes = 200'000;  // several shards
    const SyntheticResult r = write_synthetic_llama(t / "many", s);
    EXPECT_GT(r.shards, 2u);
    EXPECT_TRUE(std::filesystem::exists(t / "many/model.safetensors.index.json"));
    const auto one = io::Checkpoint::open(t / "one");
    const auto many = io::Checkpoint::open(t / "many");
    EXPECT_TRUE(many.sharded());
    ASSERT_EQ(many.tensors().size(), one.tensors().size());
    for (const auto& x : one.tensors()) {
        const auto a = one.bytes(x);
        const auto b = many.bytes(many.at(x.info->name));
        ASSERT_EQ(a.size(), b.size());
        EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size()), 0) << x.info->name;
    }
    expect_accounted_once(describe_dir(t / "many"), many);
}

TEST(SynthWrite, FamiliesAndDtypes) {
    TempDir t;
    for (const char* type : {"mistral", "qwen2", "qwen3"}) {
        SyntheticSpec s = small();
        s.model_type = type;
        s.head_dim = 48;
        s.tied = true;
        s.dtype = std::string(type) == "qwen2" ? DType::F16 : DType::F32;
        write_synthetic_llama(t / type, s);
        const auto cfg = read_json(t / type / "config.json");
        EXPECT_EQ(cfg["model_type"], type);
        EXPECT_EQ(cfg["head_dim"], 48);
        EXPECT_EQ(cfg["tie_word_embeddings"], true);
        const ModelLayout l = describe_dir(t / type);
        EXPECT_EQ(l.architecture, type);
        const auto c = io::Checkpoint::open(t / type);
        EXPECT_EQ(c.find("lm_head.weight"), nullptr);
        for (const auto& x : c.tensors()) {
            EXPECT_EQ(x.info->dtype, s.dtype);
            for (float v : read_floats(c, x.info->name)) ASSERT_TRUE(std::isfinite(v)) << x.info->name;
        }
    }
}

// Heavy tails, per-output-channel scale spread, a few outlier input channels shared by the layers,
// norms near 1: the features that make NVFP4 scale searches matter.
TEST(SynthWeights, RealisticStatistics) {
    TempDir t;
    SyntheticSpec s = small();
    s.hidden = 512, s.heads = 8, s.kv_heads = 4, s.ffn = 1024, s.dtype = DType::F32;
    write_synthetic_llama(t / "m", s);
    const auto c = io::Checkpoint::open(t / "m");
    const int64_t H = 512;
    const auto w = read_floats(c, "model.layers.0.mlp.gate_proj.weight");  // [1024, 512]
    const int64_t rows = 1024;

    double sum = 0, sq = 0, q4 = 0;
    for (float v : w) sum += v, sq += double(v) * v;
    const double mean = sum / double(w.size()), var = sq / double(w.size()) - mean * mean;
    for (float v : w) q4 += std::pow(double(v) - mean, 4);
    const double kurtosis = q4 / double(w.size()) / (var * var);
    EXPECT_LT(std::abs(mean), 0.05 * std::sqrt(var));
    EXPECT_GT(kurtosis, 5.0) << "not heavy-tailed";  // a Gaussian has 3

    // Column mean |w|: outlier columns stand far above the median column.
    std::vector<double> col(static_cast<size_t>(H), 0.0), row(static_cast<size_t>(rows), 0.0);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < H; ++k) {
            const double a = std::abs(w[static_cast<size_t>(r * H + k)]);
            col[static_cast<size_t>(k)] += a;
            row[static_cast<size_t>(r)] += a;
        }
    std::vector<double> sorted = col;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[sorted.size() / 2];
    const size_t top = static_cast<size_t>(std::max_element(col.begin(), col.end()) - col.begin());
    EXPECT_GT(col[top], 5.0 * median);
    const size_t n_outliers = static_cast<size_t>(std::count_if(col.begin(), col.end(), [&](double v) { return v > 3 * median; }));
    EXPECT_GE(n_outliers, 1u);
    EXPECT_LE(n_outliers, static_cast<size_t>(H / 32));  // a few, not many

    // Per-output-channel scales vary (rows without outlier columns differ by > 1.5x).
    std::vector<double> rs = row;
    std::sort(rs.begin(), rs.end());
    EXPECT_GT(rs[rs.size() * 95 / 100] / rs[rs.size() * 5 / 100], 1.5);

    // The same hidden channel is an outlier in another layer's q_proj.
    const auto q = read_floats(c, "model.layers.1.self_attn.q_proj.weight");  // [512, 512]
    std::vector<double> qcol(static_cast<size_t>(H), 0.0);
    for (int64_t r = 0; r < 512; ++r)
        for (int64_t k = 0; k < H; ++k) qcol[static_cast<size_t>(k)] += std::abs(q[static_cast<size_t>(r * H + k)]);
    std::vector<double> qs = qcol;
    std::sort(qs.begin(), qs.end());
    EXPECT_GT(qcol[top], 4.0 * qs[qs.size() / 2]);

    // Norms near 1.
    const auto n = read_floats(c, "model.layers.1.input_layernorm.weight");
    const double nmean = std::accumulate(n.begin(), n.end(), 0.0) / double(n.size());
    EXPECT_NEAR(nmean, 1.0, 0.02);
    for (float v : n) {
        EXPECT_GE(v, 0.25f);
        EXPECT_LE(v, 2.0f);
    }
}

TEST(SynthSpec, TargetSizePicksWidthAndLayers) {
    for (uint64_t gib : {2ull, 8ull}) {
        SyntheticSpec s;
        s.vocab = 32000;
        s.target_bytes = gib << 30;
        const SyntheticSpec r = resolve_synthetic_spec(s);
        const uint64_t bytes = synthetic_bytes(r);
        SyntheticSpec one_less = r;
        one_less.layers -= 1;
        EXPECT_GE(bytes, s.target_bytes) << gib;
        EXPECT_LT(synthetic_bytes(one_less), s.target_bytes) << gib;  // no more layers than needed
        EXPECT_GE(r.layers, 8) << gib;
        EXPECT_GE(r.hidden, 2048) << gib;  // real-model widths, not thousands of tiny layers
        EXPECT_EQ(r.hidden, r.heads * r.head_dim);
        EXPECT_EQ(r.heads % r.kv_heads, 0);
    }
}

TEST(SynthSpec, Errors) {
    TempDir t;
    SyntheticSpec s = small();
    s.kv_heads = 3;
    EXPECT_THROW(resolve_synthetic_spec(s), Error);
    s = small();
    s.model_type = "gpt2";
    EXPECT_THROW(resolve_synthetic_spec(s), Error);
    s = small();
    s.dtype = DType::U8;
    EXPECT_THROW(resolve_synthetic_spec(s), Error);
    s = small();
    s.hidden = 130;  // not a multiple of 4 heads, no head_dim
    EXPECT_THROW(resolve_synthetic_spec(s), Error);
    // A non-empty output directory is refused.
    std::filesystem::create_directories(t / "full");
    std::ofstream(t / "full/keep.txt") << "x";
    try {
        write_synthetic_llama(t / "full", small());
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("not empty"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(std::filesystem::exists(t / "full/keep.txt"));
}

}  // namespace
}  // namespace microscale::model
