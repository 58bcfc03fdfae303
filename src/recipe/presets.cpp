// Built-in recipe files, embedded as YAML text under ModelOpt's recipe-library paths so that
// ModelOpt recipes importing `configs/numerics/nvfp4` or `configs/ptq/units/...` load unchanged.
// Content follows spec nvfp4-modelopt.md §5.9 (0.46); the wording is ours.
#include <array>
#include <fmt/core.h>

#include "recipe/recipe.h"

namespace microscale::recipe {
namespace {

struct BuiltinFile {
    std::string_view path;
    std::string_view text;
};

// ---- numerics: QuantizerAttributeConfig snippets ------------------------------------------------

constexpr std::string_view kNvfp4 = R"(# NVFP4 with per-block scales computed on the fly; only the fp32 global amax is calibrated.
num_bits: e2m1
block_sizes: {-1: 16, type: dynamic, scale_bits: e4m3}
effective_bits: 4.5
)";

constexpr std::string_view kNvfp4Static = R"(# NVFP4 with calibrated (searchable) per-block amax: mse, fp8 sweep, GPTQ.
num_bits: e2m1
block_sizes: {-1: 16, type: static, scale_bits: e4m3}
)";

constexpr std::string_view kNvfp4FourOverSix = R"(# Static NVFP4 with the 4/6 block choice; E4M3 normalisation 256 instead of 448.
num_bits: e2m1
block_sizes: {-1: 16, type: static, scale_bits: e4m3, four_over_six: true}
)";

constexpr std::string_view kNvfp4Bs32 = R"(# NVFP4 elements and E4M3 scales, but one scale per 32 elements.
num_bits: e2m1
block_sizes: {-1: 32, type: dynamic, scale_bits: e4m3}
)";

constexpr std::string_view kFp8 = R"(# FP8 E4M3, one fp32 scale per tensor.
num_bits: e4m3
axis: null
)";

constexpr std::string_view kMxfp4 = R"(# OCP MXFP4: E2M1 elements, power-of-two E8M0 scale per 32.
num_bits: e2m1
block_sizes: {-1: 32, type: dynamic, scale_bits: e8m0}
)";

constexpr std::string_view kMxfp8 = R"(# OCP MXFP8: E4M3 elements, power-of-two E8M0 scale per 32.
num_bits: e4m3
block_sizes: {-1: 32, type: dynamic, scale_bits: e8m0}
)";

// ---- units: rule lists --------------------------------------------------------------------------

constexpr std::string_view kBaseDisableAll = R"(# Turn every quantizer off first; later rules opt modules in.
- quantizer_name: '*'
  enable: false
)";

constexpr std::string_view kDefaultDisabled = R"(# Modules that stay in high precision whatever came before:
# routers and gates, conv1d of SSM / linear attention, heads, MTP, vision branches, norms, embeddings.
- {quantizer_name: '*block_sparse_moe.gate*', enable: false}
- {quantizer_name: '*linear_attn.conv1d*', enable: false}
- {quantizer_name: '*linear_attn.in_proj_a*', enable: false}
- {quantizer_name: '*linear_attn.in_proj_b*', enable: false}
- {quantizer_name: '*lm_head*', enable: false}
- {quantizer_name: '*mixer.conv1d*', enable: false}
- {quantizer_name: '*mlp.gate.*', enable: false}
- {quantizer_name: '*mlp.shared_expert_gate.*', enable: false}
- {quantizer_name: '*output_layer*', enable: false}
- {quantizer_name: '*proj_out.*', enable: false}
- {quantizer_name: '*router*', enable: false}
- {quantizer_name: 'mtp.*', enable: false}
- {quantizer_name: 'output.*', enable: false}
- {quantizer_name: '*embed_vision*', enable: false}
- {quantizer_name: '*vision_tower*', enable: false}
- {quantizer_name: '*visual*', enable: false}
- {quantizer_name: '*vision_model*', enable: false}
- {quantizer_name: '*multi_modal_projector*', enable: false}
- {parent_class: nn.BatchNorm1d, quantizer_name: '*', enable: false}
- {parent_class: nn.BatchNorm2d, quantizer_name: '*', enable: false}
- {parent_class: nn.BatchNorm3d, quantizer_name: '*', enable: false}
- {parent_class: nn.LeakyReLU, quantizer_name: '*', enable: false}
- {parent_class: nn.Embedding, quantizer_name: '*', enable: false}
)";

