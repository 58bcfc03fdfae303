// The compressed-tensors dialect: the dialect table, the config builder, and end to end on
// synthetic checkpoints exported in both dialects (same bytes, reciprocal global scales).
//
// Reference config: the quantization_config of RedHatAI/Qwen3-Coder-Next-NVFP4 (llm-compressor,
// compressed-tensors 0.13.1.dev47+gcfc24ef, NVFP4 W4A4), as transcribed in a public repository's
// test (found with the code search for `"observer": "static_minmax"`), and compressed-tensors'
// NVFP4 / NVFP4A16 / FP8 presets (vllm-project/compressed-tensors,
// src/compressed_tensors/quantization/quant_scheme.py). Its values are restated below field by
// field; the weights observer there is "mse" (an MSE-calibrated release), ours names our search.
#include "export/compressed_tensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>

#include "export/inspect.h"
#include "export/verify.h"
#include "io/checkpoint.h"
#include "microscale/error.h"
#include "model/synthetic.h"
#include "pipeline/quantize_job.h"

namespace fs = std::filesystem;
using namespace microscale;
using namespace microscale::exporter;
using json = nlohmann::json;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        path = fs::temp_directory_path() / ("ms-ct-" + std::to_string(getpid()) + "-" + std::to_string(std::random_device{}()));
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
};

fs::path make_model(const fs::path& dir) {
    model::SyntheticSpec spec;
    spec.hidden = 128;
    spec.ffn = 352;
    model::write_synthetic_llama(dir, spec);
    return dir;
}

json read_json(const fs::path& p) { return json::parse(std::ifstream(p)); }

std::vector<uint8_t> bytes_of(const io::Checkpoint& ck, const std::string& name) {
    const auto b = ck.bytes(ck.at(name));
    return {b.begin(), b.end()};
}

uint32_t f32_bits(const io::Checkpoint& ck, const std::string& name) {
    const auto b = ck.bytes(ck.at(name));
    EXPECT_EQ(b.size(), 4u) << name;
    uint32_t u = 0;
    std::memcpy(&u, b.data(), 4);
    return u;
}

fs::path write_recipe(const fs::path& dir, const std::string& body) {
    const fs::path p = dir / "recipe.yaml";
    std::ofstream(p) << body;
    return p;
}

pipeline::QuantizeOptions options(const fs::path& in, const fs::path& out, const std::string& recipe,
                                  const std::string& dialect) {
    pipeline::QuantizeOptions o;
    o.model_dir = in;
    o.output_dir = out;
    o.recipe = recipe;
    o.threads = 2;
    o.export_format = dialect;
    return o;
}

// The reference release's weights args (NVFP4, both W4A16 and W4A4 groups use these).
json release_weights(const std::string& observer) {
    return json{{"actorder", nullptr},      {"block_structure", nullptr}, {"dynamic", false},
                {"group_size", 16},         {"num_bits", 4},              {"observer", observer},
                {"observer_kwargs", json::object()}, {"scale_dtype", "torch.float8_e4m3fn"},
                {"strategy", "tensor_group"}, {"symmetric", true},         {"type", "float"},
                {"zp_dtype", nullptr}};
}

// The reference release's input_activations args (NVFP4 W4A4).
json release_inputs() {
    json a = release_weights("static_minmax");
    a["dynamic"] = "local";
    return a;
}

// Field by field, so a failure names the field.
void expect_args(const json& got, const json& want, const std::string& where) {
    ASSERT_TRUE(got.is_object()) << where << ": " << got.dump();
    for (const auto& [k, v] : want.items()) {
        ASSERT_TRUE(got.contains(k)) << where << ": no field " << k;
        EXPECT_EQ(got[k], v) << where << "." << k;
    }
    EXPECT_EQ(got.size(), want.size()) << where << ": " << got.dump();
}

