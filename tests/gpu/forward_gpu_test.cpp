// GPU calibration forward (src/cuda/forward/) against the CPU ModelForward, which matches
// transformers 5.17 to ~1e-6 (tests/unit/model/forward_test.cpp).
//
// Pass/fail:
//  - FP32 GEMMs (GemmPrecision::FP32, no TF32): the kernels are the CPU's math up to summation
//    order, so max |Δlogit| ≤ 1e-4 · max |logit| and every observer amax within 1e-4 relative.
//  - BF16 GEMMs (the default): every GEMM input is rounded to bf16 (relative error ≤ 2^-9 per
//    element, ~0.1% rms after the dot product, compounding over the layers and the lm_head), so
//    max |Δlogit| ≤ 2e-2 · max |logit| and amax within 2e-2 relative.
//  - Streaming (a budget below the model size, or no resident layers) runs the same kernels on the
//    same bytes: logits and statistics are bit-identical to the resident run.
// Models: the 12 transformers-made tiny checkpoints of tests/golden/forward (GQA, biases, tied,
// qwen3 qk-norm, phi3 fused projections + partial RoPE, sliding window, every RoPE type) and
// synthetic checkpoints (model::write_synthetic_llama) with heavy-tailed weights.
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "calib/runner.h"
#include "cuda/forward/gpu_forward.h"
#include "gpu_test_util.h"
#include "microscale/error.h"
#include "model/forward/model_forward.h"
#include "model/forward/ops.h"
#include "model/synthetic.h"

