// `microscale eval` on the GPU (eval::evaluate_checkpoint with EvalDevice::gpu): FP32 GEMMs give
// the CPU's perplexity to 2e-4 relative in nats/token, BF16 to 2e-2, over the same window plan
// (several batches, strided windows); the report says where it ran.
#include <cmath>
#include <random>

#include "eval/eval_job.h"
#include "gpu_test_util.h"
#include "model/synthetic.h"
#include "support/temp_dir.h"

using namespace microscale;

TEST(GpuEval, PerplexityMatchesTheCpu) {
    MICROSCALE_REQUIRE_GPU();
    test::TempDir tmp("ms-gpu-eval");
    model::SyntheticSpec spec;
    spec.hidden = 256;
    spec.layers = 3;
    spec.heads = 4;
    spec.kv_heads = 2;
    spec.ffn = 512;
    spec.vocab = 512;
    spec.seed = 21;
    spec.threads = 2;
    const auto dir = tmp.path / "m";
    model::write_synthetic_llama(dir, spec);

    std::mt19937 rng(4);
    std::vector<std::vector<int32_t>> docs(2);
    for (auto& d : docs) {
        d.resize(700);
        for (auto& id : d) id = static_cast<int32_t>(rng() % 512);
    }
    eval::PerplexityOptions opts;
    opts.seq_len = 256;
    opts.stride = 128;
    opts.batch_tokens = 600;  // several forward batches
    const eval::WindowPlan plan = eval::plan_windows(docs, opts);
    const eval::DeployOptions deploy{true, true};

    const eval::CheckpointEval cpu = eval::evaluate_checkpoint(dir, plan, opts, -1, deploy, 2);
    const eval::CheckpointEval g32 = eval::evaluate_checkpoint(dir, plan, opts, -1, deploy, 2, {}, {true, false});
    const eval::CheckpointEval g16 = eval::evaluate_checkpoint(dir, plan, opts, -1, deploy, 2, {}, {true, true});
    EXPECT_EQ(cpu.device, "cpu");
    EXPECT_EQ(g32.device, "cuda (fp32 GEMMs)");
    EXPECT_EQ(g16.device, "cuda (bf16 GEMMs)");
    EXPECT_TRUE(g32.device_note.empty()) << g32.device_note;
    ASSERT_GT(cpu.result.tokens, 1000);
    EXPECT_EQ(g32.result.tokens, cpu.result.tokens);
    EXPECT_EQ(g16.result.tokens, cpu.result.tokens);
    const double want = cpu.result.nats_per_token();
    EXPECT_NEAR(g32.result.nats_per_token(), want, 2e-4 * want);
    EXPECT_NEAR(g16.result.nats_per_token(), want, 2e-2 * want);
}
