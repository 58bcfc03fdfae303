// AutoQuantize end to end on a small synthetic Llama: the budget holds on the written checkpoint
// by inspect's own count, the plan is the optimum of the reported scores and costs (brute force),
// `quantize --recipe` with the emitted recipe reproduces the checkpoint byte for byte, the
// scores order the formats as their errors do, and bad input fails with a clear message.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "export/inspect.h"
#include "microscale/error.h"
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

    // KL scores: bf16 0, then fp8 below 4/6 on every group, all positive.
    for (const auto& g : r.groups) {
        EXPECT_EQ(g.score[2], 0.0) << g.name;
        EXPECT_GT(g.score[1], 0.0) << g.name;
        EXPECT_GT(g.score[0], g.score[1]) << g.name << ": NVFP4 must hurt more than FP8";
    }

    // quantize --recipe with the emitted file: the same checkpoint, byte for byte.
    const std::string yaml = read_all(o.recipe_out);
    EXPECT_NE(yaml.find("quantizer_name: 'model.layers.0.self_attn.q_proj.weight_quantizer'"), std::string::npos) << yaml;
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

TEST(Autoquant, MseProxyWeightOnlyNvfp4) {
    TempDir tmp("ms-aq");
    make_model(tmp.path);
    pipeline::AutoquantOptions o = options(tmp.path, 10.0, "nvfp4,bf16");
    o.method = "mse";
    o.output_dir.clear();  // recipe only
    const pipeline::AutoquantReport r = pipeline::run_autoquant(o);
    EXPECT_FALSE(r.exported);
    EXPECT_LE(r.achieved_bits, 10.0);
    EXPECT_GT(r.achieved_bits, 4.5);
    EXPECT_DOUBLE_EQ(r.total_score, brute_force_best(r));
    for (const auto& g : r.groups) EXPECT_GT(g.score[0], 0.0) << g.name;
    // The recipe alone, run by quantize: no calibration needed (W4A16), inspect agrees.
    pipeline::QuantizeOptions q;
    q.model_dir = o.model_dir;
    q.output_dir = tmp.path / "from-recipe";
    q.recipe = o.recipe_out.string();
    pipeline::run_quantize(q);
    EXPECT_EQ(exporter::inspect_checkpoint(q.output_dir).linear.bits(), r.achieved_bits);
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