// The top-level fields every llm-compressor config carries, as the release has them
// (version metadata aside: microscale is not compressed-tensors).
void expect_ct_top_level(const json& qc, const std::string& format) {
    EXPECT_EQ(qc["quant_method"], "compressed-tensors");
    EXPECT_EQ(qc["format"], format);
    EXPECT_EQ(qc["quantization_status"], "compressed");
    EXPECT_TRUE(qc["global_compression_ratio"].is_null());
    EXPECT_EQ(qc["sparsity_config"], json::object());
    EXPECT_EQ(qc["transform_config"], json::object());
    EXPECT_TRUE(qc.contains("kv_cache_scheme"));
    EXPECT_TRUE(qc["ignore"].is_array());
    EXPECT_TRUE(qc["config_groups"].is_object());
}

const std::vector<std::string> kProj = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                        "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

}  // namespace

TEST(CompressedTensors, DialectTable) {
    using D = ExportDialect;
    EXPECT_EQ(export_dialect_from_name("compressed-tensors"), D::COMPRESSED_TENSORS);
    EXPECT_EQ(export_dialect_from_name("modelopt"), D::MODELOPT);
    EXPECT_FALSE(export_dialect_from_name("ct").has_value());

    EXPECT_EQ(tensor_leaf(D::COMPRESSED_TENSORS, Format::W4A16_NVFP4, QuantPart::WEIGHT), "weight_packed");
    EXPECT_EQ(tensor_leaf(D::COMPRESSED_TENSORS, Format::NVFP4, QuantPart::GLOBAL_SCALE), "weight_global_scale");
    EXPECT_EQ(tensor_leaf(D::COMPRESSED_TENSORS, Format::NVFP4, QuantPart::INPUT_SCALE), "input_global_scale");
    EXPECT_EQ(tensor_leaf(D::COMPRESSED_TENSORS, Format::FP8, QuantPart::WEIGHT), "weight");
    EXPECT_EQ(tensor_leaf(D::COMPRESSED_TENSORS, Format::FP8, QuantPart::INPUT_SCALE), "input_scale");
    EXPECT_EQ(tensor_leaf(D::MODELOPT, Format::NVFP4, QuantPart::WEIGHT), "weight");
    EXPECT_EQ(tensor_leaf(D::MODELOPT, Format::NVFP4, QuantPart::GLOBAL_SCALE), "weight_scale_2");

    const auto ct = quantized_linear_decls(D::COMPRESSED_TENSORS, "m", Format::NVFP4, 64, 128, true);
    ASSERT_EQ(ct.size(), 4u);
    EXPECT_EQ(ct[0].name, "m.weight_packed");
    EXPECT_EQ(ct[0].dtype, DType::U8);
    EXPECT_EQ(ct[0].shape, (std::vector<int64_t>{64, 64}));
    EXPECT_EQ(ct[1].name, "m.weight_scale");
    EXPECT_EQ(ct[1].dtype, DType::F8_E4M3);
    EXPECT_EQ(ct[1].shape, (std::vector<int64_t>{64, 8}));
    EXPECT_EQ(ct[2].name, "m.weight_global_scale");
    EXPECT_EQ(ct[2].dtype, DType::F32);
    EXPECT_EQ(ct[2].shape, (std::vector<int64_t>{1}));
    EXPECT_EQ(ct[3].name, "m.input_global_scale");
    EXPECT_EQ(ct[3].shape, (std::vector<int64_t>{1}));
    const auto mo = quantized_linear_decls(D::MODELOPT, "m", Format::NVFP4, 64, 128, false);
    ASSERT_EQ(mo.size(), 3u);
    EXPECT_EQ(mo[2].name, "m.weight_scale_2");
    EXPECT_TRUE(mo[2].shape.empty());
    const auto fp8 = quantized_linear_decls(D::COMPRESSED_TENSORS, "m", Format::FP8, 64, 128, true);
    ASSERT_EQ(fp8.size(), 3u);
    EXPECT_EQ(fp8[0].name, "m.weight");
    EXPECT_EQ(fp8[0].dtype, DType::F8_E4M3);
    EXPECT_EQ(fp8[1].shape, (std::vector<int64_t>{1}));
    EXPECT_EQ(fp8[2].name, "m.input_scale");
    EXPECT_THROW(quantized_linear_decls(D::COMPRESSED_TENSORS, "m", Format::MXFP4, 64, 128, false), Error);

    // The reciprocal: one correctly rounded fp32 division, only for NVFP4 global/input scales.
    for (float v : {1.0f, 0.0123f, 3.0f / 2688.0f, 7.5e-5f, 1.0f / 3.0f}) {
        volatile float one = 1.0f;
        const float want = one / v;
        EXPECT_EQ(std::bit_cast<uint32_t>(ct_reciprocal_scale(v)), std::bit_cast<uint32_t>(want)) << v;
        EXPECT_EQ(stored_scale(D::COMPRESSED_TENSORS, Format::W4A16_NVFP4, QuantPart::GLOBAL_SCALE, v), want);
        EXPECT_EQ(stored_scale(D::COMPRESSED_TENSORS, Format::NVFP4, QuantPart::INPUT_SCALE, v), want);
        EXPECT_EQ(stored_scale(D::COMPRESSED_TENSORS, Format::FP8, QuantPart::WEIGHT_SCALE, v), v);
        EXPECT_EQ(stored_scale(D::COMPRESSED_TENSORS, Format::FP8, QuantPart::INPUT_SCALE, v), v);
        EXPECT_EQ(stored_scale(D::MODELOPT, Format::NVFP4, QuantPart::GLOBAL_SCALE, v), v);
    }
}

