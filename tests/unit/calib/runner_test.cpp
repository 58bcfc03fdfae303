// The sequential runner gives the same statistics whether activations stay in memory or spill to
// a temporary file, and reports which happened; after_layer changes reach the next layer on rerun.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "calib/dataset.h"
#include "calib/runner.h"
#include "model/forward/model_forward.h"
#include "model/synthetic.h"
#include "support/temp_dir.h"

using namespace microscale;

TEST(CalibRunner, SpillToFileGivesTheSameStatistics) {
    microscale::test::TempDir tmp("ms-runner");
    model::SyntheticSpec spec;
    spec.hidden = 128;
    spec.vocab = 256;
    model::write_synthetic_llama(tmp.path / "m", spec);
    const auto ids = tmp.path / "c.ids";
    {
        std::ofstream f(ids);
        std::mt19937 rng(4);
        for (int d = 0; d < 10; ++d) {
            for (int t = 0; t < 50; ++t) f << (rng() % 255 + 1) << ' ';
            f << '\n';
        }
    }
    calib::CalibOptions c;
    c.file = ids;
    c.num_samples = 6;
    c.seq_len = 64;
    const calib::CalibSet set = calib::load_calibration(c, {}, 256, -1);
    model::ModelForward fwd(tmp.path / "m", 2);
    calib::RunnerOptions in_memory, spill;
    spill.activation_budget_bytes = 1;  // force the temporary file
    spill.batch_sequences = 4;          // and more than one batch
    calib::RunnerReport r1, r2;
    const auto a = calib::calibrate_max(fwd, set, in_memory, &r1);
    const auto b = calib::calibrate_max(fwd, set, spill, &r2);
    EXPECT_FALSE(r1.spilled);
    EXPECT_TRUE(r2.spilled);
    EXPECT_EQ(r1.activation_bytes, uint64_t(6 * 64 * 128 * 4));
    EXPECT_EQ(a.input_amax, b.input_amax);
    EXPECT_EQ(a.k_amax, b.k_amax);
    EXPECT_EQ(a.v_amax, b.v_amax);
    EXPECT_EQ(a.input_amax.size(), 2u * 7u + 1u);  // 7 linears per layer + lm_head
    EXPECT_GT(a.input_amax.at("model.layers.1.mlp.down_proj"), 0.0f);
}

// after_layer sees the layer's unchanged inputs; with rerun_after_layer its changes reach the next
// layer (as quantize_layer's do), without it they do not.
TEST(CalibRunner, AfterLayerChangesReachTheNextLayerOnlyWhenRerun) {
    microscale::test::TempDir tmp("ms-runner");
    model::SyntheticSpec spec;
    spec.hidden = 128;
    spec.vocab = 256;
    model::write_synthetic_llama(tmp.path / "m", spec);
    calib::CalibSet set;
    std::mt19937 rng(5);
    for (int s = 0; s < 5; ++s) {
        std::vector<int32_t> seq(32);
        for (auto& t : seq) t = int32_t(rng() % 255 + 1);
        set.samples.push_back(seq);
    }
    model::ModelForward fwd(tmp.path / "m", 2);
    const auto halve = [](model::DecoderLayerWeights& w) {
        for (auto& l : w.linears)
            if (l.name.ends_with("down_proj"))
                for (float& v : l.weight) v *= 0.5f;
    };
    calib::RunnerOptions before, after, after_no_rerun, plain;
    before.quantize_layer = halve;
    before.batch_sequences = after.batch_sequences = after_no_rerun.batch_sequences = 2;
    after.after_layer = halve;
    after_no_rerun.rerun_after_layer = false;
    int calls = 0;
    after_no_rerun.after_layer = [&](model::DecoderLayerWeights& w) {
        ++calls;
        halve(w);
    };
    const auto a = calib::calibrate_max(fwd, set, before);
    const auto b = calib::calibrate_max(fwd, set, after);
    const auto c = calib::calibrate_max(fwd, set, after_no_rerun);
    const auto d = calib::calibrate_max(fwd, set, plain);
    EXPECT_EQ(calls, 2);
    const std::string next = "model.layers.1.self_attn.q_proj";
    EXPECT_EQ(b.input_amax.at(next), a.input_amax.at(next)) << "rerun: layer 1 sees the changed layer 0";
    EXPECT_NE(b.input_amax.at(next), d.input_amax.at(next));
    EXPECT_EQ(c.input_amax.at(next), d.input_amax.at(next)) << "no rerun: layer 1 sees the original outputs";
    EXPECT_EQ(b.input_amax.at("model.layers.0.mlp.down_proj"), d.input_amax.at("model.layers.0.mlp.down_proj"))
        << "after_layer observes the layer as loaded";
}
