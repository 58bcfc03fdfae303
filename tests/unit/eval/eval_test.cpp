// microscale eval: quantized exports load into the forward pass with the exact export decode,
// activation fake quant against an independent scalar reference, window bookkeeping.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "eval/act_quant.h"
#include "eval/perplexity.h"
#include "format/codec/e4m3.h"
#include "format/quantize.h"
#include "io/checkpoint.h"
#include "model/forward/model_forward.h"
#include "model/synthetic.h"
#include "pipeline/quantize_job.h"

namespace fs = std::filesystem;
using namespace microscale;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        path = fs::temp_directory_path() / ("ms-eval-" + std::to_string(getpid()) + "-" + std::to_string(std::random_device{}()));
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
};

fs::path quantized_synthetic(const fs::path& root, const std::string& recipe, const std::string& dialect) {
    model::SyntheticSpec spec;
    spec.hidden = 64;
    spec.heads = 4;
    spec.kv_heads = 2;
    spec.ffn = 128;
    spec.vocab = 96;
    spec.layers = 2;
    model::write_synthetic_llama(root / "in", spec);
    pipeline::QuantizeOptions o;
    o.model_dir = root / "in";
    o.output_dir = root / ("out-" + dialect);
    o.recipe = recipe;
    o.threads = 1;
    o.export_format = dialect;
    pipeline::run_quantize(o);
    return o.output_dir;
}

std::vector<uint8_t> bytes(const io::Checkpoint& c, const std::string& name) {
    const auto b = c.bytes(c.at(name));
    return {b.begin(), b.end()};
}

float scalar(const io::Checkpoint& c, const std::string& name) {
    float f;
    std::memcpy(&f, c.bytes(c.at(name)).data(), 4);
    return f;
}

// Every quantized linear of the export, decoded by load_layer, equals dequantize_weight of the
// tensors as the test reads them itself, bit for bit.
void expect_decoded_weights(const fs::path& dir, bool ct) {
    model::ModelForward m(dir, 1);
    const io::Checkpoint c = io::Checkpoint::open(dir);
    int checked = 0;
    for (int layer = 0; layer < m.config().layers; ++layer) {
        const model::DecoderLayerWeights w = m.load_layer(layer);
        for (const model::LinearWeights& l : w.linears) {
            format::QuantizedWeight q;
            q.format = Format::W4A16_NVFP4;
            q.rows = l.out;
            q.cols = l.in;
            q.data = bytes(c, l.name + (ct ? ".weight_packed" : ".weight"));
            q.block_scales = bytes(c, l.name + ".weight_scale");
            q.global_scale = ct ? 1.0f / scalar(c, l.name + ".weight_global_scale") : scalar(c, l.name + ".weight_scale_2");
            const std::vector<float> want = format::dequantize_weight(q);
            ASSERT_EQ(want.size(), l.weight.size()) << l.name;
            ASSERT_EQ(std::memcmp(want.data(), l.weight.data(), want.size() * sizeof(float)), 0) << l.name;
            ++checked;
        }
    }
    EXPECT_EQ(checked, 2 * 7);
    EXPECT_EQ(eval::DeployedQuantization(m.layout(), m.checkpoint(), {}).counts().quantized_weights, 2 * 7);
}

}  // namespace

TEST(EvalLoad, ModelOptW4A16ExportDecodesExactly) {
    TempDir t;
    expect_decoded_weights(quantized_synthetic(t.path, "W4A16_NVFP4_CFG", "modelopt"), false);
}

TEST(EvalLoad, CompressedTensorsW4A16ExportDecodesExactly) {
    TempDir t;
    expect_decoded_weights(quantized_synthetic(t.path, "W4A16_NVFP4_CFG", "compressed-tensors"), true);
}

TEST(EvalLoad, QuantizedModelRunsAndStaysCloseToTheOriginal) {
    TempDir t;
    const fs::path q = quantized_synthetic(t.path, "W4A16_NVFP4_CFG", "modelopt");
    model::ModelForward a(t.path / "in", 1), b(q, 1);
    const model::TokenSequences seqs = {{1, 5, 9, 33, 70, 2, 11, 4}};
    const std::vector<float> la = a.forward(seqs), lb = b.forward(seqs);
    ASSERT_EQ(la.size(), lb.size());
    double diff = 0, norm = 0;
    for (size_t i = 0; i < la.size(); ++i) {
        ASSERT_TRUE(std::isfinite(lb[i])) << i;
        diff += (la[i] - lb[i]) * (la[i] - lb[i]), norm += la[i] * la[i];
    }
    EXPECT_GT(diff, 0.0);  // the weights did change
    // Random heavy-tailed weights (no trained structure) lose more than real models; this only
    // says the decoded model is the same network: measured 0.18.
    EXPECT_LT(diff / norm, 0.5);
}

// ---------------------------------------------------------------------------------------------
// Activation fake quant vs a scalar reference written from the spec (not the codecs' encoders).

