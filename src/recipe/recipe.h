// Recipes: ModelOpt 0.46 quant_cfg rule lists and calibration algorithms (spec nvfp4-modelopt.md §6),
// resolved per quantizer name. Loading lives in yaml_loader.cpp, presets in presets.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "format/nvfp4.h"
#include "microscale/format.h"

namespace microscale::recipe {

// Where a rule or value came from, for error messages: "file:line:column" (1-based).
struct SourceLoc {
    std::string file;
    int line = 0;
    int column = 0;
    std::string str() const;
};

// ModelOpt num_bits / scale_bits: an integer bit count or an (E, M) float format.
struct NumBits {
    bool is_float = false;
    int bits = 8;      // integer formats
    int exponent = 0;  // float formats
    int mantissa = 0;

    static NumBits integer(int n) { return NumBits{false, n, 0, 0}; }
    static NumBits fp(int e, int m) { return NumBits{true, 0, e, m}; }
    bool is(int e, int m) const { return is_float && exponent == e && mantissa == m; }
    int total_bits() const { return is_float ? exponent + mantissa + 1 : bits; }  // spec §8 heuristic
    std::string str() const;  // "e4m3" or "8"
    bool operator==(const NumBits&) const = default;
};

enum class BlockType : uint8_t { Static, Dynamic };

// block_sizes: {-1: 16, type: dynamic, scale_bits: e4m3, four_over_six: true}
struct BlockSizes {
    std::vector<std::pair<int, std::optional<int>>> axes;  // axis -> block elems (nullopt = whole dim)
    BlockType type = BlockType::Static;
    std::optional<NumBits> scale_bits;  // nullopt: unquantized (fp32) block scales
    bool four_over_six = false;         // E4M3 normalisation 256 instead of 448 (spec §5.3)
    bool has_scale_block_sizes = false; // double-quantised scales: parsed, no format uses them

    // Block size along `axis`, if that axis is blocked with a fixed size.
    std::optional<int> size_along(int axis) const;
    bool operator==(const BlockSizes&) const = default;
};

// QuantizerAttributeConfig. Default-constructed = ModelOpt's defaults: an enabled 8-bit integer
// per-tensor quantizer, which is what a quantizer no rule touches keeps (hence `'*': off` first).
struct QuantizerAttributes {
    bool enable = true;
    NumBits num_bits = NumBits::integer(8);
    std::optional<int> axis;                 // nullopt = per-tensor
    std::optional<BlockSizes> block_sizes;   // exclusive with axis
    bool dynamic = false;                    // top-level `type: dynamic`: never calibrated
    bool use_constant_amax = false;          // amax := 448 (FP8) without calibration
    std::optional<double> constant_amax;     // pins _amax; used at export
    std::optional<double> effective_bits;    // AutoQuantize cost only (spec §8)
    std::string calibrator = "max";          // "max" | "histogram"
    bool fake_quant = true;
    bool is_unsigned = false;
    bool narrow_range = false;
    bool pass_through_bwd = true;
    std::string trt_high_precision_dtype = "Float";
    // Keys set to values microscale does not implement (bias, rotate, backend, ...); the
    // classifier refuses an enabled quantizer that carries any.
    std::vector<std::string> unsupported;

    bool operator==(const QuantizerAttributes&) const = default;
};

// One quant_cfg entry. Exactly ModelOpt's semantics (spec §6.1): with `cfg` it replaces the
// attributes fully and sets enable (default true); with only `enable` it toggles.
struct Rule {
    std::string quantizer_name;               // fnmatch glob over the full quantizer name
    std::optional<std::string> parent_class;  // e.g. "nn.Embedding": the owning module's kind
    std::optional<bool> enable;
    std::optional<QuantizerAttributes> cfg;   // cfg->enable is ignored; `enable` above decides
    SourceLoc where;

    bool enabled_after() const { return enable.value_or(true); }
};

// A calibration algorithm parameter as written (typed by the method's table in yaml_loader.cpp).
struct AlgorithmParam {
    enum class Kind : uint8_t { Bool, Int, Number, String, Raw } kind = Kind::Raw;
    std::string key;
    bool b = false;
    int64_t i = 0;
    double d = 0.0;   // also set for Int
    std::string s;    // String value, or the YAML text of a Raw (mapping/list) value
};

struct Algorithm {
    std::string method;  // max, mse, local_hessian, gptq, awq_lite, awq_clip, awq_full, ...
    std::vector<AlgorithmParam> params;
    SourceLoc where;

