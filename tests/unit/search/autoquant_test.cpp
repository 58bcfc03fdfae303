// AutoQuantize end to end on a small synthetic Llama: the budget holds on the written checkpoint
// by inspect's own count, the plan is the optimum of the reported scores and costs (brute force),
// `quantize --recipe` with the emitted recipe reproduces the checkpoint byte for byte, the
// scores order the formats as their errors do, and bad input fails with a clear message.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "calib/dataset.h"
#include "eval/act_quant.h"
#include "export/inspect.h"
#include "microscale/error.h"
#include "model/forward/model_forward.h"
#include "model/synthetic.h"
#include "pipeline/autoquant_job.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace microscale;
using microscale::test::TempDir;

namespace {

// dir/in: 2 layers, hidden 128, ffn 688 (every linear takes NVFP4); dir/calib.ids.
void make_model(const fs::path& dir) {
    model::SyntheticSpec spec;
    spec.hidden = 128;
    spec.vocab = 256;
    spec.layers = 2;
    spec.seed = 7;
    model::write_synthetic_llama(dir / "in", spec);
    std::ofstream f(dir / "calib.ids");
    std::mt19937 rng(11);
    for (int d = 0; d < 24; ++d) {
        for (int t = 0; t < 40; ++t) f << (rng() % 255 + 1) << ' ';
        f << '\n';
    }
}

pipeline::AutoquantOptions options(const fs::path& dir, double bits, const std::string& formats) {
    pipeline::AutoquantOptions o;
    o.model_dir = dir / "in";
    o.output_dir = dir / "out";
    o.recipe_out = dir / "plan.yaml";
    o.effective_bits = bits;
    o.formats = formats;
    o.threads = 2;
    calib::CalibOptions c;
    c.file = dir / "calib.ids";
    c.num_samples = 6;
    c.seq_len = 32;
    o.calibration.data = c;
    return o;
}

std::string read_all(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Every file of a and b, by name and content.
void expect_same_files(const fs::path& a, const fs::path& b) {
    std::set<std::string> na, nb;
    for (const auto& e : fs::directory_iterator(a)) na.insert(e.path().filename().string());
    for (const auto& e : fs::directory_iterator(b)) nb.insert(e.path().filename().string());
    ASSERT_EQ(na, nb);
    for (const std::string& n : na) EXPECT_TRUE(read_all(a / n) == read_all(b / n)) << n << " differs";
}

// The best score within budget over every assignment of the report's available choices.
double brute_force_best(const pipeline::AutoquantReport& r) {
    const size_t n = r.groups.size(), k = r.candidates.size();
    std::vector<size_t> pick(n, 0);
    double best = INFINITY;
    while (true) {
        bool ok = true;
        uint64_t bytes = 0;
        double score = 0.0;
        for (size_t g = 0; g < n && ok; ++g) {
            ok = r.groups[g].available[pick[g]];
            bytes += r.groups[g].bytes[pick[g]];
            score += r.groups[g].score[pick[g]];
        }
        if (ok && bytes <= r.budget_bytes) best = std::min(best, score);
        size_t g = 0;
        while (g < n && ++pick[g] == k) pick[g++] = 0;
        if (g == n) break;
    }
    return best;
}

}  // namespace

TEST(Autoquant, MeetsBudgetAsInspectCountsAndRecipeReproducesCheckpoint) {
    TempDir tmp("ms-aq");
    make_model(tmp.path);
    const double budget = 6.0;
    pipeline::AutoquantOptions o = options(tmp.path, budget, "nvfp4_4o6,fp8,bf16");
    const pipeline::AutoquantReport r = pipeline::run_autoquant(o);
    ASSERT_TRUE(r.exported);
    ASSERT_EQ(r.groups.size(), 8u);  // per layer: q/k/v, o, gate/up, down

    // The done-when bar: inspect's BPE of the output is within the budget.
    const exporter::InspectReport ins = exporter::inspect_checkpoint(o.output_dir);
    EXPECT_LE(ins.linear.bits(), budget);
    EXPECT_EQ(ins.linear.bits(), r.achieved_bits);
    EXPECT_EQ(ins.quant_algo, "MIXED_PRECISION");
    std::set<int> choices;
    for (const auto& g : r.groups) choices.insert(g.choice);
    EXPECT_GE(choices.size(), 2u) << "a 6-bit budget between NVFP4 and FP8 needs a mix";
    // Exact: no assignment of these scores and costs does better within the budget.
    EXPECT_DOUBLE_EQ(r.total_score, brute_force_best(r));

    // Scores: bf16 0, the quantized candidates positive (their values are checked against the
    // deployed checkpoints below). No order between NVFP4 and FP8 is assumed: on this synthetic
    // model's heavy-tailed weights per-tensor FP8 can lose more than per-block NVFP4.
    for (const auto& g : r.groups) {
        EXPECT_EQ(g.score[2], 0.0) << g.name;
        EXPECT_GT(g.score[1], 0.0) << g.name;
        EXPECT_GT(g.score[0], 0.0) << g.name;
    }

    // quantize --recipe with the emitted file: the same checkpoint, byte for byte.
    // The recipe names every quantized module exactly, and no bf16 one.
    const std::string yaml = read_all(o.recipe_out);
    for (const auto& g : r.groups)
        for (const std::string& m : g.modules) {
            const bool has_rule = yaml.find("quantizer_name: '" + m + ".weight_quantizer'") != std::string::npos;
            EXPECT_EQ(has_rule, r.candidates[static_cast<size_t>(g.choice)] != "bf16") << m << "\n" << yaml;
        }
    pipeline::QuantizeOptions q;
    q.model_dir = o.model_dir;
    q.output_dir = tmp.path / "again";
    q.recipe = o.recipe_out.string();
    q.threads = 1;  // a different thread count: the bytes must not change
    q.calibration = o.calibration;
    pipeline::run_quantize(q);
    expect_same_files(o.output_dir, q.output_dir);
    EXPECT_NE(r.rerun_command.find("--recipe " + o.recipe_out.string()), std::string::npos) << r.rerun_command;
}

namespace {

const std::string kNvfp4Cfg = "{num_bits: e2m1, block_sizes: {-1: 16, type: dynamic, scale_bits: e4m3}}";
const std::string kFp8Cfg = "{num_bits: e4m3, axis: null}";

// A checkpoint with only `modules` quantized (weights and inputs by these cfgs), by a recipe
// written here, independently of autoquant's emitter.
fs::path only_group_checkpoint(const fs::path& dir, const pipeline::AutoquantOptions& o,
                               const std::vector<std::string>& modules, const std::string& cfg, const std::string& tag) {
    std::string yaml = "quantize:\n  algorithm: max\n  quant_cfg:\n    - {quantizer_name: '*', enable: false}\n";
    for (const std::string& m : modules)
        yaml += "    - {quantizer_name: '" + m + ".weight_quantizer', cfg: " + cfg + "}\n" +
                "    - {quantizer_name: '" + m + ".input_quantizer', cfg: " + cfg + "}\n";
    const fs::path recipe = dir / (tag + ".yaml"), out = dir / ("only-" + tag);
    std::ofstream(recipe) << yaml;
    pipeline::QuantizeOptions q;
    q.model_dir = o.model_dir;
    q.output_dir = out;
    q.recipe = recipe.string();
    q.calibration = o.calibration;
    pipeline::run_quantize(q);
    return out;
}

}  // namespace

// The kl score of a group is the KL the deployed checkpoint with only that group quantized has
// against the original: the exported weights decoded and its inputs fake-quantized by eval's
// DeployedQuantization (W4A4 NVFP4 and FP8 W8A8, so the input scales are checked too).
TEST(Autoquant, KlScoreIsTheDeployedCheckpointsKl) {
    TempDir tmp("ms-aq");
    make_model(tmp.path);
    pipeline::AutoquantOptions o = options(tmp.path, 16.0, "nvfp4,fp8");
    o.w4a4 = true;
    o.output_dir.clear();
    const pipeline::AutoquantReport r = pipeline::run_autoquant(o);
    const model::TokenSequences samples =
        calib::load_calibration(*o.calibration.data, {}, 256, -1).samples;
    model::ModelForward ref(o.model_dir, 2);
    const std::vector<float> ref_logits = ref.forward(samples);
    const int64_t V = 256, T = static_cast<int64_t>(ref_logits.size()) / V;
    const auto log_softmax = [&](const float* row) {
        std::vector<double> out(static_cast<size_t>(V));
        double m = row[0], sum = 0.0;
        for (int64_t j = 1; j < V; ++j) m = std::max(m, double(row[j]));
        for (int64_t j = 0; j < V; ++j) sum += std::exp(double(row[j]) - m);
        for (int64_t j = 0; j < V; ++j) out[static_cast<size_t>(j)] = double(row[j]) - m - std::log(sum);
        return out;
    };
    struct Case {
        size_t group;
        std::string fmt, cfg;
    };
    for (const Case& c : {Case{4, "nvfp4", kNvfp4Cfg}, Case{6, "fp8", kFp8Cfg}, Case{1, "fp8", kFp8Cfg}}) {
        const auto& g = r.groups[c.group];
        const fs::path out = only_group_checkpoint(tmp.path, o, g.modules, c.cfg, c.fmt + std::to_string(c.group));
        model::ModelForward deployed(out, 2);
        eval::DeployedQuantization act(deployed.layout(), deployed.checkpoint(), {});
        ASSERT_EQ(act.counts().quantized_weights, static_cast<int>(g.modules.size()));
        const std::vector<float> logits = deployed.forward(samples, &act);
        double kl = 0.0;
        for (int64_t t = 0; t < T; ++t) {
            const auto lr = log_softmax(ref_logits.data() + t * V), lq = log_softmax(logits.data() + t * V);
            for (int64_t j = 0; j < V; ++j) kl += std::exp(lr[static_cast<size_t>(j)]) * (lr[static_cast<size_t>(j)] - lq[static_cast<size_t>(j)]);
        }
        kl /= double(T);
        const size_t ci = c.fmt == "nvfp4" ? 0 : 1;
        EXPECT_GT(kl, 0.0);
        EXPECT_NEAR(g.score[ci], kl, 1e-4 * kl) << g.name << " " << c.fmt;
    }
}

namespace {

// The inputs of the chosen linears during a reference forward pass, [rows, in] each.
struct CaptureInputs : model::LayerObserver {
    std::set<std::string> wanted;
    std::map<std::string, std::vector<float>> x;
    void linear_input(const model::LinearWeights& l, const float* in, int64_t rows, int64_t ld) override {
        if (!wanted.count(l.name)) return;
        auto& v = x[l.name];
        for (int64_t r = 0; r < rows; ++r) v.insert(v.end(), in + r * ld, in + r * ld + l.in);
    }
};

}  // namespace

// The mse proxy of a group is ||Q(X) W_hat^T - X W^T||^2 / tokens summed over its linears, with
// W_hat decoded from the exported checkpoint and Q eval's deployed input quantizer; the recipe
// autoquant writes then quantizes to what inspect counts.
TEST(Autoquant, MseProxyIsTheOutputErrorAndRecipeRuns) {
    TempDir tmp("ms-aq");
    make_model(tmp.path);
    pipeline::AutoquantOptions o = options(tmp.path, 10.0, "nvfp4,fp8,bf16");
    o.method = "mse";
    o.w4a4 = true;
    o.output_dir.clear();  // recipe only
    o.scores_out = tmp.path / "scores.json";
    const pipeline::AutoquantReport r = pipeline::run_autoquant(o);
    EXPECT_FALSE(r.exported);
    {
        // Saved scores solve another budget over a subset of the formats, without forward passes.
        pipeline::AutoquantOptions again = o;
        again.scores_out.clear();
        again.scores_in = o.scores_out;
        again.formats = "nvfp4,bf16";
        again.effective_bits = 6.0;
        again.recipe_out = tmp.path / "again.yaml";
        const pipeline::AutoquantReport r2 = pipeline::run_autoquant(again);
        ASSERT_EQ(r2.groups.size(), r.groups.size());
        for (size_t g = 0; g < r.groups.size(); ++g) EXPECT_EQ(r2.groups[g].score[0], r.groups[g].score[0]);
        EXPECT_LE(r2.achieved_bits, 6.0);
        EXPECT_DOUBLE_EQ(r2.total_score, brute_force_best(r2));
        again.method = "kl";
        again.force = true;
        try {
            pipeline::run_autoquant(again);
            ADD_FAILURE() << "kl from mse scores accepted";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("scored with --method mse"), std::string::npos) << e.what();
        }
    }
    EXPECT_LE(r.achieved_bits, 10.0);
    EXPECT_GT(r.achieved_bits, 4.5);
    EXPECT_DOUBLE_EQ(r.total_score, brute_force_best(r));
    for (const auto& g : r.groups) {
        EXPECT_GT(g.score[0], 0.0) << g.name;
        EXPECT_GT(g.score[1], 0.0) << g.name;
        EXPECT_EQ(g.score[2], 0.0) << g.name;
    }
    const model::TokenSequences samples = calib::load_calibration(*o.calibration.data, {}, 256, -1).samples;
    model::ModelForward ref(o.model_dir, 2);
    for (const auto& [group, fmt] : std::vector<std::pair<size_t, std::string>>{{0, "nvfp4"}, {5, "fp8"}, {7, "nvfp4"}}) {
        const auto& g = r.groups[group];
        CaptureInputs cap;
        cap.wanted.insert(g.modules.begin(), g.modules.end());
        ref.forward(samples, &cap);
        const fs::path out = only_group_checkpoint(tmp.path, o, g.modules, fmt == "fp8" ? kFp8Cfg : kNvfp4Cfg,
                                                   fmt + std::to_string(group));
        model::ModelForward deployed(out, 2);
        eval::DeployedQuantization act(deployed.layout(), deployed.checkpoint(), {});
        double sum = 0.0;
        int64_t tokens = 0;
        for (const std::string& name : g.modules) {
            const model::LinearModule* m = nullptr;
            for (const auto& l : deployed.layout().linears)
                if (l.name == name) m = &l;
            ASSERT_NE(m, nullptr);
            const auto& orig = ref.layout().linears[static_cast<size_t>(&*m - deployed.layout().linears.data())];
            const std::vector<float> w = model::load_linear_weight(ref.checkpoint(), orig);
            const std::vector<float> w_hat = model::load_linear_weight(deployed.checkpoint(), *m);
            const std::vector<float>& x = cap.x.at(name);
            const int64_t in = m->in_features, out_f = m->out_features, rows = static_cast<int64_t>(x.size()) / in;
            model::LinearWeights lw;
            lw.linear = static_cast<int>(&*m - deployed.layout().linears.data());
            lw.in = in;
            std::vector<float> scratch;
            const float* xq = act.transform_linear_input(lw, x.data(), rows, in, scratch);
            for (int64_t t = 0; t < rows; ++t)
                for (int64_t o2 = 0; o2 < out_f; ++o2) {
                    double y = 0.0, yq = 0.0;
                    for (int64_t k = 0; k < in; ++k) {
                        y += double(x[static_cast<size_t>(t * in + k)]) * w[static_cast<size_t>(o2 * in + k)];
                        yq += double(xq[t * in + k]) * w_hat[static_cast<size_t>(o2 * in + k)];
                    }
                    sum += (yq - y) * (yq - y);
                }
            tokens = rows;
        }
        const size_t ci = fmt == "fp8" ? 1 : 0;
        EXPECT_NEAR(g.score[ci], sum / double(tokens), 1e-3 * sum / double(tokens)) << g.name << " " << fmt;
    }
    // The recipe alone, run by quantize, gives what inspect counts.
    pipeline::QuantizeOptions q;
    q.model_dir = o.model_dir;
    q.output_dir = tmp.path / "from-recipe";
    q.recipe = o.recipe_out.string();
    q.calibration = o.calibration;
    pipeline::run_quantize(q);
    EXPECT_EQ(exporter::inspect_checkpoint(q.output_dir).linear.bits(), r.achieved_bits);
}