TEST(CompressedTensors, ConfigBuilderGroupsIgnoreAndKv) {
    // Single format: one group targeting Linear; unquantized Linears (lm_head) in ignore by exact
    // name, embeddings not (they are no Linear).
    std::vector<CtLayer> layers = {
        {"model.embed_tokens", std::nullopt, false, false, ""},
        {"model.layers.0.self_attn.q_proj", Format::W4A16_NVFP4, true, false, "memoryless_minmax"},
        {"model.layers.0.mlp.down_proj", std::nullopt, true, false, ""},
        {"lm_head", std::nullopt, true, false, ""},
    };
    const auto q = json::parse(build_ct_quantization_config(layers, std::nullopt).dump());
    expect_ct_top_level(q, "nvfp4-pack-quantized");
    EXPECT_EQ(q["ignore"], (std::vector<std::string>{"model.layers.0.mlp.down_proj", "lm_head"}));
    EXPECT_TRUE(q["kv_cache_scheme"].is_null());
    ASSERT_EQ(q["config_groups"].size(), 1u);
    const json& g = q["config_groups"]["group_0"];
    EXPECT_EQ(g["targets"], (std::vector<std::string>{"Linear"}));
    EXPECT_EQ(g["format"], "nvfp4-pack-quantized");
    EXPECT_TRUE(g["input_activations"].is_null());
    EXPECT_TRUE(g["output_activations"].is_null());
    expect_args(g["weights"], release_weights("memoryless_minmax"), "group_0.weights");

    // Mixed: exact-name targets per group, top-level mixed-precision, FP8 KV.
    layers.push_back({"model.layers.0.self_attn.o_proj", Format::FP8, true, true, "memoryless_minmax"});
    const auto m = json::parse(build_ct_quantization_config(layers, std::string("FP8")).dump());
    expect_ct_top_level(m, "mixed-precision");
    ASSERT_EQ(m["config_groups"].size(), 2u);
    EXPECT_EQ(m["config_groups"]["group_0"]["targets"], (std::vector<std::string>{"model.layers.0.self_attn.q_proj"}));
    EXPECT_EQ(m["config_groups"]["group_1"]["targets"], (std::vector<std::string>{"model.layers.0.self_attn.o_proj"}));
    EXPECT_EQ(m["config_groups"]["group_1"]["format"], "float-quantized");
    // FP8 static per tensor, as compressed-tensors' FP8 preset.
    const json fp8_w = {{"actorder", nullptr}, {"block_structure", nullptr}, {"dynamic", false},
                        {"group_size", nullptr}, {"num_bits", 8}, {"observer", "memoryless_minmax"},
                        {"observer_kwargs", json::object()}, {"scale_dtype", nullptr}, {"strategy", "tensor"},
                        {"symmetric", true}, {"type", "float"}, {"zp_dtype", nullptr}};
    expect_args(m["config_groups"]["group_1"]["weights"], fp8_w, "fp8.weights");
    json fp8_in = fp8_w;
    fp8_in["observer"] = "static_minmax";
    expect_args(m["config_groups"]["group_1"]["input_activations"], fp8_in, "fp8.input_activations");
    expect_args(m["kv_cache_scheme"], fp8_in, "kv_cache_scheme");

    EXPECT_THROW(build_ct_quantization_config(layers, std::string("NVFP4")), Error);
    EXPECT_THROW(build_ct_quantization_config({{"a", Format::MXFP4, true, false, ""}}, std::nullopt), Error);
    EXPECT_THROW(build_ct_quantization_config({{"a", Format::NVFP4, true, false, ""}}, std::nullopt), Error)
        << "W4A4 without an input scale";
    EXPECT_THROW(build_ct_quantization_config({{"a", std::nullopt, true, false, ""}}, std::nullopt), Error);
}