constexpr std::string_view kW4a4Nvfp4 = R"(imports:
  nvfp4: configs/numerics/nvfp4
---
- {quantizer_name: '*weight_quantizer', cfg: {$import: nvfp4}}
- {quantizer_name: '*input_quantizer', cfg: {$import: nvfp4}}
)";

constexpr std::string_view kW4a4Nvfp4FourOverSix = R"(# 4/6 needs calibrated block amaxes, so only the weights are static; inputs stay dynamic.
imports:
  nvfp4: configs/numerics/nvfp4
  nvfp4_four_over_six: configs/numerics/nvfp4_four_over_six
---
- {quantizer_name: '*weight_quantizer', cfg: {$import: nvfp4_four_over_six}}
- {quantizer_name: '*input_quantizer', cfg: {$import: nvfp4}}
)";

constexpr std::string_view kW8a8Fp8 = R"(imports:
  fp8: configs/numerics/fp8
---
- {quantizer_name: '*weight_quantizer', cfg: {$import: fp8}}
- {quantizer_name: '*input_quantizer', cfg: {$import: fp8}}
)";

constexpr std::string_view kMixerMlpNvfp4 = R"(# Dense Mamba-MoE style MLPs named mixer.up_proj / mixer.down_proj.
imports:
  nvfp4: configs/numerics/nvfp4
---
- {quantizer_name: '*.mixer.up_proj.weight_quantizer', cfg: {$import: nvfp4}}
- {quantizer_name: '*.mixer.up_proj.input_quantizer', cfg: {$import: nvfp4}}
- {quantizer_name: '*.mixer.down_proj.weight_quantizer', cfg: {$import: nvfp4}}
- {quantizer_name: '*.mixer.down_proj.input_quantizer', cfg: {$import: nvfp4}}
)";

constexpr std::string_view kBlockSparseMoeNvfp4 = R"(imports:
  nvfp4: configs/numerics/nvfp4
---
- {quantizer_name: '*block_sparse_moe*weight_quantizer', cfg: {$import: nvfp4}}
- {quantizer_name: '*block_sparse_moe*input_quantizer', cfg: {$import: nvfp4}}
)";

constexpr std::string_view kExpertsNvfp4 = R"(imports:
  nvfp4: configs/numerics/nvfp4
---
- {quantizer_name: '*.experts.*weight_quantizer', cfg: {$import: nvfp4}}
- {quantizer_name: '*.experts.*input_quantizer', cfg: {$import: nvfp4}}
)";

constexpr std::string_view kKvFp8 = R"(# KV cache (post-RoPE keys and values fed to the attention BMMs), calibrated FP8.
imports:
  fp8: configs/numerics/fp8
---
- {quantizer_name: '*[kv]_bmm_quantizer', cfg: {$import: fp8}}
)";

constexpr std::string_view kKvFp8Cast = R"(# FP8 KV cache with amax pinned to 448 (scale 1): no KV calibration needed.
imports:
  fp8: configs/numerics/fp8
---
- {quantizer_name: '*[kv]_bmm_quantizer', cfg: {$import: fp8, use_constant_amax: true}}
)";

constexpr std::string_view kKvNvfp4 = R"(imports:
  nvfp4: configs/numerics/nvfp4
---
- {quantizer_name: '*[kv]_bmm_quantizer', cfg: {$import: nvfp4}}
)";

constexpr std::string_view kKvNvfp4Cast = R"(imports:
  nvfp4: configs/numerics/nvfp4
---
- {quantizer_name: '*[kv]_bmm_quantizer', cfg: {$import: nvfp4, use_constant_amax: true}}
)";

// ---- presets: full recipes behind the *_CFG names -----------------------------------------------