// An F32 checkpoint whose down_proj (in_features 200) NVFP4 cannot take: that group chooses
// between FP8 and "bf16" (left as stored: 32 bits here), and inspect still agrees on the bits.
TEST(Autoquant, UnavailableFormatsAndStoredDtypeCost) {
    TempDir tmp("ms-aq");
    make_model(tmp.path);
    model::SyntheticSpec spec;
    spec.hidden = 128;
    spec.vocab = 256;
    spec.layers = 1;
    spec.ffn = 200;
    spec.dtype = DType::F32;
    model::write_synthetic_llama(tmp.path / "f32", spec);
    pipeline::AutoquantOptions o = options(tmp.path, 7.0, "nvfp4,fp8");
    o.model_dir = tmp.path / "f32";
    const pipeline::AutoquantReport r = pipeline::run_autoquant(o);
    ASSERT_EQ(r.groups.size(), 4u);
    const auto& down = r.groups[3];
    EXPECT_EQ(down.name, "model.layers.0.mlp.down_proj");
    EXPECT_FALSE(down.available[0]) << "NVFP4 needs in_features divisible by 16";
    EXPECT_TRUE(down.available[1]);
    EXPECT_NE(down.choice, 0);
    EXPECT_EQ(down.bytes[2], down.elements * 4) << "unquantized F32 costs 32 bits";
    EXPECT_EQ(exporter::inspect_checkpoint(o.output_dir).linear.bits(), r.achieved_bits);
    EXPECT_LE(r.achieved_bits, 7.0);
    // The cheapest plan has down_proj at FP8, so the minimum is above 4.5.
    const std::string m = [&] {
        try {
            pipeline::AutoquantOptions low = o;
            low.effective_bits = 4.6;
            low.force = true;
            pipeline::run_autoquant(low);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    }();
    EXPECT_NE(m.find(fmt::format("minimum achievable {:.4f}", r.min_bits)), std::string::npos) << m;
    EXPECT_GT(r.min_bits, 5.0);
}

TEST(Autoquant, ClearErrors) {
    TempDir tmp("ms-aq");
    make_model(tmp.path);
    const auto message = [&](pipeline::AutoquantOptions o) -> std::string {
        try {
            pipeline::run_autoquant(o);
        } catch (const Error& e) {
            return e.what();
        }
        return "(no error)";
    };
    std::string m = message(options(tmp.path, 5.0, "nvfp4_4o6,int4"));
    EXPECT_NE(m.find("unknown format 'int4'"), std::string::npos) << m;
    EXPECT_NE(m.find("nvfp4_4o6"), std::string::npos) << m << ": lists the known names";
    m = message(options(tmp.path, 5.0, "nvfp4,nvfp4_4o6"));
    EXPECT_NE(m.find("one NVFP4 variant"), std::string::npos) << m;
    m = message(options(tmp.path, 4.4, "nvfp4_4o6,fp8"));
    EXPECT_NE(m.find("minimum achievable 4.50"), std::string::npos) << m;
    m = message(options(tmp.path, 7.0, "fp8,bf16"));
    EXPECT_NE(m.find("minimum achievable 8.00"), std::string::npos) << m;
    auto no_calib = options(tmp.path, 5.0, "nvfp4");
    no_calib.calibration.data.reset();
    m = message(no_calib);
    EXPECT_NE(m.find("--calib"), std::string::npos) << m;
    EXPECT_FALSE(fs::exists(tmp.path / "plan.yaml")) << "nothing is written on error";
}