// W4A16 NVFP4 in both dialects: identical codes and block scales, reciprocal global scales.
TEST(CompressedTensors, W4A16BothDialectsSameBytes) {
    TempDir tmp;
    const fs::path in = make_model(tmp.path / "in"), mo = tmp.path / "mo", ct = tmp.path / "ct";
    pipeline::run_quantize(options(in, mo, "W4A16_NVFP4_CFG", "modelopt"));
    const auto rep = pipeline::run_quantize(options(in, ct, "W4A16_NVFP4_CFG", "compressed-tensors"));
    bool verified = false;
    for (const auto& n : rep.notes) verified |= n.find("verified") != std::string::npos && n.find("compressed-tensors") != std::string::npos;
    EXPECT_TRUE(verified) << "the pipeline runs the verifier on the CT output";
    EXPECT_FALSE(fs::exists(ct / "hf_quant_config.json"));
    EXPECT_TRUE(fs::exists(mo / "hf_quant_config.json"));

    const io::Checkpoint a = io::Checkpoint::open(mo), b = io::Checkpoint::open(ct);
    EXPECT_EQ(a.tensors().size(), b.tensors().size());
    size_t checked = 0;
    for (int l = 0; l < 2; ++l) {
        for (const std::string& p : kProj) {
            const std::string m = "model.layers." + std::to_string(l) + "." + p;
            EXPECT_EQ(bytes_of(a, m + ".weight"), bytes_of(b, m + ".weight_packed")) << m;
            EXPECT_EQ(bytes_of(a, m + ".weight_scale"), bytes_of(b, m + ".weight_scale")) << m;
            const io::TensorRef& g = b.at(m + ".weight_global_scale");
            EXPECT_EQ(g.info->dtype, DType::F32);
            EXPECT_EQ(g.info->shape, (std::vector<int64_t>{1})) << m;
            const float wsf2 = std::bit_cast<float>(f32_bits(a, m + ".weight_scale_2"));
            volatile float one = 1.0f;
            EXPECT_EQ(f32_bits(b, m + ".weight_global_scale"), std::bit_cast<uint32_t>(one / wsf2)) << m;
            EXPECT_EQ(b.find(m + ".weight"), nullptr);
            EXPECT_EQ(b.find(m + ".weight_scale_2"), nullptr);
            EXPECT_EQ(b.find(m + ".input_global_scale"), nullptr) << "W4A16 has no input scale";
            ++checked;
        }
    }
    EXPECT_EQ(checked, 14u);
    // Everything else is copied unchanged.
    for (const char* t : {"model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
                          "model.layers.1.input_layernorm.weight"})
        EXPECT_EQ(bytes_of(a, t), bytes_of(b, t)) << t;

    // config.json against the llm-compressor release, field by field.
    const json cfg = read_json(ct / "config.json");
    EXPECT_EQ(cfg["hidden_size"], read_json(in / "config.json")["hidden_size"]);
    const json& qc = cfg["quantization_config"];
    expect_ct_top_level(qc, "nvfp4-pack-quantized");
    EXPECT_EQ(qc["ignore"], (std::vector<std::string>{"lm_head"}));
    EXPECT_TRUE(qc["kv_cache_scheme"].is_null());
    ASSERT_EQ(qc["config_groups"].size(), 1u);
    const json& g0 = qc["config_groups"]["group_0"];
    EXPECT_EQ(g0["targets"], (std::vector<std::string>{"Linear"}));
    EXPECT_EQ(g0["format"], "nvfp4-pack-quantized");
    EXPECT_TRUE(g0["input_activations"].is_null());
    EXPECT_TRUE(g0["output_activations"].is_null());
    expect_args(g0["weights"], release_weights("memoryless_minmax"), "group_0.weights");

    // The verifier and inspect read it as compressed-tensors, with the same bits as ModelOpt's.
    const VerifyReport vr = verify_export(ct);
    EXPECT_EQ(vr.dialect, "compressed-tensors");
    EXPECT_EQ(vr.quantized_layers, 14u);
    EXPECT_EQ(vr.fused_groups_checked, 4u);
    const InspectReport ir = inspect_checkpoint(ct), im = inspect_checkpoint(mo);
    EXPECT_EQ(ir.dialect, "compressed-tensors");
    EXPECT_EQ(ir.quant_algo, "nvfp4-pack-quantized");
    size_t w4a16 = 0;
    for (const auto& m : ir.modules) w4a16 += m.storage == "w4a16_nvfp4";
    EXPECT_EQ(w4a16, 14u);
    EXPECT_EQ(ir.linear.weight_bytes, im.linear.weight_bytes);
    EXPECT_DOUBLE_EQ(ir.linear.bits(), im.linear.bits());
    EXPECT_NE(format_inspect_text(ir).find("compressed-tensors"), std::string::npos);
}

