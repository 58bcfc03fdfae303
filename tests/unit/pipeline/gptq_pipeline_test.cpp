// `quantize` with a gptq stage: block codes stay those of the scale search, the weights change,
// and the layer objective drops on every linear.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "calib/dataset.h"
#include "format/quantize.h"
#include "io/checkpoint.h"
#include "model/synthetic.h"
#include "pipeline/quantize_job.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace microscale;

namespace {
constexpr const char* kGptqRecipe = R"(metadata: {recipe_type: ptq, description: "W4A16 NVFP4 static max + GPTQ"}
quantize:
  algorithm:
    - method: max
    - {method: gptq, perc_damp: 0.01, block_size: 64}
  quant_cfg:
    - {quantizer_name: '*', enable: false}
    - quantizer_name: '*weight_quantizer'
      cfg: {num_bits: e2m1, block_sizes: {-1: 16, type: static, scale_bits: e4m3}}
    - {quantizer_name: '*lm_head*', enable: false}
    - {parent_class: nn.Embedding, quantizer_name: '*', enable: false}
)";
}  // namespace

TEST(GptqPipeline, FixedCodesChangedWeightsLowerObjective) {
    microscale::test::TempDir tmp("ms-gptq");
    const fs::path in = tmp.path / "in", ids = tmp.path / "calib.ids", recipe = tmp.path / "gptq.yaml";
    model::SyntheticSpec spec;
    spec.hidden = 128;
    spec.vocab = 256;
    model::write_synthetic_llama(in, spec);
    std::ofstream(recipe) << kGptqRecipe;
    {
        std::ofstream f(ids);
        std::mt19937 rng(9);
        for (int d = 0; d < 40; ++d) {
            for (int t = 0; t < 60; ++t) f << (rng() % 255 + 1) << ' ';
            f << '\n';
        }
    }
    pipeline::QuantizeOptions o;
    o.model_dir = in;
    o.output_dir = tmp.path / "out";
    o.recipe = recipe.string();
    o.threads = 2;
    calib::CalibOptions c;
    c.file = ids;
    c.num_samples = 8;
    c.seq_len = 128;
    o.calibration.data = c;
    const auto r = pipeline::run_quantize(o);
    bool reported = false;
    for (const auto& n : r.notes) reported |= n.find("lowered on 14 of 14") != std::string::npos;
    EXPECT_TRUE(reported) << "GPTQ must lower the objective on all 14 linears";

    // Same codes as static max (with the group's shared amax), different element bytes.
    const io::Checkpoint src = io::Checkpoint::open(in), dst = io::Checkpoint::open(tmp.path / "out");
    const std::string name = "model.layers.1.mlp.down_proj";
    const auto& t = src.at(name + ".weight");
    format::WeightQuantSpec s;
    s.format = Format::W4A16_NVFP4;
    s.nvfp4.search = format::Nvfp4Search::STATIC_MAX;
    const auto rtn = format::quantize_weight({src.bytes(t).data(), t.info->dtype, t.info->shape[0], t.info->shape[1], name},
                                             s, format::Backend::REF, nullptr);
    const auto codes = dst.bytes(dst.at(name + ".weight_scale"));
    const auto packed = dst.bytes(dst.at(name + ".weight"));
    ASSERT_EQ(codes.size(), rtn.block_scales.size());
    EXPECT_EQ(std::memcmp(codes.data(), rtn.block_scales.data(), codes.size()), 0) << "GPTQ keeps the starting codes";
    EXPECT_NE(std::memcmp(packed.data(), rtn.data.data(), packed.size()), 0) << "GPTQ changes the elements";
}
