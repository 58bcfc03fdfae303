// CPU forward pass on the real models in ../shared/assets (label `real`; skipped without them):
// stories260K (fp32) and microstories10M (bf16 weights) logits against transformers 5.17 fp32
// (tests/golden/forward/real, tools/gen_forward_golden.py), stories260K's perplexity on the README
// sentence (4.9536 over 34 tokens, BOS prepended) and 200-step greedy decoding from BOS against
// reference_greedy_t0_200steps.txt.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/forward/model_forward.h"

#if __has_include("calib/tokenizer.h")
#include "calib/tokenizer.h"
#define MICROSCALE_HAVE_TOKENIZER 1
#endif

namespace microscale::model {
namespace {

namespace fs = std::filesystem;

const fs::path kAssets = MICROSCALE_ASSETS_DIR;
const fs::path kGolden = fs::path(__FILE__).parent_path().parent_path() / "golden" / "forward" / "real";
const char* const kFox = "One day, a clever fox found a shiny key under the old oak tree.";

struct Golden {
    explicit Golden(const std::string& model)
        : file(io::SafetensorsFile::open(kGolden / model / "golden.safetensors")) {}
    std::vector<float> f32(const std::string& name) const {
        const io::TensorInfo* t = file.find(name);
        std::vector<float> v(t->numel());
        std::memcpy(v.data(), file.bytes(*t).data(), v.size() * sizeof(float));
        return v;
    }
    std::vector<int32_t> ids(const std::string& name) const {
        const io::TensorInfo* t = file.find(name);
        std::vector<int64_t> v(t->numel());
        std::memcpy(v.data(), file.bytes(*t).data(), v.size() * sizeof(int64_t));
        return {v.begin(), v.end()};
    }
    io::SafetensorsFile file;
};

double rel_err(const float* a, const float* b, size_t n) {
    double diff = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; ++i) {
        diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
        scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
    }
    return diff / scale;
}

fs::path model_dir(const std::string& model) {
    return model == "stories260K" ? kAssets / "stories260K" / "hf" : kAssets / model;
}

class ForwardReal : public ::testing::TestWithParam<const char*> {};

TEST_P(ForwardReal, LogitsMatchTransformers) {
    const fs::path dir = model_dir(GetParam());
    if (!fs::exists(dir / "config.json")) GTEST_SKIP() << "no " << dir;
    const Golden g(GetParam());
    ModelForward m(dir);
    const TokenSequences seqs = {g.ids("ids.0"), g.ids("ids.1")};
    const std::vector<float> logits = m.forward(seqs);
    const int64_t V = m.config().vocab;
    int64_t row = 0;
    for (size_t s = 0; s < seqs.size(); ++s) {
        const std::vector<float> want = g.f32("logits." + std::to_string(s));
        const double e = rel_err(logits.data() + row * V, want.data(), want.size());
        std::printf("[ %s ] seq %zu (%zu tokens): max|dlogit|/max|logit| = %.2e\n", GetParam(), s,
                    seqs[s].size(), e);
        EXPECT_LE(e, 1e-4);
        row += static_cast<int64_t>(seqs[s].size());
    }
}

INSTANTIATE_TEST_SUITE_P(Models, ForwardReal, ::testing::Values("stories260K", "microstories10M"),
                         [](const auto& info) { return std::string(info.param); });

TEST(ForwardRealStories260K, PerplexityOfTheReadmeSentence) {
    const fs::path dir = model_dir("stories260K");
    if (!fs::exists(dir / "config.json")) GTEST_SKIP() << "no " << dir;
    std::vector<int32_t> ids = Golden("stories260K").ids("ids.0");
#ifdef MICROSCALE_HAVE_TOKENIZER
    const calib::Tokenizer tok = calib::Tokenizer::load(dir);
    EXPECT_EQ(tok.encode(kFox, true), ids);  // the tokenizer agrees with the fixture
#endif
    ASSERT_EQ(ids.size(), 35u);  // BOS + 34 tokens
    ModelForward m(dir);
    const std::vector<float> logits = m.forward({ids});
    const double nll = sequence_nll(logits.data(), m.config().vocab, ids);
    const double ppl = std::exp(nll / static_cast<double>(ids.size() - 1));
    std::printf("stories260K perplexity %.4f over %zu tokens\n", ppl, ids.size() - 1);
    EXPECT_NEAR(ppl, 4.9536, 5e-4);
}

TEST(ForwardRealStories260K, GreedyDecodingReproducesTheReference) {
    const fs::path dir = model_dir("stories260K");
    const fs::path ref_path = kAssets / "stories260K" / "reference_greedy_t0_200steps.txt";
    if (!fs::exists(dir / "config.json") || !fs::exists(ref_path)) GTEST_SKIP() << "no stories260K";
    const std::vector<int32_t> want = Golden("stories260K").ids("greedy");  // BOS + 200 tokens
    ModelForward m(dir);
    const int64_t V = m.config().vocab;
    std::vector<int32_t> ids = {1};
    // No KV cache: the full prefix each step (200 steps of a 260K-parameter model).
    for (int step = 0; step < 200; ++step) {
        const std::vector<float> logits = m.forward({ids});
        const float* last = logits.data() + static_cast<int64_t>(ids.size() - 1) * V;
        ids.push_back(static_cast<int32_t>(std::max_element(last, last + V) - last));
    }
    EXPECT_EQ(ids, want);
#ifdef MICROSCALE_HAVE_TOKENIZER
    std::ifstream f(ref_path);
    std::stringstream ss;
    ss << f.rdbuf();
    const calib::Tokenizer tok = calib::Tokenizer::load(dir);
    const std::string text = tok.decode(std::vector<int32_t>(ids.begin() + 1, ids.end()));
    EXPECT_EQ(text, ss.str());
#endif
}

}  // namespace
}  // namespace microscale::model