namespace {

// E2M1 by explicit round-to-nearest-even over the grid (ties to the even mantissa).
float ref_e2m1(float y) {
    const float a = std::fabs(y);
    const float grid[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
    float q;
    if (a >= 5.0f) q = a > 5.0f ? 6.0f : 4.0f;
    else {
        int best = 0;
        for (int i = 1; i < 8; ++i) {
            const float d = std::fabs(a - grid[i]), db = std::fabs(a - grid[best]);
            if (d < db || (d == db && (i % 2) == 0)) best = i;
        }
        q = grid[best];
    }
    return std::signbit(y) && q != 0.0f ? -q : q;
}

std::vector<float> ref_nvfp4(const std::vector<float>& x, int64_t cols, float gs) {
    std::vector<float> y(x.size());
    const int64_t rows = static_cast<int64_t>(x.size()) / cols;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t b = 0; b < cols; b += 16) {
            const int64_t n = std::min<int64_t>(16, cols - b);
            float amax = 0;
            for (int64_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[r * cols + b + j]));
            float s = amax / (6.0f * gs);
            if (s == 0.0f) s = 1.0f;
            s = std::min(std::max(s, 0.001953125f), 448.0f);
            const float d = codec::e4m3_to_float(codec::e4m3_from_float(s)) * gs;
            for (int64_t j = 0; j < n; ++j) y[r * cols + b + j] = ref_e2m1(x[r * cols + b + j] / d) * d;
        }
    return y;
}

}  // namespace

TEST(EvalActQuant, Nvfp4MatchesScalarReferenceOnHardCases) {
    std::mt19937 rng(7);
    std::student_t_distribution<float> heavy(3.0f);
    const int64_t cols = 40;  // two full blocks and a partial one
    std::vector<float> x;
    for (int r = 0; r < 64; ++r)
        for (int64_t c = 0; c < cols; ++c) x.push_back(heavy(rng) * std::ldexp(1.0f, r % 24 - 12));
    const float gs = 0.37f / 2688.0f;
    // Exact grid ties, zeros, -0, an all-zero block, values under the 2^-9 clamp, huge outliers.
    const float d = codec::e4m3_to_float(0x38) * gs;  // code 1.0
    for (int j = 0; j < 16; ++j) x[static_cast<size_t>(j)] = (j % 8 - 4 + 0.25f * (j % 4)) * d;
    x[0] = 6.0f * d;  // block amax maps to code exactly 1.0
    for (int j = 16; j < 32; ++j) x[static_cast<size_t>(j)] = 0.0f;
    x[20] = -0.0f;
    for (int j = 40; j < 56; ++j) x[static_cast<size_t>(j)] = 1e-9f * static_cast<float>(j - 47);
    x[100] = 1e6f;
    x[101] = -3.5f * d;
    const std::vector<float> want = ref_nvfp4(x, cols, gs);
    std::vector<float> got(x.size());
    eval::fake_quant_nvfp4(x.data(), static_cast<int64_t>(x.size()) / cols, cols, cols, gs, got.data());
    for (size_t i = 0; i < x.size(); ++i)
        ASSERT_EQ(std::bit_cast<uint32_t>(got[i] == 0.0f ? 0.0f : got[i]), std::bit_cast<uint32_t>(want[i] == 0.0f ? 0.0f : want[i]))
            << "element " << i << " x=" << x[i];
    // In place and with a row stride wider than cols.
    std::vector<float> wide(x.size() * 2, 123.0f);
    const int64_t rows = static_cast<int64_t>(x.size()) / cols;
    for (int64_t r = 0; r < rows; ++r) std::copy_n(x.begin() + r * cols, cols, wide.begin() + r * 2 * cols);
    eval::fake_quant_nvfp4(wide.data(), rows, cols, 2 * cols, gs, wide.data());
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            ASSERT_EQ(wide[static_cast<size_t>(r * 2 * cols + c)], got[static_cast<size_t>(r * cols + c)]);
            ASSERT_EQ(wide[static_cast<size_t>(r * 2 * cols + cols + c)], 123.0f);  // padding untouched
        }
}

TEST(EvalActQuant, Fp8SaturatesAndRoundsToE4M3) {
    const float s = 0.5f;
    EXPECT_EQ(eval::fake_quant_fp8_value(1000.0f, s), 448.0f * s);   // saturates, never NaN
    EXPECT_EQ(eval::fake_quant_fp8_value(-1000.0f, s), -448.0f * s);
    EXPECT_EQ(eval::fake_quant_fp8_value(1.0f, s), 1.0f);
    EXPECT_EQ(eval::fake_quant_fp8_value(0.0f, s), 0.0f);
    // 8.5 / 0.5 = 17: e4m3 spacing is 2 in [16, 32), a tie, to the even mantissa 16.
    EXPECT_EQ(eval::fake_quant_fp8_value(8.5f, s), 8.0f);
    EXPECT_EQ(eval::fake_quant_fp8_value(9.5f, s), 10.0f);  // 19 -> 20
    EXPECT_THROW(eval::fake_quant_fp8(nullptr, 0, 0, 0, 0.0f, nullptr), Error);
}

// ---------------------------------------------------------------------------------------------