// Imports every preset below shares.
#define MS_PRESET_IMPORTS                                                  \
    "imports:\n"                                                           \
    "  base_disable_all: configs/ptq/units/base_disable_all\n"            \
    "  default_disabled_quantizers: configs/ptq/units/default_disabled_quantizers\n" \
    "  nvfp4: configs/numerics/nvfp4\n"                                    \
    "  nvfp4_static: configs/numerics/nvfp4_static\n"                      \
    "  nvfp4_four_over_six: configs/numerics/nvfp4_four_over_six\n"        \
    "  nvfp4_bs32: configs/numerics/nvfp4_bs32\n"                          \
    "  fp8: configs/numerics/fp8\n"                                        \
    "  mxfp4: configs/numerics/mxfp4\n"                                    \
    "  mxfp8: configs/numerics/mxfp8\n"                                    \
    "  mixer_mlp_nvfp4: configs/ptq/units/mixer_mlp_nvfp4\n"               \
    "  block_sparse_moe_nvfp4: configs/ptq/units/block_sparse_moe_nvfp4\n" \
    "  experts_nvfp4: configs/ptq/units/experts_nvfp4\n"

constexpr std::string_view kPresetNvfp4 = MS_PRESET_IMPORTS R"(
metadata:
  recipe_type: ptq
  description: NVFP4 W4A4, dynamic block scales on weights and inputs, max calibration
quantize:
  algorithm: max
  quant_cfg:
    - $import: base_disable_all
    - {quantizer_name: '*weight_quantizer', cfg: {$import: nvfp4}}
    - {quantizer_name: '*input_quantizer', cfg: {$import: nvfp4}}
    - $import: default_disabled_quantizers
)";

constexpr std::string_view kPresetW4a16Nvfp4 = MS_PRESET_IMPORTS R"(
metadata:
  recipe_type: ptq
  description: NVFP4 weight-only (W4A16), activations stay bf16, max calibration
quantize:
  algorithm: max
  quant_cfg:
    - $import: base_disable_all
    - {quantizer_name: '*weight_quantizer', cfg: {$import: nvfp4}}
    - $import: default_disabled_quantizers
)";

constexpr std::string_view kPresetNvfp4MseFp8Sweep = MS_PRESET_IMPORTS R"(
metadata:
  recipe_type: ptq
  description: NVFP4 W4A4, static weight block scales searched over all 126 E4M3 codes by MSE
quantize:
  algorithm: {method: mse, fp8_scale_sweep: true}
  quant_cfg:
    - $import: base_disable_all
    - {quantizer_name: '*weight_quantizer', cfg: {$import: nvfp4_static}}
    - {quantizer_name: '*input_quantizer', cfg: {$import: nvfp4}}
    - $import: default_disabled_quantizers
)";

constexpr std::string_view kPresetNvfp4LocalHessian = MS_PRESET_IMPORTS R"(
metadata:
  recipe_type: ptq
  description: NVFP4 W4A4, static weight block scales searched by activation-weighted (local Hessian) error
quantize:
  algorithm: {method: local_hessian, fp8_scale_sweep: true}
  quant_cfg:
    - $import: base_disable_all
    - {quantizer_name: '*weight_quantizer', cfg: {$import: nvfp4_static}}
    - {quantizer_name: '*input_quantizer', cfg: {$import: nvfp4}}
    - $import: default_disabled_quantizers
)";

constexpr std::string_view kPresetNvfp4FourOverSix = MS_PRESET_IMPORTS R"(
metadata:
  recipe_type: ptq
  description: NVFP4 W4A4 with four-over-six weights (per-block M=6 or M=4 by MSE), dynamic inputs
quantize:
  algorithm: {method: mse, fp8_scale_sweep: false, start_multiplier: 1.0, stop_multiplier: 1.5, step_size: 0.5}
  quant_cfg:
    - $import: base_disable_all
    - {quantizer_name: '*weight_quantizer', cfg: {$import: nvfp4_four_over_six}}
    - {quantizer_name: '*input_quantizer', cfg: {$import: nvfp4}}
    - $import: default_disabled_quantizers
)";

constexpr std::string_view kPresetNvfp4MlpOnly = MS_PRESET_IMPORTS R"(
metadata:
  recipe_type: ptq
  description: NVFP4 W4A4 on MLP and MoE layers only; attention stays bf16
quantize:
  algorithm: max
  quant_cfg:
    - $import: base_disable_all
    - {quantizer_name: '*mlp*weight_quantizer', cfg: {$import: nvfp4}}
    - {quantizer_name: '*mlp*input_quantizer', cfg: {$import: nvfp4}}
    - $import: mixer_mlp_nvfp4
    - $import: block_sparse_moe_nvfp4
    - $import: experts_nvfp4
    - $import: default_disabled_quantizers
)";