namespace {

// NVFP4 weights; inputs NVFP4 (W4A4) with a pinned amax, or nothing (weights only).
std::string nvfp4_recipe(bool w4a4) {
    std::string r =
        "quantize:\n"
        "  algorithm: max\n"
        "  quant_cfg:\n"
        "    - quantizer_name: '*'\n"
        "      enable: false\n"
        "    - quantizer_name: '*weight_quantizer'\n"
        "      cfg: {num_bits: e2m1, block_sizes: {-1: 16, type: dynamic, scale_bits: e4m3}}\n";
    if (w4a4)
        r += "    - quantizer_name: '*input_quantizer'\n"
             "      cfg: {num_bits: e2m1, block_sizes: {-1: 16, type: dynamic, scale_bits: e4m3}, constant_amax: 1000.0}\n";
    r += "    - quantizer_name: '*lm_head*'\n"
         "      enable: false\n"
         "    - quantizer_name: '*embed_tokens*'\n"
         "      enable: false\n";
    return r;
}

}  // namespace

// W4A4 with a constant input amax: input_global_scale = 1/input_scale, input args as the release.
TEST(CompressedTensors, W4A4InputGlobalScale) {
    TempDir tmp;
    const fs::path in = make_model(tmp.path / "in"), mo = tmp.path / "mo", ct = tmp.path / "ct";
    const std::string recipe = write_recipe(tmp.path, nvfp4_recipe(true)).string();
    pipeline::run_quantize(options(in, mo, recipe, "modelopt"));
    pipeline::run_quantize(options(in, ct, recipe, "compressed-tensors"));
    const io::Checkpoint a = io::Checkpoint::open(mo), b = io::Checkpoint::open(ct);
    for (const std::string& p : kProj) {
        const std::string m = "model.layers.0." + p;
        const float is = std::bit_cast<float>(f32_bits(a, m + ".input_scale"));
        volatile float one = 1.0f;
        EXPECT_EQ(f32_bits(b, m + ".input_global_scale"), std::bit_cast<uint32_t>(one / is)) << m;
        EXPECT_EQ(b.at(m + ".input_global_scale").info->shape, (std::vector<int64_t>{1}));
        EXPECT_EQ(bytes_of(a, m + ".weight"), bytes_of(b, m + ".weight_packed")) << m;
    }
    const json qc = read_json(ct / "config.json")["quantization_config"];
    expect_ct_top_level(qc, "nvfp4-pack-quantized");
    const json& g0 = qc["config_groups"]["group_0"];
    expect_args(g0["input_activations"], release_inputs(), "group_0.input_activations");
    expect_args(g0["weights"], release_weights("memoryless_minmax"), "group_0.weights");
    EXPECT_EQ(verify_export(ct).format_counts.at("nvfp4"), 14u);
    EXPECT_EQ(inspect_checkpoint(ct).modules.front().storage.empty(), false);
}

