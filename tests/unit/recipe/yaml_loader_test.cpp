// YAML schema: imports / $import composition, cycles, legacy dict form, error locations.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "microscale/error.h"
#include "recipe/recipe.h"

namespace microscale::recipe {
namespace {

namespace fs = std::filesystem;

// A scratch directory of recipe files, removed afterwards.
class RecipeFiles : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("microscale_recipe_test_" + std::to_string(::getpid()) + "_" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string write(const std::string& name, const std::string& text) {
        const fs::path p = dir_ / name;
        fs::create_directories(p.parent_path());
        std::ofstream(p) << text;
        return p.string();
    }
    fs::path dir_;
};

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(RecipeYaml, NumBitsForms) {
    const Recipe r = load_recipe_text(R"(
quant_cfg:
  - {quantizer_name: a, cfg: {num_bits: e2m1, block_sizes: {-1: 16, type: dynamic, scale_bits: e4m3}}}
  - {quantizer_name: b, cfg: {num_bits: [4, 3]}}
  - {quantizer_name: c, cfg: {num_bits: E4M3, axis: 0}}
  - {quantizer_name: d, cfg: {num_bits: 4, block_sizes: {-1: 128, type: static}}}
  - {quantizer_name: e, cfg: {num_bits: e5m2, block_sizes: {-1: 32, type: dynamic, scale_bits: [8, 0]}}}
  - {quantizer_name: f, cfg: {num_bits: 8, axis: [1]}}
)", "t.yaml");
    ASSERT_EQ(r.rules.size(), 6u);
    EXPECT_TRUE(r.rules[0].cfg->num_bits.is(2, 1));
    EXPECT_TRUE(r.rules[0].cfg->block_sizes->scale_bits->is(4, 3));
    EXPECT_TRUE(r.rules[1].cfg->num_bits.is(4, 3));
    EXPECT_EQ(r.rules[2].cfg->axis, 0);
    EXPECT_EQ(r.rules[3].cfg->num_bits, NumBits::integer(4));
    EXPECT_EQ(r.rules[3].cfg->block_sizes->size_along(-1), 128);
    EXPECT_TRUE(r.rules[4].cfg->num_bits.is(5, 2));
    EXPECT_TRUE(r.rules[4].cfg->block_sizes->scale_bits->is(8, 0));
    EXPECT_EQ(r.rules[5].cfg->axis, 1);
}

TEST(RecipeYaml, AlgorithmForms) {
    auto algos = [](const std::string& a) {
        return load_recipe_text("algorithm: " + a + "\nquant_cfg: [{quantizer_name: '*', enable: false}]", "t.yaml").algorithms;
    };
    EXPECT_EQ(algos("max").at(0).method, "max");
    EXPECT_TRUE(algos("null").empty());
    const auto mse = algos("{method: mse, fp8_scale_sweep: true, step_size: 0.2}");
    EXPECT_EQ(mse.at(0).method, "mse");
    EXPECT_TRUE(mse.at(0).flag("fp8_scale_sweep", false));
    EXPECT_DOUBLE_EQ(mse.at(0).number("step_size", 0), 0.2);
    const auto list = algos("[max, {method: gptq, perc_damp: 0.01, block_size: 128}]");
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[1].integer("block_size", 0), 128);
    EXPECT_EQ(load_recipe_text("quant_cfg: [{quantizer_name: '*', enable: false}]", "t").algorithms.at(0).method, "max");
    EXPECT_NE(error_of([&] { algos("{method: mse, step_sizes: 0.1}"); }).find("step_sizes"), std::string::npos);
    EXPECT_NE(error_of([&] { algos("smartquant"); }).find("unknown calibration algorithm 'smartquant'"), std::string::npos);
    EXPECT_NE(error_of([&] { algos("{method: mse, start_multiplier: 2.0, stop_multiplier: 1.0}"); }).find("stop_multiplier"),
              std::string::npos);
    EXPECT_NE(error_of([&] { algos("{method: gptq, block_size: 1.5}"); }).find("integer"), std::string::npos);
    EXPECT_NE(error_of([&] { algos("{method: mse, fp8_scale_sweep: maybe}"); }).find("true or false"), std::string::npos);
}

TEST(RecipeYaml, UnknownKeysNameFileLineAndKey) {
    const std::string text =
        "metadata:\n"
        "  recipe_type: ptq\n"
        "quantize:\n"
        "  algorithm: max\n"
        "  quant_cfg:\n"
        "    - quantizer_name: '*weight_quantizer'\n"
        "      cfg:\n"
        "        num_bits: e2m1\n"
        "        block_size: {-1: 16}\n";  // typo: block_sizes
    const std::string err = error_of([&] { load_recipe_text(text, "typo.yaml"); });
    EXPECT_NE(err.find("typo.yaml:9:"), std::string::npos) << err;
    EXPECT_NE(err.find("'block_size'"), std::string::npos) << err;

    const std::string top = error_of([] { load_recipe_text("quantise:\n  quant_cfg: []\n", "top.yaml"); });
    EXPECT_NE(top.find("top.yaml:1:1"), std::string::npos) << top;
    EXPECT_NE(top.find("'quantise'"), std::string::npos) << top;

    const std::string rule = error_of([] { load_recipe_text("quant_cfg:\n  - {quantizer_name: '*', enabled: false}\n", "r.yaml"); });
    EXPECT_NE(rule.find("r.yaml:2:"), std::string::npos) << rule;
    EXPECT_NE(rule.find("'enabled'"), std::string::npos) << rule;

    const std::string bad = error_of([] {
        load_recipe_text("quant_cfg:\n  - quantizer_name: x\n    cfg: {num_bits: e3m3}\n", "v.yaml");
    });
    EXPECT_NE(bad.find("v.yaml:3:"), std::string::npos) << bad;
    EXPECT_NE(bad.find("num_bits"), std::string::npos) << bad;

    const std::string blk = error_of([] {
        load_recipe_text("quant_cfg:\n  - quantizer_name: x\n    cfg:\n      num_bits: e2m1\n      block_sizes: {-1: 16, typ: dynamic}\n", "b.yaml");
    });
    EXPECT_NE(blk.find("b.yaml:5:"), std::string::npos) << blk;
    EXPECT_NE(blk.find("'typ'"), std::string::npos) << blk;

    const std::string syn = error_of([] { load_recipe_text("quant_cfg: [\n  {a: b\n", "s.yaml"); });
    EXPECT_NE(syn.find("s.yaml:"), std::string::npos) << syn;
    EXPECT_NE(syn.find("YAML syntax error"), std::string::npos) << syn;
}

TEST(RecipeYaml, ModelOptValidationRules) {
    auto err = [](const std::string& qc) { return error_of([&] { load_recipe_text("quant_cfg:\n" + qc, "m.yaml"); }); };
    EXPECT_NE(err("  - {quantizer_name: x}\n").find("neither cfg nor enable"), std::string::npos);
    EXPECT_NE(err("  - {quantizer_name: x, cfg: {}}\n").find("empty cfg"), std::string::npos);
    EXPECT_EQ(err("  - {quantizer_name: x, cfg: {}, enable: false}\n"), "");
    EXPECT_NE(err("  - {quantizer_name: x, cfg: {num_bits: 8, axis: 0, block_sizes: {-1: 16}}}\n").find("axis must be null"),
              std::string::npos);
    EXPECT_NE(err("  - {quantizer_name: x, cfg: {num_bits: e5m2}}\n").find("dynamic block"), std::string::npos);
    EXPECT_NE(err("  - {quantizer_name: x, cfg: {num_bits: e2m1, block_sizes: {-1: 16, 0: 4, type: dynamic}}}\n").find("one"),
              std::string::npos);
    EXPECT_NE(err("  - {quantizer_name: x, cfg: [{num_bits: 4}, {num_bits: e4m3}]}\n").find("SequentialQuantizer"),
              std::string::npos);
    EXPECT_NE(err("  - {quantizer_name: x, cfg: {enable: true}}\n").find("enable"), std::string::npos);
    EXPECT_NE(err("  - {quantizer_name: x, enable: false, enable: true}\n").find("duplicate"), std::string::npos);
    EXPECT_NE(err("  - {enable: false}\n").find("quantizer_name"), std::string::npos);
    // cfg.enable is overridden by the rule's enable (default true), with a warning.
    const Recipe r = load_recipe_text("quant_cfg:\n  - {quantizer_name: x, cfg: {num_bits: e4m3, enable: false}}\n", "w.yaml");
    EXPECT_TRUE(resolve(r, "x", "").enable);
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_NE(r.warnings[0].find("cfg.enable is ignored"), std::string::npos);
}

TEST(RecipeYaml, LegacyDictForm) {
    const Recipe r = load_recipe_text(R"(
quant_cfg:
  '*weight_quantizer': {num_bits: [2, 1], block_sizes: {-1: 16, type: dynamic, scale_bits: [4, 3]}, axis: null, enable: true}
  '*input_quantizer': {num_bits: [2, 1], block_sizes: {-1: 16, type: dynamic, scale_bits: [4, 3]}, axis: null, enable: true}
  '*lm_head*': {enable: false}
  nn.BatchNorm2d: {'*': {enable: false}}
  default: {enable: false}
algorithm: max
)", "legacy.yaml");
    ASSERT_EQ(r.rules.size(), 5u);
    EXPECT_EQ(r.rules[3].parent_class, "nn.BatchNorm2d");
    EXPECT_EQ(r.rules[4].quantizer_name, "*");  // 'default' is converted in place, not moved first
    EXPECT_FALSE(r.rules[2].cfg);
    EXPECT_FALSE(r.warnings.empty());
    // 'default' last disables everything, as in ModelOpt 0.46.
    EXPECT_FALSE(resolve(r, "model.layers.0.mlp.up_proj.weight_quantizer", "nn.Linear").enable);

    const Recipe first = load_recipe_text(R"(
quant_cfg:
  default: {enable: false}
  '*weight_quantizer': {num_bits: e4m3, axis: null}
  '*lm_head*': {enable: false}
)", "legacy2.yaml");
    EXPECT_EQ(weight_format_of(resolve(first, "model.layers.0.mlp.up_proj.weight_quantizer", "nn.Linear")), Format::FP8);
    EXPECT_FALSE(resolve(first, "model.layers.0.mlp.up_proj.input_quantizer", "nn.Linear").enable);
    EXPECT_FALSE(resolve(first, "lm_head.weight_quantizer", "nn.Linear").enable);

    // Single-key legacy entries inside a list are accepted too.
    const Recipe mixed = load_recipe_text("quant_cfg:\n  - {'*': {enable: false}}\n  - {quantizer_name: '*q_proj*', cfg: {num_bits: e4m3}}\n", "m.yaml");
    ASSERT_EQ(mixed.rules.size(), 2u);
    EXPECT_EQ(mixed.rules[0].enable, false);
}

TEST_F(RecipeFiles, ImportsFromFilesAndBuiltins) {
    write("snips/my_fp8.yaml", "num_bits: e4m3\naxis: null\n");
    write("units/kv.yaml",
          "imports:\n  f: ../snips/my_fp8\n---\n- quantizer_name: '*[kv]_bmm_quantizer'\n  cfg: {$import: f, use_constant_amax: true}\n");
    const std::string main = write("main.yaml", R"(imports:
  off: configs/ptq/units/base_disable_all
  nvfp4: configs/numerics/nvfp4
  dd: configs/ptq/units/default_disabled_quantizers
  kv: units/kv
metadata:
  recipe_type: ptq
  description: test recipe
quantize:
  algorithm: max
  quant_cfg:
    - $import: off
    - quantizer_name: '*weight_quantizer'
      cfg: {$import: nvfp4, effective_bits: 4.25}
    - $import: kv
    - $import: dd
)");
    const Recipe r = load_recipe_file(main);
    EXPECT_EQ(r.name, "main");
    EXPECT_EQ(r.description, "test recipe");
    ASSERT_EQ(r.rules.size(), 1u + 1u + 1u + 23u);
    const QuantizerAttributes w = resolve(r, "model.layers.0.mlp.up_proj.weight_quantizer", "nn.Linear");
    EXPECT_EQ(w.effective_bits, 4.25);  // inline keys override the imported snippet
    EXPECT_EQ(w.block_sizes->type, BlockType::Dynamic);
    const QuantizerAttributes k = resolve(r, "model.layers.0.self_attn.k_bmm_quantizer", "LlamaAttention");
    EXPECT_TRUE(k.enable);
    EXPECT_TRUE(k.use_constant_amax);
    EXPECT_TRUE(k.num_bits.is(4, 3));
    EXPECT_NE(r.rules[2].where.file.find("kv.yaml"), std::string::npos);  // rules remember their file
    EXPECT_EQ(r.rules[2].where.line, 4);
    EXPECT_FALSE(resolve(r, "lm_head.weight_quantizer", "nn.Linear").enable);
}

TEST_F(RecipeFiles, ImportListOfSnippetsMergesInOrder) {
    write("a.yaml", "num_bits: e2m1\nblock_sizes: {-1: 16, type: static, scale_bits: e4m3}\neffective_bits: 4.0\n");
    write("b.yaml", "effective_bits: 4.5\n");
    const Recipe r = load_recipe_file(write("r.yaml",
        "imports: {a: a, b: b}\nquant_cfg:\n  - {quantizer_name: w, cfg: {$import: [a, b]}}\n"));
    EXPECT_EQ(r.rules.at(0).cfg->effective_bits, 4.5);
    EXPECT_EQ(r.rules.at(0).cfg->block_sizes->type, BlockType::Static);
}

TEST_F(RecipeFiles, CyclesAndMissingImportsAreErrors) {
    write("x.yaml", "imports: {y: y}\n---\n- $import: y\n");
    write("y.yaml", "imports: {x: x}\n---\n- $import: x\n");
    const std::string cyc = error_of([&] { load_recipe_file(write("top.yaml", "imports: {x: x}\nquant_cfg: [{$import: x}]\n")); });
    EXPECT_NE(cyc.find("circular import"), std::string::npos) << cyc;
    EXPECT_NE(cyc.find("y.yaml"), std::string::npos) << cyc;

    const std::string self = error_of([&] { load_recipe_file(write("self.yaml", "imports: {me: self}\nquant_cfg: [{$import: me}]\n")); });
    EXPECT_NE(self.find("circular import"), std::string::npos) << self;

    const std::string missing = error_of([&] { load_recipe_file(write("m.yaml", "imports: {z: no/such/file}\nquant_cfg: []\n")); });
    EXPECT_NE(missing.find("m.yaml:1:"), std::string::npos) << missing;
    EXPECT_NE(missing.find("cannot find import 'no/such/file'"), std::string::npos) << missing;

    const std::string alias = error_of([&] {
        load_recipe_file(write("u.yaml", "imports: {off: configs/ptq/units/base_disable_all}\nquant_cfg: [{$import: of}]\n"));
    });
    EXPECT_NE(alias.find("unknown $import 'of'"), std::string::npos) << alias;

    const std::string kind = error_of([&] {
        load_recipe_file(write("k.yaml", "imports: {n: configs/numerics/nvfp4}\nquant_cfg: [{$import: n}]\n"));
    });
    EXPECT_NE(kind.find("must be a list of rules"), std::string::npos) << kind;

    const std::string kind2 = error_of([&] {
        load_recipe_file(write("k2.yaml", "imports: {d: configs/ptq/units/base_disable_all}\nquant_cfg: [{quantizer_name: x, cfg: {$import: d}}]\n"));
    });
    EXPECT_NE(kind2.find("is a rule list"), std::string::npos) << kind2;

    const std::string extra = error_of([&] {
        load_recipe_file(write("e.yaml", "imports: {d: configs/ptq/units/base_disable_all}\nquant_cfg: [{$import: d, enable: false}]\n"));
    });
    EXPECT_NE(extra.find("only key"), std::string::npos) << extra;
}

TEST_F(RecipeFiles, LoadRecipeByNamePathOrFile) {
    EXPECT_EQ(load_recipe("NVFP4_DEFAULT_CFG").name, "NVFP4_DEFAULT_CFG");
    EXPECT_EQ(load_recipe("configs/ptq/presets/model/fp8").rules.size(), 26u);
    const std::string f = write("mine.yml", "quant_cfg: [{quantizer_name: '*', enable: false}]\n");
    EXPECT_EQ(load_recipe(f).rules.size(), 1u);
    EXPECT_NE(error_of([] { load_recipe("NVFP4_DEFAULT"); }).find("neither a preset"), std::string::npos);
    EXPECT_NE(error_of([&] { load_recipe_file(write("list.yaml", "- {quantizer_name: '*', enable: false}\n")); }).find("rule list"),
              std::string::npos);
    EXPECT_NE(error_of([&] { load_recipe_file(write("empty.yaml", "# nothing\n")); }).find("empty"), std::string::npos);
    EXPECT_NE(error_of([&] { load_recipe_file(write("nocfg.yaml", "metadata: {recipe_type: ptq}\nquantize: {algorithm: max}\n")); })
                  .find("no quant_cfg"),
              std::string::npos);
    EXPECT_NE(error_of([&] { load_recipe_file(write("aq.yaml", "metadata: {recipe_type: auto_quantize}\nquant_cfg: []\n")); })
                  .find("recipe_type"),
              std::string::npos);
}

}  // namespace
}  // namespace microscale::recipe