constexpr std::string_view kPresetNvfp4ExpertsOnly = MS_PRESET_IMPORTS R"(
metadata:
  recipe_type: ptq
  description: NVFP4 W4A4 on routed MoE experts only
quantize:
  algorithm: max
  quant_cfg:
    - $import: base_disable_all
    - $import: block_sparse_moe_nvfp4
    - $import: experts_nvfp4
    - $import: default_disabled_quantizers
)";

// As in 0.46, OMLP does not import the experts unit.
constexpr std::string_view kPresetNvfp4OmlpOnly = MS_PRESET_IMPORTS R"(
metadata:
  recipe_type: ptq
  description: NVFP4 W4A4 on attention o_proj and MLP layers
quantize:
  algorithm: max
  quant_cfg:
    - $import: base_disable_all
    - {quantizer_name: '*o_proj*weight_quantizer', cfg: {$import: nvfp4}}
    - {quantizer_name: '*o_proj*input_quantizer', cfg: {$import: nvfp4}}
    - {quantizer_name: '*mlp*weight_quantizer', cfg: {$import: nvfp4}}
    - {quantizer_name: '*mlp*input_quantizer', cfg: {$import: nvfp4}}
    - $import: mixer_mlp_nvfp4
    - $import: block_sparse_moe_nvfp4
    - $import: default_disabled_quantizers
)";

constexpr std::string_view kPresetNvfp4MlpWeightOnly = MS_PRESET_IMPORTS R"(
metadata:
  recipe_type: ptq
  description: NVFP4 weight-only with 32-element blocks on MLP and MoE layers
quantize:
  algorithm: max
  quant_cfg:
    - $import: base_disable_all
    - {quantizer_name: '*mlp*weight_quantizer', cfg: {$import: nvfp4_bs32}}
    - {quantizer_name: '*block_sparse_moe*weight_quantizer', cfg: {$import: nvfp4_bs32}}
    - $import: default_disabled_quantizers
)";

constexpr std::string_view kPresetW4a8Nvfp4Fp8 = MS_PRESET_IMPORTS R"(
metadata:
  recipe_type: ptq
  description: NVFP4 weights with 32-element blocks and FP8 activations (W4A8)
quantize:
  algorithm: max
  quant_cfg:
    - $import: base_disable_all
    - {quantizer_name: '*weight_quantizer', cfg: {$import: nvfp4_bs32}}
    - {quantizer_name: '*input_quantizer', cfg: {$import: fp8}}
    - $import: default_disabled_quantizers
)";

constexpr std::string_view kPresetFp8 = MS_PRESET_IMPORTS R"(
metadata:
  recipe_type: ptq
  description: FP8 E4M3 W8A8, per-tensor scales, max calibration
quantize:
  algorithm: max
  quant_cfg:
    - $import: base_disable_all
    - {quantizer_name: '*weight_quantizer', cfg: {$import: fp8}}
    - {quantizer_name: '*input_quantizer', cfg: {$import: fp8}}
    - $import: default_disabled_quantizers
)";

constexpr std::string_view kPresetMxfp4 = MS_PRESET_IMPORTS R"(
metadata:
  recipe_type: ptq
  description: MXFP4 weights and activations (E8M0 scale per 32), no calibration
quantize:
  algorithm: null
  quant_cfg:
    - $import: base_disable_all
    - {quantizer_name: '*weight_quantizer', cfg: {$import: mxfp4}}
    - {quantizer_name: '*input_quantizer', cfg: {$import: mxfp4}}
    - $import: default_disabled_quantizers
)";

constexpr std::string_view kPresetMxfp8 = MS_PRESET_IMPORTS R"(
metadata:
  recipe_type: ptq
  description: MXFP8 weights and activations (E8M0 scale per 32), no calibration
quantize:
  algorithm: null
  quant_cfg:
    - $import: base_disable_all
    - {quantizer_name: '*weight_quantizer', cfg: {$import: mxfp8}}
    - {quantizer_name: '*input_quantizer', cfg: {$import: mxfp8}}
    - $import: default_disabled_quantizers
)";

constexpr std::string_view kPresetW4a8Mxfp4Fp8 = MS_PRESET_IMPORTS R"(
metadata:
  recipe_type: ptq
  description: MXFP4 weights with FP8 activations, no calibration of weights
