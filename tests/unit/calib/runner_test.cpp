// The sequential runner gives the same statistics whether activations stay in memory or spill to
// a temporary file, and reports which happened.
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
