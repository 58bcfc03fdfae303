// End to end on synthetic checkpoints: plan -> streaming quantize -> ModelOpt export -> re-read.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "support/temp_dir.h"
#include "format/quantize.h"
#include "io/checkpoint.h"
#include "microscale/error.h"
#include "model/layout.h"
#include "model/synthetic.h"
#include "pipeline/quantize_job.h"

namespace fs = std::filesystem;
using namespace microscale;

namespace {

using microscale::test::TempDir;

fs::path make_model(const fs::path& dir, model::SyntheticSpec spec = {}) {
    spec.hidden = spec.hidden ? spec.hidden : 128;
    model::write_synthetic_llama(dir, spec);
    std::ofstream(dir / "tokenizer.json") << "{\"version\": \"1.0\"}";
    return dir;
}

std::string file_bytes(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(std::ifstream(p)); }

uint32_t f32_bits(std::span<const uint8_t> b) {
    uint32_t u;
    std::memcpy(&u, b.data(), 4);
    return u;
}

pipeline::QuantizeOptions options(const fs::path& in, const fs::path& out, const std::string& recipe) {
    pipeline::QuantizeOptions o;
    o.model_dir = in;
    o.output_dir = out;
    o.recipe = recipe;
    o.threads = 2;
    return o;
}

// Every quantized weight must equal a direct quantize_weight of the original with the fused
// group's shared amax: the pipeline adds nothing to the numerics.
void expect_weights_match_direct(const fs::path& in, const fs::path& out, const format::Nvfp4Config& cfg) {
    const io::Checkpoint src = io::Checkpoint::open(in), dst = io::Checkpoint::open(out);
    const auto layout = model::describe_model(read_json(in / "config.json"), src, "config.json");
    for (const auto& m : layout.linears) {
        if (m.role == model::Role::EMBED || m.role == model::Role::LM_HEAD || m.weight.empty()) continue;
        float shared = 0.0f;
        const std::vector<int> members =
            m.group >= 0 ? layout.groups.at(static_cast<size_t>(m.group)).members
                         : std::vector<int>{static_cast<int>(&m - layout.linears.data())};
        for (int member : members) {
            const auto& mm = layout.linears[static_cast<size_t>(member)];
            const auto& t = src.at(mm.weight);
            shared = std::max(shared, format::tensor_amax({src.bytes(t).data(), t.info->dtype, mm.out_features, mm.in_features, mm.weight},
                                                          format::Backend::REF, nullptr));
        }
        const auto& t = src.at(m.weight);
        format::WeightQuantSpec spec{Format::W4A16_NVFP4, cfg};
        spec.nvfp4.global_amax = shared;
        const auto q = format::quantize_weight({src.bytes(t).data(), t.info->dtype, m.out_features, m.in_features, m.weight},
                                               spec, format::Backend::REF, nullptr);
        const auto packed = dst.bytes(dst.at(m.name + ".weight"));
        const auto scales = dst.bytes(dst.at(m.name + ".weight_scale"));
        ASSERT_EQ(packed.size(), q.data.size()) << m.name;
        EXPECT_EQ(std::memcmp(packed.data(), q.data.data(), q.data.size()), 0) << m.name;
        EXPECT_EQ(std::memcmp(scales.data(), q.block_scales.data(), q.block_scales.size()), 0) << m.name;
        EXPECT_EQ(f32_bits(dst.bytes(dst.at(m.name + ".weight_scale_2"))), codec::float_bits(q.global_scale)) << m.name;
        EXPECT_EQ(dst.at(m.name + ".weight_scale").info->dtype, DType::F8_E4M3);
        EXPECT_EQ(dst.find(m.name + ".input_scale"), nullptr) << "weight-only export has no input_scale";
    }
}

}  // namespace