quantize:
  algorithm: null
  quant_cfg:
    - $import: base_disable_all
    - {quantizer_name: '*weight_quantizer', cfg: {$import: mxfp4}}
    - {quantizer_name: '*input_quantizer', cfg: {$import: fp8}}
    - $import: default_disabled_quantizers
)";

constexpr std::string_view kPresetMxfp4MlpWeightOnly = MS_PRESET_IMPORTS R"(
metadata:
  recipe_type: ptq
  description: MXFP4 weight-only on MLP and MoE layers
quantize:
  algorithm: null
  quant_cfg:
    - $import: base_disable_all
    - {quantizer_name: '*mlp*weight_quantizer', cfg: {$import: mxfp4}}
    - {quantizer_name: '*block_sparse_moe*weight_quantizer', cfg: {$import: mxfp4}}
    - $import: default_disabled_quantizers
)";

#define MS_AWQ_PRESET(ALGO, DESC)                                            \
    MS_PRESET_IMPORTS                                                        \
    "\nmetadata:\n  recipe_type: ptq\n  description: " DESC "\n"             \
    "quantize:\n  algorithm: " ALGO "\n  quant_cfg:\n"                       \
    "    - $import: base_disable_all\n"                                      \
    "    - {quantizer_name: '*weight_quantizer', cfg: {$import: nvfp4}}\n"   \
    "    - {quantizer_name: '*input_quantizer', cfg: {$import: nvfp4}}\n"    \
    "    - $import: default_disabled_quantizers\n"

constexpr std::string_view kPresetAwqLite = MS_AWQ_PRESET("awq_lite", "NVFP4 W4A4 with AWQ-lite smoothing (needs calibration data)");
constexpr std::string_view kPresetAwqClip = MS_AWQ_PRESET("awq_clip", "NVFP4 W4A4 with AWQ global-amax clipping (needs calibration data)");
constexpr std::string_view kPresetAwqFull = MS_AWQ_PRESET("{method: awq_full, alpha_step: 0.1}",
                                                          "NVFP4 W4A4 with AWQ smoothing and clipping (needs calibration data)");
constexpr std::string_view kPresetSvdquant = MS_AWQ_PRESET("{method: svdquant, lowrank: 32}",
                                                           "NVFP4 W4A4 with SVDQuant low-rank residual (needs calibration data)");

// KV presets are partial: no algorithm, no deny-all; merge them into a main preset.
constexpr std::string_view kPresetKvFp8 = R"(imports:
  kv_fp8: configs/ptq/units/kv_fp8
metadata:
  recipe_type: ptq
  description: KV cache FP8 (calibrated); merge into a main recipe, e.g. NVFP4_DEFAULT_CFG+FP8_KV_CFG
quant_cfg:
  - $import: kv_fp8
)";

constexpr std::string_view kPresetKvNvfp4 = R"(imports:
  kv_nvfp4: configs/ptq/units/kv_nvfp4
metadata:
  recipe_type: ptq
  description: KV cache NVFP4 (dynamic blocks); merge into a main recipe, e.g. NVFP4_DEFAULT_CFG+NVFP4_KV_CFG
quant_cfg:
  - $import: kv_nvfp4
)";

#undef MS_AWQ_PRESET
#undef MS_PRESET_IMPORTS