namespace microscale {
namespace {

namespace fs = std::filesystem;
using cuda::GemmPrecision;

constexpr double kFp32Tol = 1e-4;
constexpr double kBf16Tol = 2e-2;
// GPU BF16-GEMM mode vs a CPU forward with the same bf16 rounding of GEMM inputs. Rounding to
// bf16 is discontinuous: a last-bit difference in fp32 summation order flips an input's rounding
// (2^-9 relative), and that compounds over the layers. Measured on the H200 (2026-12-01): up to
// 1.0e-2 on the transformers goldens, 3.0e-3 on the synthetic models, which against the plain fp32
// CPU forward deviate by up to 5.7% (bf16 activations in random-weight models, not a kernel error:
// their FP32-GEMM runs agree to 1e-4).
constexpr double kBf16EmulatedTol = 2e-2;

double tolerance(GemmPrecision p) { return p == GemmPrecision::FP32 ? kFp32Tol : kBf16Tol; }
const char* name_of(GemmPrecision p) { return p == GemmPrecision::FP32 ? "fp32" : "bf16"; }

class TempDir {
public:
    TempDir() {
        std::string t = (fs::temp_directory_path() / "microscale-gpufwd-XXXXXX").string();
        if (!mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
        path_ = t;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

fs::path golden_dir(const std::string& variant) {
    return fs::path(__FILE__).parent_path().parent_path() / "golden" / "forward" / variant;
}

// Deterministic ids of ragged lengths (more than one 16-row query tile and 32-key tile).
model::TokenSequences make_sequences(int64_t vocab, std::vector<int64_t> lengths, uint32_t seed = 7) {
    std::mt19937 rng(seed);
    model::TokenSequences s;
    for (int64_t len : lengths) {
        std::vector<int32_t> ids(static_cast<size_t>(len));
        for (auto& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
        s.push_back(std::move(ids));
    }
    return s;
}

// max |a - b| / max |b|.
double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    double diff = 0.0, scale = 0.0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
        if (!std::isfinite(a[i])) return INFINITY;
        diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
        scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
    }
    return scale > 0 ? diff / scale : diff;
}

void expect_close(float gpu, float cpu, double tol, const std::string& what) {
    const double d = std::fabs(static_cast<double>(gpu) - cpu);
    EXPECT_LE(d, tol * std::max(std::fabs(static_cast<double>(cpu)), 1e-30)) << what << ": gpu " << gpu << " cpu " << cpu;
}

// The CPU LayerObserver's view: input amax per linear index, post-RoPE k/v amax per layer.
class CpuAmax : public model::LayerObserver {
public:
    CpuAmax(size_t linears, size_t layers) : input(linears, 0.0f), k(layers, 0.0f), v(layers, 0.0f) {}
    void linear_input(const model::LinearWeights& l, const float* x, int64_t rows, int64_t ld) override {
        float& a = input[static_cast<size_t>(l.linear)];
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < l.in; ++c) a = std::fmax(a, std::fabs(x[r * ld + c]));
    }
    void key_values(int layer, const float* kp, const float* vp, int64_t rows, int64_t cols, int64_t ld) override {
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) {
                k[static_cast<size_t>(layer)] = std::fmax(k[static_cast<size_t>(layer)], std::fabs(kp[r * ld + c]));
                v[static_cast<size_t>(layer)] = std::fmax(v[static_cast<size_t>(layer)], std::fabs(vp[r * ld + c]));
            }
    }
    std::vector<float> input, k, v;
};

// GPU logits and observer amaxes vs the CPU's, both precisions. The BF16-GEMM mode's logits are
// compared with a CPU forward that rounds its GEMM inputs to bf16 the same way, its amaxes with
// that and with the plain fp32 CPU forward (what calibration users get from --device cuda against
// --device cpu), each at the tolerances above.
void check_against_cpu(const fs::path& dir, const model::TokenSequences& seqs, const std::string& what) {
    model::ModelForward cpu(dir, 4);
    CpuAmax obs(cpu.layout().linears.size(), static_cast<size_t>(cpu.config().layers));
    const std::vector<float> want_fp32 = cpu.forward(seqs, &obs);
    CpuAmax obs_bf16(cpu.layout().linears.size(), static_cast<size_t>(cpu.config().layers));
    model::set_emulate_bf16_gemm_inputs(true);
    const std::vector<float> want_bf16 = cpu.forward(seqs, &obs_bf16);
    model::set_emulate_bf16_gemm_inputs(false);
    for (GemmPrecision p : {GemmPrecision::FP32, GemmPrecision::BF16}) {
        const std::string tag = what + " (" + name_of(p) + " GEMMs)";
        cuda::GpuForwardOptions o;
        o.precision = p;
        cuda::GpuModelForward gpu(cpu, o);
        cuda::GpuObserverStats st;
        const std::vector<float> got = gpu.forward(seqs, &st);
        const bool bf16 = p == GemmPrecision::BF16;
        const std::vector<float>& want = bf16 ? want_bf16 : want_fp32;
        const double e = rel_err(got, want);
        EXPECT_LE(e, bf16 ? kBf16EmulatedTol : kFp32Tol) << tag << ": max |Δlogit| / max |logit| vs the CPU"
                                                        << (bf16 ? " with bf16 GEMM inputs" : "");
        if (bf16) {
            ASSERT_EQ(st.input_amax.size(), obs_bf16.input.size()) << tag;
            for (size_t i = 0; i < obs_bf16.input.size(); ++i)
                if (cpu.layout().linears[i].layer >= 0)
                    expect_close(st.input_amax[i], obs_bf16.input[i], kBf16EmulatedTol,
                                 tag + " input amax (bf16-emulating CPU) of " + cpu.layout().linears[i].name);
        }
        // Against the plain fp32 CPU: BF16 mode may be as far off as bf16 arithmetic itself (the
        // emulating CPU's distance from fp32), plus kBf16Tol. Random-weight models amplify it:
        // 4.3% on qwen2_bias_yarn with bf16 attention (H200, 2026-12-01).
        const auto vs_fp32 = [&](float gpu, float plain, float emulated, const std::string& what) {
            const double slack = bf16 ? std::fabs(static_cast<double>(emulated) - plain) : 0.0;
            EXPECT_LE(std::fabs(static_cast<double>(gpu) - plain),
                      tolerance(p) * std::max(std::fabs(static_cast<double>(plain)), 1e-30) + slack)
                << what << ": gpu " << gpu << " cpu " << plain << " bf16-emulating cpu " << emulated;
        };
        ASSERT_EQ(st.input_amax.size(), obs.input.size()) << tag;
        for (size_t i = 0; i < obs.input.size(); ++i) {
            const model::LinearModule& m = cpu.layout().linears[i];
            if (m.layer < 0) continue;
            vs_fp32(st.input_amax[i], obs.input[i], obs_bf16.input[i], tag + " input amax of " + m.name);
        }
        for (size_t l = 0; l < obs.k.size(); ++l) {
            vs_fp32(st.k_amax[l], obs.k[l], obs_bf16.k[l], tag + " k amax of layer " + std::to_string(l));
            vs_fp32(st.v_amax[l], obs.v[l], obs_bf16.v[l], tag + " v amax of layer " + std::to_string(l));
        }
        if (bf16)
            for (size_t l = 0; l < obs.k.size(); ++l) {
                expect_close(st.k_amax[l], obs_bf16.k[l], kBf16EmulatedTol, tag + " k amax (bf16-emulating CPU)");
                expect_close(st.v_amax[l], obs_bf16.v[l], kBf16EmulatedTol, tag + " v amax (bf16-emulating CPU)");
            }
    }
}

class GpuForwardGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(GpuForwardGolden, LogitsAndObserversMatchCpu) {
    MICROSCALE_REQUIRE_GPU();
    const fs::path dir = golden_dir(GetParam());
    if (!fs::exists(dir / "config.json")) GTEST_SKIP() << "no " << dir;
    // 70 > max_position_embeddings of the goldens: exercises dynamic NTK's per-length tables.
    check_against_cpu(dir, make_sequences(128, {45, 70, 3, 33}), GetParam());
}

INSTANTIATE_TEST_SUITE_P(Variants, GpuForwardGolden,
                         ::testing::Values("llama_default", "llama_tied", "llama_bias", "llama_llama3", "llama_linear",
                                           "llama_dynamic", "llama_yarn", "mistral_swa", "qwen2", "qwen2_yarn", "qwen3",
                                           "phi3_partial"));

struct SyntheticCase {
    const char* name;
    const char* model_type;
    int64_t heads, kv_heads, head_dim;
    bool tied;
    const char* rope;  // extra config: "" or "llama3" / "yarn"
};

void write_synthetic(const fs::path& dir, const SyntheticCase& c) {
    model::SyntheticSpec s;
    s.model_type = c.model_type;
    s.hidden = 256;
    s.layers = 3;
    s.heads = c.heads;
    s.kv_heads = c.kv_heads;
    s.head_dim = c.head_dim;
    s.ffn = 512;
    s.vocab = 512;
    s.tied = c.tied;
    s.seed = 11;
    s.threads = 2;
    model::write_synthetic_llama(dir, s);
    const std::string rope = c.rope;
    if (rope.empty()) return;
    nlohmann::json cfg = nlohmann::json::parse(std::ifstream(dir / "config.json"));
    cfg.erase("rope_scaling");
    const double theta = cfg.contains("rope_theta") ? cfg["rope_theta"].get<double>() : 10000.0;
    if (rope == "llama3")
        cfg["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", theta}, {"factor", 8.0},
                                  {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                                  {"original_max_position_embeddings", 32}};
    else
        cfg["rope_parameters"] = {{"rope_type", "yarn"}, {"rope_theta", theta}, {"factor", 4.0},
                                  {"original_max_position_embeddings", 32}};
    std::ofstream(dir / "config.json") << cfg.dump(2);
}

class GpuForwardSynthetic : public ::testing::TestWithParam<SyntheticCase> {};

TEST_P(GpuForwardSynthetic, LogitsAndObserversMatchCpu) {
    MICROSCALE_REQUIRE_GPU();
    TempDir tmp;
    const fs::path dir = tmp.path() / "m";
    write_synthetic(dir, GetParam());
    check_against_cpu(dir, make_sequences(512, {100, 17, 64}), GetParam().name);
}

INSTANTIATE_TEST_SUITE_P(
    Configs, GpuForwardSynthetic,
    ::testing::Values(SyntheticCase{"llama_gqa", "llama", 8, 2, 0, false, ""},
                      SyntheticCase{"llama_mha_tied", "llama", 4, 4, 0, true, ""},
                      SyntheticCase{"llama_llama3_rope", "llama", 8, 4, 0, false, "llama3"},
                      SyntheticCase{"qwen2_bias_yarn", "qwen2", 8, 4, 0, false, "yarn"},
                      SyntheticCase{"qwen3_qk_norm", "qwen3", 4, 2, 128, false, ""},
                      SyntheticCase{"qwen3_head_dim_256", "qwen3", 2, 1, 256, true, ""}),
    [](const auto& info) { return std::string(info.param.name); });

// A deeper synthetic llama for the memory-budget tests: 16 layers of ~5.8 MB bf16.
fs::path write_deep(const TempDir& tmp) {
    model::SyntheticSpec s;
    s.hidden = 512;
    s.layers = 16;
    s.heads = 8;
    s.kv_heads = 4;
    s.ffn = 1376;
    s.vocab = 1024;
    s.seed = 3;
    s.threads = 2;
    const fs::path dir = tmp.path() / "deep";
    model::write_synthetic_llama(dir, s);
    return dir;
}

void expect_bitwise_equal(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::memcmp(&a[i], &b[i], 4) != 0 && bad++ == 0) first = i;
    EXPECT_EQ(bad, 0u) << what << ": " << bad << " values differ, first at " << first << " (" << a[first] << " vs "
                       << b[first] << ")";
}

TEST(GpuForwardStreaming, BudgetBelowModelSizeGivesTheResidentResults) {
    MICROSCALE_REQUIRE_GPU();
    TempDir tmp;
    const fs::path dir = write_deep(tmp);
    model::ModelForward cpu(dir, 4);
    const model::TokenSequences seqs = make_sequences(1024, {80, 40});

    cuda::GpuModelForward resident(cpu);
    cuda::GpuObserverStats rs;
    const std::vector<float> want = resident.forward(seqs, &rs);
    const cuda::GpuForwardReport rr = resident.report();
    EXPECT_FALSE(rr.streaming);
    EXPECT_EQ(rr.resident_layers, 16);
    // A second call reuses the resident layers: no weight copies.
    const uint64_t copied = rr.weight_bytes_copied;
    expect_bitwise_equal(resident.forward(seqs), want, "resident, second call");
    EXPECT_EQ(resident.report().weight_bytes_copied, copied);

    const uint64_t model_bytes = rr.layer_bytes * 16;
    const uint64_t budget = rr.peak_device_bytes - 8 * rr.layer_bytes;  // room for about 8 of 16 layers
    ASSERT_LT(budget, model_bytes) << "the budget must be below the model's layer weights";
    cuda::GpuForwardOptions o;
    o.mem_budget_bytes = budget;
    cuda::GpuModelForward streamed(cpu, o);
    cuda::GpuObserverStats ss;
    expect_bitwise_equal(streamed.forward(seqs, &ss), want, "streamed under a budget below the model size");
    EXPECT_TRUE(streamed.report().streaming);
    EXPECT_LT(streamed.report().resident_layers, 16);
    // The table does not fit next to every layer: its rows go through a streaming slot.
    EXPECT_STREQ(streamed.report().embeddings, "slot");
    EXPECT_STREQ(resident.report().embeddings, "device");
    EXPECT_LE(streamed.report().peak_device_bytes, budget);
    expect_bitwise_equal(ss.input_amax, rs.input_amax, "streamed input amax");
    expect_bitwise_equal(ss.k_amax, rs.k_amax, "streamed k amax");
    expect_bitwise_equal(ss.v_amax, rs.v_amax, "streamed v amax");
    // Twice: the streamed layers are copied again, the results do not change.
    expect_bitwise_equal(streamed.forward(seqs), want, "streamed, second call");

    cuda::GpuForwardOptions none;
    none.max_resident_layers = 0;
    cuda::GpuModelForward all_streamed(cpu, none);
    expect_bitwise_equal(all_streamed.forward(seqs), want, "every layer streamed");
    EXPECT_EQ(all_streamed.report().resident_layers, 0);
    EXPECT_GE(all_streamed.report().weight_bytes_copied, model_bytes);
}

TEST(GpuForwardStreaming, BudgetTooSmallForTwoLayersIsAClearError) {
    MICROSCALE_REQUIRE_GPU();
    TempDir tmp;
    const fs::path dir = write_deep(tmp);
    model::ModelForward cpu(dir, 2);
    cuda::GpuForwardOptions o;
    o.mem_budget_bytes = 40ull << 20;  // the 32 MiB cuBLAS workspace fits, two layers + activations do not
    cuda::GpuModelForward gpu(cpu, o);
    try {
        gpu.forward(make_sequences(1024, {64}));
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("--gpu-mem-budget"), std::string::npos) << e.what();
    }
}

