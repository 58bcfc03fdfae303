// W4A4 NVFP4 + FP8 KV cache end to end on a synthetic checkpoint with pre-tokenized calibration
// data: input_scale / k_scale / v_scale equal amax * RN(1/c) of amaxes observed independently
// here through the forward pass, fused groups share input_scale, and saved statistics reproduce
// the same checkpoint without a forward pass.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <random>

#include "calib/dataset.h"
#include "support/temp_dir.h"
#include "format/nvfp4_block.h"
#include "io/checkpoint.h"
#include "microscale/error.h"
#include "model/forward/model_forward.h"
#include "model/synthetic.h"
#include "pipeline/quantize_job.h"

namespace fs = std::filesystem;
using namespace microscale;

namespace {

using microscale::test::TempDir;

float scalar(const io::Checkpoint& ck, const std::string& name) {
    float v;
    std::memcpy(&v, ck.bytes(ck.at(name)).data(), 4);
    return v;
}

struct Amax : model::LayerObserver {
    std::map<std::string, float> in, k, v;
    void linear_input(const model::LinearWeights& l, const float* x, int64_t rows, int64_t ld) override {
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < l.in; ++c) in[l.name] = std::fmax(in[l.name], std::fabs(x[r * ld + c]));
    }
    void key_values(int layer, const float* kk, const float* vv, int64_t rows, int64_t cols, int64_t ld) override {
        const std::string a = "model.layers." + std::to_string(layer) + ".self_attn";
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) {
                k[a] = std::fmax(k[a], std::fabs(kk[r * ld + c]));
                v[a] = std::fmax(v[a], std::fabs(vv[r * ld + c]));
            }
    }
};

// A small synthetic Llama at dir/in and a pre-tokenized calibration file dir/calib.ids.
void make_model_and_calib(const fs::path& dir, uint32_t seed, int docs, int tokens) {
    model::SyntheticSpec spec;
    spec.hidden = 128;
    spec.vocab = 256;
    model::write_synthetic_llama(dir / "in", spec);
    std::ofstream f(dir / "calib.ids");
    std::mt19937 rng(seed);
    for (int d = 0; d < docs; ++d) {
        for (int t = 0; t < tokens; ++t) f << (rng() % 255 + 1) << ' ';
        f << '\n';
    }
}

}  // namespace

TEST(CalibratedExport, W4A4WithFp8KvCache) {
    TempDir tmp;
    const fs::path in = tmp.path / "in", out = tmp.path / "out", ids = tmp.path / "calib.ids";
    make_model_and_calib(tmp.path, 3, 40, 30);
    pipeline::QuantizeOptions o;
    o.model_dir = in;
    o.output_dir = out;
    o.recipe = "NVFP4_DEFAULT_CFG+FP8_KV_CFG";
    o.threads = 2;
    EXPECT_THROW(pipeline::run_quantize(o), Error) << "no calibration data: a clear error";
    calib::CalibOptions c;
    c.file = ids;
    c.num_samples = 6;
    c.seq_len = 64;
    o.calibration.data = c;
    o.calibration.stats_out = tmp.path / "stats.json";
    pipeline::run_quantize(o);

    // Independent amaxes: the same samples through the forward pass with our own observer.
    const calib::CalibSet set = calib::load_calibration(c, {}, 256, -1);
    model::ModelForward fwd(in, 2);
    Amax obs;
    fwd.forward(set.samples, &obs);

    const io::Checkpoint ck = io::Checkpoint::open(out);
    for (int l = 0; l < 2; ++l) {
        const std::string p = "model.layers." + std::to_string(l);
        const float qkv = std::fmax(obs.in[p + ".self_attn.q_proj"],
                                    std::fmax(obs.in[p + ".self_attn.k_proj"], obs.in[p + ".self_attn.v_proj"]));
        for (const char* m : {".self_attn.q_proj", ".self_attn.k_proj", ".self_attn.v_proj"})
            EXPECT_EQ(scalar(ck, p + m + ".input_scale"), qkv * format::kRecip2688) << p << m;
        EXPECT_EQ(scalar(ck, p + ".self_attn.o_proj.input_scale"), obs.in[p + ".self_attn.o_proj"] * format::kRecip2688);
        EXPECT_EQ(scalar(ck, p + ".mlp.gate_proj.input_scale"), scalar(ck, p + ".mlp.up_proj.input_scale"));
        EXPECT_EQ(scalar(ck, p + ".mlp.down_proj.input_scale"), obs.in[p + ".mlp.down_proj"] * format::kRecip2688);
        EXPECT_EQ(scalar(ck, p + ".self_attn.k_proj.k_scale"), obs.k[p + ".self_attn"] * format::kRecip448);
        EXPECT_EQ(scalar(ck, p + ".self_attn.v_proj.v_scale"), obs.v[p + ".self_attn"] * format::kRecip448);
    }
    const auto hq = nlohmann::json::parse(std::ifstream(out / "hf_quant_config.json"));
    EXPECT_EQ(hq["quantization"]["quant_algo"], "NVFP4");
    EXPECT_EQ(hq["quantization"]["kv_cache_quant_algo"], "FP8");

    // Saved statistics reproduce the checkpoint byte for byte without the forward pass.
    pipeline::QuantizeOptions o2 = o;
    o2.output_dir = tmp.path / "out2";
    o2.calibration.data.reset();
    o2.calibration.stats_out.clear();
    o2.calibration.stats_in = tmp.path / "stats.json";
    pipeline::run_quantize(o2);
    auto bytes = [](const fs::path& p) {
        std::ifstream f(p, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(f), {});
    };
    EXPECT_EQ(bytes(out / "model.safetensors"), bytes(tmp.path / "out2" / "model.safetensors"));
}