    const AlgorithmParam* find(std::string_view key) const;
    double number(std::string_view key, double fallback) const;
    bool flag(std::string_view key, bool fallback) const;
    int64_t integer(std::string_view key, int64_t fallback) const;
};

struct Recipe {
    std::string name;         // preset name, or the file's stem
    std::string description;  // metadata.description
    std::string recipe_type = "ptq";
    std::string source;       // file path or "<builtin>/configs/..."
    // `algorithm`: a name, {method, ...}, or a list; empty = null (no calibration, MX presets).
    // A recipe that omits the key gets ModelOpt's default, max.
    std::vector<Algorithm> algorithms;
    std::vector<Rule> rules;             // in order; later rules win
    std::optional<double> effective_bits;  // QuantizeConfig.effective_bits (AutoQuantize)
    std::vector<std::string> warnings;   // deprecations and ModelOpt quirks met while loading
};

// ---- resolution (resolve.cpp) -----------------------------------------------------------------

// Attributes of one quantizer (`model.layers.0.mlp.up_proj.weight_quantizer`) whose owning module
// has kind `module_class` ("nn.Linear", "nn.Embedding", "LlamaAttention"; matched by equality
// against parent_class rules). Starts from ModelOpt's defaults (see QuantizerAttributes).
QuantizerAttributes resolve(const Recipe& recipe, std::string_view quantizer_name,
                            std::string_view module_class);

struct Resolution {
    QuantizerAttributes attrs;
    int last_rule = -1;  // index of the last rule that matched, -1 = none (ModelOpt defaults)
    int cfg_rule = -1;   // index of the rule whose cfg the attributes come from, -1 = defaults
};
Resolution resolve_traced(const Recipe& recipe, std::string_view quantizer_name,
                          std::string_view module_class);

bool rule_matches(const Rule& rule, std::string_view quantizer_name, std::string_view module_class);

// Weight format of a weight quantizer: nullopt when disabled (stays BF16). The NVFP4 family
// (e2m1, block 16 on the last axis, e4m3 scales; static or dynamic, 4/6 or not) returns
// Format::NVFP4; use linear_format_of to tell W4A4 from W4A16. Throws Error naming the quantizer
// for anything microscale cannot write.
std::optional<Format> weight_format_of(const QuantizerAttributes& weight,
                                       std::string_view quantizer_name = {});

// True when `input` is an enabled activation quantizer (W4A4 / W8A8 rather than weight-only).
bool quantizes_activations(const QuantizerAttributes& input);

// Format of a linear layer from its weight and input quantizers: NVFP4 weights with a disabled
// input quantizer give W4A16_NVFP4, with an NVFP4 input NVFP4; FP8/MX inputs must match their
// weights or be off. Throws for combinations with no format (e.g. NVFP4 weights, FP8 inputs).
std::optional<Format> linear_format_of(const QuantizerAttributes& weight, const QuantizerAttributes& input,
                                       std::string_view module_name = {});

// Activation/KV formats: FP8 per-tensor or NVFP4 dynamic; nullopt when disabled; throws otherwise.
std::optional<Format> activation_format_of(const QuantizerAttributes& q, std::string_view quantizer_name = {});

// Spec §8 heuristic for one cfg: effective_bits if set, else int n -> n, (E, M) -> E+M+1.
double effective_bits_of(const QuantizerAttributes& q);
// AutoQuantize cost of a recipe as ModelOpt 0.46 computes it: recipe-level effective_bits, else
// the min over all enabled cfg entries, else 16.
double autoquant_effective_bits(const Recipe& recipe);

// The mse / local_hessian multiplier sweep parameters with the method's defaults (0.25, 4.0,
// 0.1). The fp32 candidates themselves come from format::mse_multipliers, the one copy of
// torch's CUDA linspace (spec §5.2, docs/FORMATS.md).
format::MseSweep mse_sweep_of(const Algorithm& algo);

// Human-readable forms for the CLI and the plan printer.
std::string describe(const QuantizerAttributes& q);
std::string describe(const Rule& rule);
std::string describe(const Algorithm& algo);

// Rules of `extra` appended after `base`'s (how ModelOpt merges a KV preset into a main one);
// base keeps its algorithm and metadata.
Recipe append_rules(Recipe base, const Recipe& extra);

// ---- loading (yaml_loader.cpp) ----------------------------------------------------------------

// A preset name (NVFP4_DEFAULT_CFG), several joined with '+' (NVFP4_DEFAULT_CFG+FP8_KV_CFG), a
// built-in path (configs/ptq/presets/model/nvfp4), or a YAML file.
Recipe load_recipe(std::string_view name_or_path);
Recipe load_recipe_file(const std::string& path);
// Text as if read from `display_name`; relative imports resolve against `base_dir`.
Recipe load_recipe_text(std::string_view yaml_text, std::string_view display_name,
                        const std::string& base_dir = ".");

// ---- built-ins (presets.cpp) -------------------------------------------------------------------

struct PresetInfo {
    std::string_view name;         // ModelOpt constant name, e.g. "NVFP4_DEFAULT_CFG"
    std::string_view path;         // built-in path of its YAML, e.g. "configs/ptq/presets/model/nvfp4"
    std::string_view description;  // one line
};
std::span<const PresetInfo> presets();
const PresetInfo* find_preset(std::string_view name);
Recipe load_preset(std::string_view name);

// YAML text of a built-in file by path without suffix ("configs/numerics/nvfp4"), or nullopt.
std::optional<std::string_view> builtin_file(std::string_view path);
// All built-in paths (snippets, units and presets).
std::vector<std::string_view> builtin_paths();

}  // namespace microscale::recipe