TEST(QuantizeJob, W4A16EndToEnd) {
    TempDir tmp;
    const fs::path in = make_model(tmp.path / "in"), out = tmp.path / "out";
    const std::string before = file_bytes(in / "model.safetensors");
    const auto r = pipeline::run_quantize(options(in, out, "W4A16_NVFP4_CFG"));
    EXPECT_EQ(file_bytes(in / "model.safetensors"), before) << "the input must never be modified";
    ASSERT_TRUE(fs::exists(out / "model.safetensors"));
    EXPECT_TRUE(fs::exists(out / "tokenizer.json"));
    EXPECT_TRUE(fs::exists(out / "generation_config.json"));
    expect_weights_match_direct(in, out, format::Nvfp4Config{});

    const auto hq = read_json(out / "hf_quant_config.json");
    EXPECT_EQ(hq["quantization"]["quant_algo"], "W4A16_NVFP4");
    EXPECT_EQ(hq["quantization"]["group_size"], 16);
    EXPECT_TRUE(hq["quantization"].contains("kv_cache_quant_algo"));
    EXPECT_EQ(hq["quantization"]["exclude_modules"], (std::vector<std::string>{"lm_head", "model.embed_tokens"}));
    const auto cfg = read_json(out / "config.json");
    EXPECT_EQ(cfg["quantization_config"]["quant_method"], "modelopt");
    EXPECT_EQ(cfg["quantization_config"]["quant_algo"], "W4A16_NVFP4");
    EXPECT_EQ(cfg["hidden_size"], read_json(in / "config.json")["hidden_size"]);

    // q/k/v and gate/up share weight_scale_2 (vLLM fuses them).
    const io::Checkpoint dst = io::Checkpoint::open(out);
    for (int l = 0; l < 2; ++l) {
        const std::string p = "model.layers." + std::to_string(l);
        const uint32_t q = f32_bits(dst.bytes(dst.at(p + ".self_attn.q_proj.weight_scale_2")));
        EXPECT_EQ(q, f32_bits(dst.bytes(dst.at(p + ".self_attn.k_proj.weight_scale_2"))));
        EXPECT_EQ(q, f32_bits(dst.bytes(dst.at(p + ".self_attn.v_proj.weight_scale_2"))));
        EXPECT_EQ(f32_bits(dst.bytes(dst.at(p + ".mlp.gate_proj.weight_scale_2"))),
                  f32_bits(dst.bytes(dst.at(p + ".mlp.up_proj.weight_scale_2"))));
    }
    EXPECT_NEAR(r.bpe_without_lm_head, 4.5, 0.01);
    EXPECT_GT(r.output_bytes, 0u);
    EXPECT_LT(r.output_bytes, r.input_bytes);
}