constexpr std::array kFiles = {
    BuiltinFile{"configs/numerics/nvfp4", kNvfp4},
    BuiltinFile{"configs/numerics/nvfp4_static", kNvfp4Static},
    BuiltinFile{"configs/numerics/nvfp4_four_over_six", kNvfp4FourOverSix},
    BuiltinFile{"configs/numerics/nvfp4_bs32", kNvfp4Bs32},
    BuiltinFile{"configs/numerics/fp8", kFp8},
    BuiltinFile{"configs/numerics/mxfp4", kMxfp4},
    BuiltinFile{"configs/numerics/mxfp8", kMxfp8},
    BuiltinFile{"configs/ptq/units/base_disable_all", kBaseDisableAll},
    BuiltinFile{"configs/ptq/units/default_disabled_quantizers", kDefaultDisabled},
    BuiltinFile{"configs/ptq/units/w4a4_nvfp4_nvfp4", kW4a4Nvfp4},
    BuiltinFile{"configs/ptq/units/w4a4_nvfp4_nvfp4_four_over_six", kW4a4Nvfp4FourOverSix},
    BuiltinFile{"configs/ptq/units/w8a8_fp8_fp8", kW8a8Fp8},
    BuiltinFile{"configs/ptq/units/mixer_mlp_nvfp4", kMixerMlpNvfp4},
    BuiltinFile{"configs/ptq/units/block_sparse_moe_nvfp4", kBlockSparseMoeNvfp4},
    BuiltinFile{"configs/ptq/units/experts_nvfp4", kExpertsNvfp4},
    BuiltinFile{"configs/ptq/units/kv_fp8", kKvFp8},
    BuiltinFile{"configs/ptq/units/kv_fp8_cast", kKvFp8Cast},
    BuiltinFile{"configs/ptq/units/kv_nvfp4", kKvNvfp4},
    BuiltinFile{"configs/ptq/units/kv_nvfp4_cast", kKvNvfp4Cast},
    BuiltinFile{"configs/ptq/presets/model/nvfp4", kPresetNvfp4},
    BuiltinFile{"configs/ptq/presets/model/w4a16_nvfp4", kPresetW4a16Nvfp4},
    BuiltinFile{"configs/ptq/presets/model/nvfp4_w4a4_weight_mse_fp8_sweep", kPresetNvfp4MseFp8Sweep},
    BuiltinFile{"configs/ptq/presets/model/nvfp4_w4a4_weight_local_hessian", kPresetNvfp4LocalHessian},
    BuiltinFile{"configs/ptq/presets/model/nvfp4_four_over_six", kPresetNvfp4FourOverSix},
    BuiltinFile{"configs/ptq/presets/model/nvfp4_mlp_only", kPresetNvfp4MlpOnly},
    BuiltinFile{"configs/ptq/presets/model/nvfp4_experts_only", kPresetNvfp4ExpertsOnly},
    BuiltinFile{"configs/ptq/presets/model/nvfp4_omlp_only", kPresetNvfp4OmlpOnly},
    BuiltinFile{"configs/ptq/presets/model/nvfp4_mlp_weight_only", kPresetNvfp4MlpWeightOnly},
    BuiltinFile{"configs/ptq/presets/model/w4a8_nvfp4_fp8", kPresetW4a8Nvfp4Fp8},
    BuiltinFile{"configs/ptq/presets/model/nvfp4_awq_lite", kPresetAwqLite},
    BuiltinFile{"configs/ptq/presets/model/nvfp4_awq_clip", kPresetAwqClip},
    BuiltinFile{"configs/ptq/presets/model/nvfp4_awq_full", kPresetAwqFull},
    BuiltinFile{"configs/ptq/presets/model/nvfp4_svdquant", kPresetSvdquant},
    BuiltinFile{"configs/ptq/presets/model/fp8", kPresetFp8},
    BuiltinFile{"configs/ptq/presets/model/mxfp4", kPresetMxfp4},
    BuiltinFile{"configs/ptq/presets/model/mxfp8", kPresetMxfp8},
    BuiltinFile{"configs/ptq/presets/model/w4a8_mxfp4_fp8", kPresetW4a8Mxfp4Fp8},
    BuiltinFile{"configs/ptq/presets/model/mxfp4_mlp_weight_only", kPresetMxfp4MlpWeightOnly},
    BuiltinFile{"configs/ptq/presets/kv/fp8", kPresetKvFp8},
    BuiltinFile{"configs/ptq/presets/kv/nvfp4", kPresetKvNvfp4},
};