namespace {

std::vector<std::vector<int32_t>> docs_of(std::initializer_list<int> lengths) {
    std::vector<std::vector<int32_t>> d;
    int32_t next = 0;
    for (int n : lengths) {
        d.emplace_back();
        for (int i = 0; i < n; ++i) d.back().push_back(next++);
    }
    return d;
}

}  // namespace

TEST(EvalWindows, StreamStrideScoresEveryTokenOnce) {
    eval::PerplexityOptions o;
    o.seq_len = 8;
    o.stride = 3;
    const eval::WindowPlan p = eval::plan_windows(docs_of({10, 7}), o);  // one stream of 17
    ASSERT_EQ(p.docs.size(), 1u);
    std::vector<int> scored(17, 0);
    for (const auto& w : p.windows) {
        EXPECT_LE(w.end - w.begin, 8);
        EXPECT_GT(w.score_begin, w.begin);  // no BOS: a window's first token has no context
        for (int64_t t = w.score_begin; t < w.end; ++t) ++scored[static_cast<size_t>(t)];
    }
    EXPECT_EQ(scored[0], 0);
    for (size_t t = 1; t < 17; ++t) EXPECT_EQ(scored[t], 1) << t;
    EXPECT_EQ(p.scored_tokens, 16);
    // HF: begins 0, 3, 6, 9 (end 17 reached at begin 9).
    ASSERT_EQ(p.windows.size(), 4u);
    EXPECT_EQ(p.windows[3].begin, 9);
    EXPECT_EQ(p.windows[3].end, 17);
}

TEST(EvalWindows, NonOverlappingWithAndWithoutBos) {
    eval::PerplexityOptions o;
    o.seq_len = 5;
    o.stride = 5;
    eval::WindowPlan p = eval::plan_windows(docs_of({12}), o);
    ASSERT_EQ(p.windows.size(), 3u);  // [0,5) [5,10) [10,12)
    EXPECT_EQ(p.scored_tokens, 4 + 4 + 1);  // HF's recipe loses each window's first token
    o.bos = true;
    p = eval::plan_windows(docs_of({12}), o);
    EXPECT_EQ(p.scored_tokens, 12);
}

TEST(EvalWindows, PerDocumentTruncatesAndMaxTokensTrims) {
    eval::PerplexityOptions o;
    o.seq_len = 6;
    o.per_document = true;
    o.bos = true;
    eval::WindowPlan p = eval::plan_windows(docs_of({3, 9, 0, 6}), o);
    ASSERT_EQ(p.windows.size(), 3u);  // the empty document has no window
    EXPECT_EQ(p.scored_tokens, 3 + 6 + 6);
    o.max_tokens = 7;
    p = eval::plan_windows(docs_of({3, 9, 0, 6}), o);
    ASSERT_EQ(p.windows.size(), 2u);
    EXPECT_EQ(p.windows[1].end, 4);
    EXPECT_EQ(p.scored_tokens, 7);
    o.bos = false;
    o.max_tokens = 0;
    p = eval::plan_windows(docs_of({1, 4}), o);
    EXPECT_EQ(p.scored_tokens, 3);  // a 1-token document has nothing to score without BOS
    o.stride = 9;
    o.per_document = false;
    EXPECT_THROW(eval::plan_windows(docs_of({4}), o), Error);  // stride > seq_len
}

// The scoring loop agrees with a direct sequence_nll over each window, whatever the batching.
TEST(EvalPerplexity, BatchedScoringEqualsPerWindowNll) {
    TempDir t;
    model::SyntheticSpec spec;
    spec.hidden = 32;
    spec.heads = 4;
    spec.kv_heads = 2;
    spec.ffn = 64;
    spec.vocab = 50;
    spec.layers = 1;
    spec.dtype = DType::F32;
    model::write_synthetic_llama(t.path / "m", spec);
    model::ModelForward m(t.path / "m", 1);
    std::vector<std::vector<int32_t>> docs(1);
    for (int i = 0; i < 40; ++i) docs[0].push_back((i * 7 + 3) % 50);
    eval::PerplexityOptions o;
    o.seq_len = 10;
    o.stride = 4;
    o.bos = true;
    const eval::WindowPlan p = eval::plan_windows(docs, o);
    double want = 0;
    for (const auto& w : p.windows) {
        std::vector<int32_t> ids = {1};
        ids.insert(ids.end(), docs[0].begin() + w.begin, docs[0].begin() + w.end);
        const std::vector<float> logits = m.forward({ids});
        const int64_t p0 = 1 + w.score_begin - w.begin;
        const std::vector<int32_t> tail(ids.begin() + p0 - 1, ids.end());
        want += model::sequence_nll(logits.data() + (p0 - 1) * 50, 50, tail);
    }
    for (int64_t batch : {1, 25, 4096}) {
        o.batch_tokens = batch;
        const eval::PerplexityResult r = eval::evaluate_perplexity(m, p, o, 1);
        EXPECT_EQ(r.tokens, 40);
        EXPECT_NEAR(r.nll, want, 1e-9 * std::fabs(want)) << batch;
    }
}
