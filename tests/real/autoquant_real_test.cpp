// `autoquant` on the real stories260K (label `real`): fp32 weights, tied lm_head, down_proj with
// 172 inputs (no NVFP4 for it), its own tokenizer on TinyStories text. The budget holds on the
// written checkpoint by inspect's count, and the recipe reproduces it byte for byte.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "calib/dataset.h"
#include "export/inspect.h"
#include "pipeline/autoquant_job.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace microscale;

namespace {

std::string read_all(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST(AutoquantReal, Stories260KBudgetAndReproducibleRecipe) {
    const fs::path assets = MICROSCALE_ASSETS_DIR;
    const fs::path in = assets / "stories260K/hf";
    const fs::path text = assets / "tinystories_val1000/tinystories_val_first1000.eot.txt";
    if (!fs::exists(in / "model.safetensors") || !fs::exists(text)) GTEST_SKIP() << "assets not found: " << assets;
    test::TempDir tmp("ms-aq-real");
    pipeline::AutoquantOptions o;
    o.model_dir = in;
    o.output_dir = tmp.path / "out";
    o.recipe_out = tmp.path / "plan.yaml";
    o.effective_bits = 10.0;
    o.formats = "nvfp4_4o6,fp8,bf16";
    o.threads = 2;
    calib::CalibOptions c;
    c.file = text;
    c.format = calib::CalibFormat::TEXT;
    c.num_samples = 8;
    c.seq_len = 128;
    o.calibration.data = c;
    const pipeline::AutoquantReport r = pipeline::run_autoquant(o);
    ASSERT_EQ(r.groups.size(), 20u);  // 5 layers x (q/k/v, o, gate/up, down)
    for (const auto& g : r.groups)
        if (g.name.ends_with("down_proj")) EXPECT_FALSE(g.available[0]) << g.name << ": 172 inputs";
    const double bits = exporter::inspect_checkpoint(o.output_dir).linear.bits();
    EXPECT_LE(bits, 10.0);
    EXPECT_EQ(bits, r.achieved_bits);
    std::set<int> choices;
    for (const auto& g : r.groups) choices.insert(g.choice);
    EXPECT_GE(choices.size(), 2u);
    pipeline::QuantizeOptions q;
    q.model_dir = in;
    q.output_dir = tmp.path / "again";
    q.recipe = o.recipe_out.string();
    q.calibration = o.calibration;
    pipeline::run_quantize(q);
    for (const auto& e : fs::directory_iterator(o.output_dir)) {
        const std::string n = e.path().filename().string();
        EXPECT_TRUE(read_all(e.path()) == read_all(q.output_dir / n)) << n;
    }
}
