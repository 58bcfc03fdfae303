// inspect: dialect detection, per-module storage and effective bits from stored bytes.
#include "export/inspect.h"

#include <gtest/gtest.h>

#include "export_fixture.h"

using namespace microscale;
using namespace microscale::exporter;
using namespace microscale::exporter::testing;
using microscale::io::testing::TempDir;

namespace {

InspectReport inspect(const ExportFixture& fx, bool tensors = false) {
    TempDir dir;
    fx.write(dir.path());
    return inspect_checkpoint(dir.path(), tensors);
}

const InspectModule& module(const InspectReport& r, const std::string& name) {
    for (const auto& m : r.modules)
        if (m.name == name) return m;
    throw std::runtime_error("no module " + name);
}

// The bits a [out, in] weight takes in f, per-tensor scale included.
double bits_of(Format f, int64_t out, int64_t in) {
    return 8.0 * double(format_storage_bytes(f, uint64_t(out), uint64_t(in))) / double(out * in);
}

}  // namespace

TEST(InspectNames, SplitKindsAndGroups) {
    EXPECT_EQ(split_tensor_name("a.b.weight_scale_2").role, TensorRole::WEIGHT_SCALE_2);
    EXPECT_EQ(split_tensor_name("a.b.weight_scale_2").module, "a.b");
    EXPECT_EQ(split_tensor_name("x.k_proj.k_scale").role, TensorRole::K_SCALE);
    EXPECT_EQ(split_tensor_name("x.bias").role, TensorRole::OTHER);
    EXPECT_EQ(layer_kind_of("model.layers.3.self_attn.q_proj"), LayerKind::ATTN_Q);
    EXPECT_EQ(layer_kind_of("model.layers.3.mlp.down_proj"), LayerKind::MLP_DOWN);
    EXPECT_EQ(layer_kind_of("model.layers.3.mlp.experts.7.up_proj"), LayerKind::EXPERTS);
    EXPECT_EQ(layer_kind_of("backbone.layers.1.mixer.shared_experts.up_proj"), LayerKind::MLP_UP);
    EXPECT_EQ(layer_kind_of("model.embed_tokens"), LayerKind::EMBED);
    EXPECT_EQ(layer_kind_of("lm_head"), LayerKind::LM_HEAD);
    EXPECT_EQ(layer_kind_of("model.layers.0.mlp.gate"), LayerKind::OTHER);
    EXPECT_EQ(fused_group_key("m.l.0.self_attn.q_proj"), fused_group_key("m.l.0.self_attn.v_proj"));
    EXPECT_NE(fused_group_key("m.l.0.self_attn.q_proj"), fused_group_key("m.l.1.self_attn.q_proj"));
    EXPECT_EQ(fused_group_key("e.3.w1"), fused_group_key("e.3.w3"));
    EXPECT_NE(fused_group_key("e.3.w1"), fused_group_key("e.4.w3"));
    EXPECT_EQ(fused_group_key("q_proj"), fused_group_key("k_proj"));  // no parent
    EXPECT_FALSE(fused_group_key("m.l.0.self_attn.o_proj"));
    EXPECT_FALSE(fused_group_key("m.l.0.mlp.down_proj"));
}

TEST(InspectCheckpoint, OriginalBf16Is16Bits) {
    ExportFixture fx;
    fx.build_llama([](const std::string&) { return std::nullopt; }, std::nullopt);
    fx.config = {{"model_type", "llama"}};
    fx.hf_quant = nullptr;
    const auto r = inspect(fx);
    EXPECT_EQ(r.dialect, "unquantized");
    EXPECT_EQ(r.model_type, "llama");
    EXPECT_EQ(r.modules.size(), 9u);  // 7 linears + embed + lm_head
    EXPECT_DOUBLE_EQ(r.linear.bits(), 16.0);
    EXPECT_DOUBLE_EQ(r.linear_lm_head.bits(), 16.0);
    EXPECT_DOUBLE_EQ(r.all_weights.bits(), 16.0);
    EXPECT_EQ(r.linear.modules, 7u);
    EXPECT_EQ(r.linear_lm_head.modules, 8u);
    EXPECT_EQ(r.all_weights.modules, 9u);
    EXPECT_EQ(module(r, "model.layers.0.mlp.down_proj").storage, "bf16");
    EXPECT_EQ(r.non_module_bytes, 128u);  // the norm
    // Sorted by kind: attention first, embeddings last.
    EXPECT_EQ(r.modules.front().kind, LayerKind::ATTN_Q);
    EXPECT_EQ(r.modules.back().kind, LayerKind::EMBED);
}