calib::CalibSet calib_set(int64_t vocab, int n, int64_t len) {
    calib::CalibSet set;
    std::vector<int64_t> lengths(static_cast<size_t>(n), len);
    set.samples = make_sequences(vocab, lengths, 19);
    set.seq_len = len;
    set.tokens = n * len;
    set.source = "synthetic";
    set.format = "ids";
    return set;
}

void expect_stats_close(const calib::CalibStats& gpu, const calib::CalibStats& cpu, double tol, const std::string& what) {
    const auto cmp = [&](const std::map<std::string, float>& g, const std::map<std::string, float>& c, const char* kind) {
        EXPECT_EQ(g.size(), c.size()) << what << " " << kind;
        for (const auto& [name, v] : c) {
            const auto it = g.find(name);
            if (it == g.end()) {
                ADD_FAILURE() << what << ": GPU " << kind << " has no " << name;
                continue;
            }
            expect_close(it->second, v, tol, what + " " + kind + " " + name);
        }
    };
    cmp(gpu.input_amax, cpu.input_amax, "input amax");
    cmp(gpu.k_amax, cpu.k_amax, "k amax");
    cmp(gpu.v_amax, cpu.v_amax, "v amax");
    EXPECT_EQ(gpu.provenance.tokens, cpu.provenance.tokens);
    EXPECT_EQ(gpu.provenance.model_type, cpu.provenance.model_type);
}