// FP8 attention (static inputs pinned to scale 1) + W4A16 NVFP4 MLP + FP8 KV cast.
TEST(CompressedTensors, MixedPrecision) {
    TempDir tmp;
    const fs::path in = make_model(tmp.path / "in"), mo = tmp.path / "mo", ct = tmp.path / "ct";
    const std::string recipe = write_recipe(tmp.path,
                                            "quantize:\n"
                                            "  algorithm: max\n"
                                            "  quant_cfg:\n"
                                            "    - quantizer_name: '*'\n"
                                            "      enable: false\n"
                                            "    - quantizer_name: '*mlp*weight_quantizer'\n"
                                            "      cfg: {num_bits: e2m1, block_sizes: {-1: 16, type: dynamic, scale_bits: e4m3}}\n"
                                            "    - quantizer_name: '*self_attn*weight_quantizer'\n"
                                            "      cfg: {num_bits: e4m3, axis: null}\n"
                                            "    - quantizer_name: '*self_attn*input_quantizer'\n"
                                            "      cfg: {num_bits: e4m3, axis: null, constant_amax: 448.0}\n"
                                            "    - quantizer_name: '*[kv]_bmm_quantizer'\n"
                                            "      cfg: {num_bits: e4m3, use_constant_amax: true}\n")
                                   .string();
    pipeline::run_quantize(options(in, mo, recipe, "modelopt"));
    pipeline::run_quantize(options(in, ct, recipe, "compressed-tensors"));
    EXPECT_EQ(read_json(mo / "hf_quant_config.json")["quantization"]["quant_algo"], "MIXED_PRECISION");

    const io::Checkpoint a = io::Checkpoint::open(mo), b = io::Checkpoint::open(ct);
    for (int l = 0; l < 2; ++l) {
        const std::string base = "model.layers." + std::to_string(l) + ".";
        for (const char* p : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"}) {
            const std::string m = base + p;
            EXPECT_EQ(bytes_of(a, m + ".weight"), bytes_of(b, m + ".weight")) << m;
            EXPECT_EQ(b.at(m + ".weight").info->dtype, DType::F8_E4M3);
            // FP8 scales are the same number in both dialects; CT stores them as [1].
            EXPECT_EQ(f32_bits(a, m + ".weight_scale"), f32_bits(b, m + ".weight_scale")) << m;
            EXPECT_EQ(b.at(m + ".weight_scale").info->shape, (std::vector<int64_t>{1}));
            EXPECT_EQ(f32_bits(b, m + ".input_scale"), std::bit_cast<uint32_t>(1.0f)) << m;
            EXPECT_EQ(b.at(m + ".input_scale").info->shape, (std::vector<int64_t>{1}));
        }
        for (const char* p : {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}) {
            const std::string m = base + p;
            EXPECT_EQ(bytes_of(a, m + ".weight"), bytes_of(b, m + ".weight_packed")) << m;
            volatile float one = 1.0f;
            EXPECT_EQ(f32_bits(b, m + ".weight_global_scale"),
                      std::bit_cast<uint32_t>(one / std::bit_cast<float>(f32_bits(a, m + ".weight_scale_2"))))
                << m;
        }
    }

    const json qc = read_json(ct / "config.json")["quantization_config"];
    expect_ct_top_level(qc, "mixed-precision");
    ASSERT_EQ(qc["config_groups"].size(), 2u);
    std::map<std::string, json> by_format;
    for (const auto& [name, g] : qc["config_groups"].items()) by_format[g["format"].get<std::string>()] = g;
    ASSERT_TRUE(by_format.count("float-quantized") && by_format.count("nvfp4-pack-quantized")) << qc.dump();
    const json& fp8 = by_format["float-quantized"];
    const json& fp4 = by_format["nvfp4-pack-quantized"];
    EXPECT_EQ(fp8["targets"].size(), 8u);
    EXPECT_EQ(fp4["targets"].size(), 6u);
    EXPECT_NE(std::find(fp8["targets"].begin(), fp8["targets"].end(), "model.layers.1.self_attn.k_proj"),
              fp8["targets"].end());
    EXPECT_EQ(fp8["weights"]["strategy"], "tensor");
    EXPECT_EQ(fp8["input_activations"]["strategy"], "tensor");
    EXPECT_EQ(fp8["input_activations"]["dynamic"], false);
    EXPECT_TRUE(fp4["input_activations"].is_null());
    expect_args(fp4["weights"], release_weights("memoryless_minmax"), "nvfp4.weights");
    EXPECT_EQ(qc["ignore"], (std::vector<std::string>{"lm_head"}));
    ASSERT_TRUE(qc["kv_cache_scheme"].is_object());
    EXPECT_EQ(qc["kv_cache_scheme"]["num_bits"], 8);
    EXPECT_EQ(qc["kv_cache_scheme"]["type"], "float");
    EXPECT_EQ(qc["kv_cache_scheme"]["strategy"], "tensor");

    const VerifyReport vr = verify_export(ct);
    EXPECT_EQ(vr.format_counts.at("fp8"), 8u);
    EXPECT_EQ(vr.format_counts.at("w4a16_nvfp4"), 6u);
    const InspectReport ir = inspect_checkpoint(ct);
    EXPECT_EQ(ir.dialect, "compressed-tensors");
    EXPECT_EQ(ir.quant_algo, "mixed-precision");
    EXPECT_EQ(ir.kv_cache, "float8");
}