TEST(InspectCheckpoint, Nvfp4Is4Point5PlusScale) {
    ExportFixture fx;
    fx.build_single(Format::NVFP4);
    const auto r = inspect(fx);
    EXPECT_EQ(r.dialect, "modelopt");
    EXPECT_EQ(r.quant_algo, "NVFP4");
    EXPECT_EQ(r.kv_cache, "FP8");
    EXPECT_EQ(r.kv_scale_tensors, 2u);
    uint64_t elems = 0;
    for (const auto& l : llama_linears()) {
        const auto& m = module(r, l.name);
        EXPECT_EQ(m.storage, "nvfp4");
        EXPECT_EQ(m.shape, (std::vector<int64_t>{l.out, l.in}));
        const double n = double(l.out * l.in);
        EXPECT_DOUBLE_EQ(m.bits(), 4.5 + 32.0 / n) << l.name;
        EXPECT_TRUE(m.has_input_scale);
        elems += uint64_t(l.out * l.in);
    }
    // Each of 7 tensors carries one 4-byte global scale.
    EXPECT_DOUBLE_EQ(r.linear.bits(), 4.5 + 7 * 32.0 / double(elems));
    // lm_head stays bf16: the with-lm_head figure is the element-weighted mean.
    const double lm = 128.0 * 64.0;
    EXPECT_NEAR(r.linear_lm_head.bits(), (r.linear.bits() * double(elems) + 16.0 * lm) / (double(elems) + lm), 1e-12);
    EXPECT_EQ(module(r, "lm_head").storage, "bf16");
}

TEST(InspectCheckpoint, MixedIsWeightedMean) {
    ExportFixture fx;
    std::map<std::string, Format> fmt_of;
    fx.build_llama([&](const std::string& n) -> std::optional<Format> {
        Format f = n.find("self_attn") != std::string::npos ? Format::NVFP4
                   : n.find("down") != std::string::npos    ? Format::MXFP4
                                                            : Format::FP8;
        fmt_of[n] = f;
        return f;
    });
    const auto r = inspect(fx);
    EXPECT_EQ(r.quant_algo, "MIXED_PRECISION");
    double bits = 0, elems = 0;
    for (const auto& l : llama_linears()) {
        const Format f = fmt_of.at(l.name);
        const auto& m = module(r, l.name);
        EXPECT_EQ(m.storage, format_info(f).name) << l.name;
        EXPECT_DOUBLE_EQ(m.bits(), bits_of(f, l.out, l.in)) << l.name;
        bits += bits_of(f, l.out, l.in) * double(l.out * l.in);
        elems += double(l.out * l.in);
    }
    EXPECT_NEAR(r.linear.bits(), bits / elems, 1e-12);
    EXPECT_GT(r.linear.bits(), 4.25);
    EXPECT_LT(r.linear.bits(), 8.0);
    // Per-kind rows: attn.q is NVFP4, mlp.gate FP8 (+32/N), mlp.down MXFP4 = 4.25 exactly.
    for (const auto& k : r.kinds) {
        if (k.label == "mlp.down") EXPECT_DOUBLE_EQ(k.bits(), 4.25);
        if (k.label == "mlp.gate") EXPECT_DOUBLE_EQ(k.bits(), 8.0 + 32.0 / (128.0 * 64.0));
    }
}

TEST(InspectCheckpoint, W4A16FromJsonAndCompressedTensors) {
    ExportFixture fx;
    fx.build_single(Format::W4A16_NVFP4, std::nullopt);
    auto r = inspect(fx);
    EXPECT_EQ(module(r, "model.layers.0.self_attn.q_proj").storage, "w4a16_nvfp4");
    EXPECT_EQ(r.kv_cache, "none");

    ExportFixture ct;
    ct.build_single(Format::NVFP4);
    ct.to_compressed_tensors();
    r = inspect(ct);
    EXPECT_EQ(r.dialect, "compressed-tensors");
    EXPECT_EQ(r.quant_algo, "nvfp4-pack-quantized");
    const auto& q = module(r, "model.layers.0.self_attn.q_proj");
    EXPECT_EQ(q.storage, "nvfp4");
    EXPECT_DOUBLE_EQ(q.bits(), 4.5 + 32.0 / (64.0 * 64.0));
}

TEST(InspectCheckpoint, TextAndJson) {
    ExportFixture fx;
    fx.build_single(Format::NVFP4);
    const auto r = inspect(fx, true);
    EXPECT_EQ(r.tensors.size(), fx.tensors.size());
    const std::string text = format_inspect_text(r, true);
    for (const char* s : {"dialect      modelopt", "[attn.q]", "[mlp.down]", "[lm_head]", "bits/elem",
                          "weights only", "no embeddings, no lm_head", "linear weights + lm_head",
                          "model.layers.0.self_attn.q_proj.weight_scale_2", "F8_E4M3", "kv cache     FP8"})
        EXPECT_NE(text.find(s), std::string::npos) << s << "\n" << text;
    const auto j = inspect_to_json(r, true);
    EXPECT_EQ(j.at("dialect"), "modelopt");
    EXPECT_EQ(j.at("modules").size(), 9u);
    EXPECT_DOUBLE_EQ(j.at("linear").at("bits_per_element").get<double>(), r.linear.bits());
    EXPECT_TRUE(j.at("kinds").contains("attn.q"));
    EXPECT_EQ(j.at("tensors").size(), fx.tensors.size());
    EXPECT_FALSE(inspect_to_json(r, false).contains("tensors"));
}