TEST(GpuCalibrate, SameStatisticsAsTheCpuRunner) {
    MICROSCALE_REQUIRE_GPU();
    TempDir tmp;
    write_synthetic(tmp.path() / "m", SyntheticCase{"qwen2", "qwen2", 8, 4, 0, false, ""});
    model::ModelForward cpu(tmp.path() / "m", 4);
    const calib::CalibSet set = calib_set(512, 7, 48);  // 7 samples, batches of 3: a short last batch
    calib::RunnerOptions ro;
    ro.batch_sequences = 3;
    const calib::CalibStats want = calib::calibrate_max(cpu, set, ro);
    for (GemmPrecision p : {GemmPrecision::FP32, GemmPrecision::BF16}) {
        cuda::GpuForwardOptions o;
        o.precision = p;
        const calib::CalibStats got = cuda::calibrate_max_gpu(cpu, set, 3, o);
        expect_stats_close(got, want, tolerance(p), std::string("calibrate_max_gpu ") + name_of(p));
    }
}

TEST(GpuCalibrate, StreamingGivesTheResidentStatistics) {
    MICROSCALE_REQUIRE_GPU();
    TempDir tmp;
    const fs::path dir = write_deep(tmp);
    model::ModelForward cpu(dir, 2);
    const calib::CalibSet set = calib_set(1024, 6, 64);
    cuda::GpuForwardReport rr, sr;
    const calib::CalibStats want = cuda::calibrate_max_gpu(cpu, set, 2, {}, &rr);
    EXPECT_FALSE(rr.streaming);
    cuda::GpuForwardOptions o;
    o.mem_budget_bytes = rr.peak_device_bytes - 8 * rr.layer_bytes;
    const calib::CalibStats got = cuda::calibrate_max_gpu(cpu, set, 2, o, &sr);
    EXPECT_TRUE(sr.streaming);
    EXPECT_STREQ(sr.embeddings, "slot");
    EXPECT_LE(sr.peak_device_bytes, o.mem_budget_bytes);
    expect_stats_close(got, want, 0.0, "streamed calibration");
}

}  // namespace
}  // namespace microscale