TEST(CalibratedExport, SequentialQuantizedFeedsQuantizedOutputs) {
    TempDir tmp;
    const fs::path in = tmp.path / "in", ids = tmp.path / "calib.ids";
    make_model_and_calib(tmp.path, 5, 20, 40);
    auto run = [&](bool sequential, const std::string& name) {
        pipeline::QuantizeOptions o;
        o.model_dir = in;
        o.output_dir = tmp.path / name;
        o.recipe = "NVFP4_DEFAULT_CFG";
        o.threads = 2;
        calib::CalibOptions c;
        c.file = ids;
        c.num_samples = 4;
        c.seq_len = 64;
        o.calibration.data = c;
        o.calibration.sequential_quantized = sequential;
        o.calibration.stats_out = tmp.path / (name + ".json");
        pipeline::run_quantize(o);
        return io::Checkpoint::open(tmp.path / name);
    };
    const io::Checkpoint plain = run(false, "plain"), seq = run(true, "seq");
    // Layer 0's q/k/v see the embeddings either way; everything after sees quantized outputs.
    EXPECT_EQ(scalar(plain, "model.layers.0.self_attn.q_proj.input_scale"),
              scalar(seq, "model.layers.0.self_attn.q_proj.input_scale"));
    EXPECT_NE(scalar(plain, "model.layers.0.self_attn.o_proj.input_scale"),
              scalar(seq, "model.layers.0.self_attn.o_proj.input_scale"));
    EXPECT_NE(scalar(plain, "model.layers.1.mlp.down_proj.input_scale"),
              scalar(seq, "model.layers.1.mlp.down_proj.input_scale"));
    const auto stats = nlohmann::json::parse(std::ifstream(tmp.path / "seq.json"));
    EXPECT_TRUE(stats["provenance"]["sequential_quantized"].get<bool>());
}

TEST(CalibratedExport, Fp8W8A8InputScales) {
    TempDir tmp;
    const fs::path in = tmp.path / "in", out = tmp.path / "out", ids = tmp.path / "calib.ids";
    make_model_and_calib(tmp.path, 8, 20, 40);
    pipeline::QuantizeOptions o;
    o.model_dir = in;
    o.output_dir = out;
    o.recipe = "FP8_DEFAULT_CFG";
    o.threads = 2;
    calib::CalibOptions c;
    c.file = ids;
    c.num_samples = 4;
    c.seq_len = 64;
    o.calibration.data = c;
    pipeline::run_quantize(o);
    const calib::CalibSet set = calib::load_calibration(c, {}, 256, -1);
    model::ModelForward fwd(in, 2);
    Amax obs;
    fwd.forward(set.samples, &obs);
    const io::Checkpoint ck = io::Checkpoint::open(out);
    for (const char* m : {"self_attn.q_proj", "self_attn.o_proj", "mlp.up_proj", "mlp.down_proj"}) {
        const std::string name = std::string("model.layers.1.") + m;
        EXPECT_EQ(scalar(ck, name + ".input_scale"), obs.in[name] * format::kRecip448) << name;  // RN(amax * RN(1/448))
        EXPECT_EQ(ck.at(name + ".weight").info->dtype, DType::F8_E4M3);
    }
    const auto hq = nlohmann::json::parse(std::ifstream(out / "hf_quant_config.json"));
    EXPECT_EQ(hq["quantization"]["quant_algo"], "FP8");
    EXPECT_TRUE(hq["quantization"]["kv_cache_quant_algo"].is_null());
}