constexpr std::array kPresets = {
    PresetInfo{"NVFP4_DEFAULT_CFG", "configs/ptq/presets/model/nvfp4", "NVFP4 W4A4, dynamic block scales, max calibration"},
    PresetInfo{"W4A16_NVFP4_CFG", "configs/ptq/presets/model/w4a16_nvfp4", "NVFP4 weight-only, bf16 activations"},
    PresetInfo{"NVFP4_W4A4_WEIGHT_MSE_FP8_SWEEP_CFG", "configs/ptq/presets/model/nvfp4_w4a4_weight_mse_fp8_sweep",
               "NVFP4 W4A4, weight block scales by MSE over all E4M3 codes"},
    PresetInfo{"NVFP4_W4A4_WEIGHT_LOCAL_HESSIAN_CFG", "configs/ptq/presets/model/nvfp4_w4a4_weight_local_hessian",
               "NVFP4 W4A4, weight block scales by local-Hessian error (needs calibration data)"},
    PresetInfo{"NVFP4_FOUR_OVER_SIX_CFG", "configs/ptq/presets/model/nvfp4_four_over_six",
               "NVFP4 W4A4, four-over-six weights (per-block M=6 / M=4 by MSE)"},
    PresetInfo{"NVFP4_MLP_ONLY_CFG", "configs/ptq/presets/model/nvfp4_mlp_only", "NVFP4 W4A4 on MLP / MoE layers only"},
    PresetInfo{"NVFP4_EXPERTS_ONLY_CFG", "configs/ptq/presets/model/nvfp4_experts_only", "NVFP4 W4A4 on routed experts only"},
    PresetInfo{"NVFP4_OMLP_ONLY_CFG", "configs/ptq/presets/model/nvfp4_omlp_only", "NVFP4 W4A4 on o_proj and MLP layers"},
    PresetInfo{"NVFP4_MLP_WEIGHT_ONLY_CFG", "configs/ptq/presets/model/nvfp4_mlp_weight_only",
               "NVFP4 weight-only, 32-element blocks, MLP layers (no export format yet)"},
    PresetInfo{"W4A8_NVFP4_FP8_CFG", "configs/ptq/presets/model/w4a8_nvfp4_fp8",
               "NVFP4 bs32 weights, FP8 activations (no export format yet)"},
    PresetInfo{"NVFP4_AWQ_LITE_CFG", "configs/ptq/presets/model/nvfp4_awq_lite", "NVFP4 W4A4 + AWQ-lite (needs calibration data)"},
    PresetInfo{"NVFP4_AWQ_CLIP_CFG", "configs/ptq/presets/model/nvfp4_awq_clip", "NVFP4 W4A4 + AWQ clip (needs calibration data)"},
    PresetInfo{"NVFP4_AWQ_FULL_CFG", "configs/ptq/presets/model/nvfp4_awq_full", "NVFP4 W4A4 + AWQ full (needs calibration data)"},
    PresetInfo{"NVFP4_SVDQUANT_DEFAULT_CFG", "configs/ptq/presets/model/nvfp4_svdquant",
               "NVFP4 W4A4 + SVDQuant rank 32 (needs calibration data; no export format yet)"},
    PresetInfo{"FP8_DEFAULT_CFG", "configs/ptq/presets/model/fp8", "FP8 E4M3 W8A8, per-tensor scales"},
    PresetInfo{"MXFP4_DEFAULT_CFG", "configs/ptq/presets/model/mxfp4", "MXFP4 weights and activations"},
    PresetInfo{"MXFP8_DEFAULT_CFG", "configs/ptq/presets/model/mxfp8", "MXFP8 weights and activations"},
    PresetInfo{"W4A8_MXFP4_FP8_CFG", "configs/ptq/presets/model/w4a8_mxfp4_fp8",
               "MXFP4 weights, FP8 activations (no export format yet)"},
    PresetInfo{"MXFP4_MLP_WEIGHT_ONLY_CFG", "configs/ptq/presets/model/mxfp4_mlp_weight_only", "MXFP4 weight-only on MLP layers"},
    PresetInfo{"FP8_KV_CFG", "configs/ptq/presets/kv/fp8", "KV unit: FP8 KV cache; add to a main preset with '+'"},
    PresetInfo{"NVFP4_KV_CFG", "configs/ptq/presets/kv/nvfp4", "KV unit: NVFP4 KV cache; add to a main preset with '+'"},
};

}  // namespace

std::span<const PresetInfo> presets() { return kPresets; }

const PresetInfo* find_preset(std::string_view name) {
    for (const PresetInfo& p : kPresets)
        if (p.name == name) return &p;
    return nullptr;
}

std::optional<std::string_view> builtin_file(std::string_view path) {
    for (const BuiltinFile& f : kFiles)
        if (f.path == path) return f.text;
    return std::nullopt;
}

std::vector<std::string_view> builtin_paths() {
    std::vector<std::string_view> out;
    for (const BuiltinFile& f : kFiles) out.push_back(f.path);
    return out;
}

}  // namespace microscale::recipe