// Plans the dialect cannot express fail before anything is written.
TEST(CompressedTensors, UnsupportedPlanFailsBeforeWriting) {
    TempDir tmp;
    const fs::path in = make_model(tmp.path / "in"), ct = tmp.path / "ct";
    EXPECT_THROW(pipeline::run_quantize(options(in, ct, "MXFP8_DEFAULT_CFG", "compressed-tensors")), Error);
    EXPECT_FALSE(fs::exists(ct));
    EXPECT_THROW(pipeline::run_quantize(options(in, ct, "W4A16_NVFP4_CFG", "gguf")), Error);
    EXPECT_FALSE(fs::exists(ct));
}

// The verifier checks the CT config against the tensors: activation args need the stored input
// scale, every quantized module needs a group, exact-name targets need quantized modules.
TEST(CompressedTensors, VerifierChecksConfigAgainstTensors) {
    TempDir tmp;
    const fs::path in = make_model(tmp.path / "in"), ct = tmp.path / "ct";
    pipeline::run_quantize(options(in, ct, "W4A16_NVFP4_CFG", "compressed-tensors"));
    const json good = read_json(ct / "config.json");
    const auto problems_with = [&](const std::function<void(json&)>& edit) {
        json cfg = good;
        edit(cfg["quantization_config"]);
        std::ofstream(ct / "config.json") << cfg.dump(2);
        std::string all;
        for (const auto& p : check_export(ct).problems) all += p + "\n";
        return all;
    };
    EXPECT_EQ(problems_with([](json&) {}), "");
    EXPECT_NE(problems_with([](json& q) { q["config_groups"]["group_0"]["input_activations"] = release_inputs(); })
                  .find("input_global_scale is missing"),
              std::string::npos);
    const std::string p = problems_with(
        [](json& q) { q["config_groups"]["group_0"]["targets"] = json::array({"model.layers.9.mlp.up_proj"}); });
    EXPECT_NE(p.find("no compressed-tensors config group targets it"), std::string::npos) << p;
    EXPECT_NE(p.find("targets model.layers.9.mlp.up_proj, which has no quantized tensors"), std::string::npos) << p;
    EXPECT_NE(problems_with([](json& q) { q["config_groups"]["group_0"]["weights"]["num_bits"] = 8; })
                  .find("weights say num_bits 8"),
              std::string::npos);
}