TEST(QuantizeJob, FourOverSixWeightsOnly) {
    TempDir tmp;
    const fs::path in = make_model(tmp.path / "in"), out = tmp.path / "out";
    auto o = options(in, out, "NVFP4_FOUR_OVER_SIX_CFG");
    // W4A4 needs activation statistics: a clear error naming input quantizers.
    try {
        pipeline::run_quantize(o);
        FAIL() << "expected a calibration error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("input_quantizer"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("--weights-only"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(out));
    o.plan.weights_only = true;
    pipeline::run_quantize(o);
    expect_weights_match_direct(in, out, format::Nvfp4Config::four_over_six_preset());
    EXPECT_EQ(read_json(out / "hf_quant_config.json")["quantization"]["quant_algo"], "W4A16_NVFP4");
}

TEST(QuantizeJob, ShardedOutputAndDryRun) {
    TempDir tmp;
    const fs::path in = make_model(tmp.path / "in"), out = tmp.path / "out";
    auto o = options(in, out, "W4A16_NVFP4_CFG");
    o.dry_run = true;
    const auto plan = pipeline::run_quantize(o);
    EXPECT_NE(plan.plan_text.find("model.layers.1.mlp.down_proj"), std::string::npos);
    EXPECT_NE(plan.plan_text.find("4.500"), std::string::npos);
    EXPECT_FALSE(fs::exists(out)) << "--dry-run writes nothing";
    o.dry_run = false;
    o.max_shard_bytes = 100'000;
    pipeline::run_quantize(o);
    EXPECT_TRUE(fs::exists(out / "model.safetensors.index.json"));
    EXPECT_GT(io::Checkpoint::open(out).shard_count(), 2u);
    expect_weights_match_direct(in, out, format::Nvfp4Config{});
}

TEST(QuantizeJob, OutputExistsNeedsForce) {
    TempDir tmp;
    const fs::path in = make_model(tmp.path / "in"), out = tmp.path / "out";
    fs::create_directories(out);
    std::ofstream(out / "keep.txt") << "previous";
    EXPECT_THROW(pipeline::run_quantize(options(in, out, "W4A16_NVFP4_CFG")), Error);
    EXPECT_TRUE(fs::exists(out / "keep.txt")) << "an existing output is left alone";
    auto o = options(in, out, "W4A16_NVFP4_CFG");
    o.force = true;
    pipeline::run_quantize(o);
    EXPECT_FALSE(fs::exists(out / "keep.txt"));
    EXPECT_TRUE(fs::exists(out / "hf_quant_config.json"));
    EXPECT_THROW(pipeline::run_quantize(options(in, in, "W4A16_NVFP4_CFG")), Error) << "input is never the output";
}

TEST(QuantizeJob, FailureMidRunLeavesNothing) {
    TempDir tmp;
    const fs::path in = make_model(tmp.path / "in"), out = tmp.path / "out";
    // Poison a late weight with NaN: the run must fail naming it and leave no output behind.
    const io::Checkpoint ck = io::Checkpoint::open(in);
    const auto& t = ck.at("model.layers.1.mlp.up_proj.weight");
    const uint64_t data_start = ck.shard(0).file_size() - [&] {
        uint64_t total = 0;
        for (const auto& x : ck.tensors()) total += x.info->nbytes();
        return total;
    }();
    const uint64_t pos = data_start + t.info->begin + 6;  // the data section ends the file
    {
        std::fstream f(in / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(pos));
        const uint16_t nan_bf16 = 0x7FC0;
        f.write(reinterpret_cast<const char*>(&nan_bf16), 2);
    }
    try {
        pipeline::run_quantize(options(in, out, "W4A16_NVFP4_CFG"));
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("model.layers.1.mlp.up_proj.weight"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(out));
    for (const auto& e : fs::directory_iterator(tmp.path))
        EXPECT_EQ(e.path().filename().string().find("microscale-tmp"), std::string::npos) << e.path();
}

TEST(QuantizeJob, IncompatibleLayerErrorsOrIsSkipped) {
    TempDir tmp;
    model::SyntheticSpec spec;
    spec.hidden = 64;
    spec.heads = 8;
    spec.kv_heads = 4;
    spec.ffn = 172;  // down_proj in_features 172: not a multiple of 16, like stories260K
    const fs::path in = make_model(tmp.path / "in", spec), out = tmp.path / "out";
    try {
        pipeline::run_quantize(options(in, out, "W4A16_NVFP4_CFG"));
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("down_proj"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("--skip-incompatible"), std::string::npos) << e.what();
    }
    auto o = options(in, out, "W4A16_NVFP4_CFG");
    o.plan.skip_incompatible = true;
    const auto r = pipeline::run_quantize(o);
    const io::Checkpoint dst = io::Checkpoint::open(out);
    EXPECT_EQ(dst.at("model.layers.0.mlp.down_proj.weight").info->dtype, DType::BF16);
    EXPECT_EQ(dst.at("model.layers.0.mlp.up_proj.weight").info->dtype, DType::U8);
    const auto ex = read_json(out / "hf_quant_config.json")["quantization"]["exclude_modules"];
    EXPECT_NE(std::find(ex.begin(), ex.end(), "model.layers.0.mlp.down_proj"), ex.end()) << ex.dump();
    bool noted = false;
    for (const auto& n : r.notes) noted |= n.find("down_proj") != std::string::npos;
    EXPECT_TRUE(noted);
}

TEST(QuantizeJob, KilledProcessLeavesNoOutput) {
    TempDir tmp;
    model::SyntheticSpec spec;
    spec.hidden = 1024;
    spec.ffn = 2816;
    spec.layers = 8;
    spec.vocab = 8192;
    const fs::path in = make_model(tmp.path / "in", spec), out = tmp.path / "out";
    const pid_t pid = fork();
    if (pid == 0) {
        const int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execl(MICROSCALE_CLI_PATH, "microscale", "quantize", "--model", in.c_str(), "--recipe",
              "NVFP4_FOUR_OVER_SIX_CFG", "--weights-only", "--threads", "1", "--output", out.c_str(), nullptr);
        _exit(127);
    }
    // Kill it once its temporary directory exists, i.e. mid-write.
    const auto t0 = std::chrono::steady_clock::now();
    bool started = false;
    while (!started && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20)) {
        for (const auto& e : fs::directory_iterator(tmp.path))
            started |= e.path().filename().string().find("microscale-tmp") != std::string::npos;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(started) << "the run never started";
    ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
    EXPECT_FALSE(fs::exists(out)) << "a killed run must leave no output directory";
    // The next run cleans the dead run's temporary and succeeds.
    auto o = options(in, out, "W4A16_NVFP4_CFG");
    pipeline::run_quantize(o);
    EXPECT_TRUE(fs::exists(out / "hf_quant_config.json"));
    for (const auto& e : fs::directory_iterator(tmp.path))
        EXPECT_EQ(e.path().filename().string().find("microscale-tmp"), std::string::npos) << e.path();
}

// How shards reach the disk (O_DIRECT blocks or page-cache writes, one shard or several) does not
// change a byte of the output.
TEST(QuantizeJob, WriteModesGiveTheSameFiles) {
    TempDir tmp;
    model::SyntheticSpec spec;
    spec.hidden = 256;
    const fs::path in = make_model(tmp.path / "in", spec);
    for (uint64_t shard : {uint64_t{5'000'000'000ull}, uint64_t{300'000}}) {
        std::map<std::string, std::string> files[2];
        for (int k = 0; k < 2; ++k) {
            const fs::path out = tmp.path / ("out" + std::to_string(k));
            auto o = options(in, out, "W4A16_NVFP4_CFG");
            o.write_mode = k ? io::WriteMode::DIRECT : io::WriteMode::BUFFERED;
            o.max_shard_bytes = shard;
            o.force = true;
            pipeline::run_quantize(o);
            for (const auto& e : fs::directory_iterator(out)) files[k][e.path().filename().string()] = file_bytes(e.path());
        }
        ASSERT_EQ(files[0].size(), files[1].size());
        EXPECT_EQ(files[0].count("model.safetensors.index.json"), shard < 1'000'000 ? 1u : 0u) << "several shards";
        for (const auto& [name, bytes] : files[0]) {
            ASSERT_TRUE(files[1].count(name)) << name;
            EXPECT_TRUE(files[1][name] == bytes) << name << " differs between buffered and direct writes";
        }
    }
}
