// Rule resolution (spec §6.1), the weight/activation format classifier and effective bits (§8).
#include <algorithm>
#include <cmath>
#include <fmt/core.h>

#include "microscale/error.h"
#include "recipe/glob.h"
#include "recipe/recipe.h"

namespace microscale::recipe {

std::string SourceLoc::str() const {
    if (line <= 0) return file;
    return fmt::format("{}:{}:{}", file, line, column);
}

std::string NumBits::str() const {
    return is_float ? fmt::format("e{}m{}", exponent, mantissa) : std::to_string(bits);
}

std::optional<int> BlockSizes::size_along(int axis) const {
    for (const auto& [a, size] : axes)
        if (a == axis) return size;
    return std::nullopt;
}

const AlgorithmParam* Algorithm::find(std::string_view key) const {
    for (const AlgorithmParam& p : params)
        if (p.key == key) return &p;
    return nullptr;
}

double Algorithm::number(std::string_view key, double fallback) const {
    const AlgorithmParam* p = find(key);
    if (!p) return fallback;
    if (p->kind != AlgorithmParam::Kind::Number && p->kind != AlgorithmParam::Kind::Int)
        throw Error(fmt::format("{}: algorithm {}: parameter '{}' is not a number", where.str(), method, key));
    return p->d;
}

bool Algorithm::flag(std::string_view key, bool fallback) const {
    const AlgorithmParam* p = find(key);
    if (!p) return fallback;
    if (p->kind != AlgorithmParam::Kind::Bool)
        throw Error(fmt::format("{}: algorithm {}: parameter '{}' is not a bool", where.str(), method, key));
    return p->b;
}

int64_t Algorithm::integer(std::string_view key, int64_t fallback) const {
    const AlgorithmParam* p = find(key);
    if (!p) return fallback;
    if (p->kind != AlgorithmParam::Kind::Int)
        throw Error(fmt::format("{}: algorithm {}: parameter '{}' is not an integer", where.str(), method, key));
    return p->i;
}

bool rule_matches(const Rule& rule, std::string_view quantizer_name, std::string_view module_class) {
    if (rule.parent_class && *rule.parent_class != module_class) return false;
    if (glob_match(rule.quantizer_name, quantizer_name)) return true;
    const std::string normalized = normalize_fused_experts_name(quantizer_name);
    return normalized != quantizer_name && glob_match(rule.quantizer_name, normalized);
}

Resolution resolve_traced(const Recipe& recipe, std::string_view quantizer_name,
                          std::string_view module_class) {
    Resolution r;
    for (size_t i = 0; i < recipe.rules.size(); ++i) {
        const Rule& rule = recipe.rules[i];
        if (!rule_matches(rule, quantizer_name, module_class)) continue;
        if (rule.cfg) {
            r.attrs = *rule.cfg;  // full replacement: unspecified fields are back at defaults
            r.attrs.enable = rule.enabled_after();
            r.cfg_rule = static_cast<int>(i);
        } else if (rule.enable) {
            r.attrs.enable = *rule.enable;  // toggle only; the attributes stay
        }
        r.last_rule = static_cast<int>(i);
    }
    return r;
}

QuantizerAttributes resolve(const Recipe& recipe, std::string_view quantizer_name,
                            std::string_view module_class) {
    return resolve_traced(recipe, quantizer_name, module_class).attrs;
}

namespace {

std::string who(std::string_view name) {
    return name.empty() ? std::string("quantizer") : fmt::format("quantizer '{}'", name);
}

// Block geometry when the only blocked axis is the last one with a fixed size.
std::optional<int> last_axis_block(const BlockSizes& b) {
    if (b.axes.size() != 1 || b.axes[0].first != -1 || !b.axes[0].second) return std::nullopt;
    return b.axes[0].second;
}

void check_supported(const QuantizerAttributes& q, std::string_view name) {
    if (!q.unsupported.empty()) {
        std::string keys;
        for (const std::string& k : q.unsupported) keys += (keys.empty() ? "" : ", ") + k;
        throw Error(fmt::format("{} sets {}, which microscale does not implement", who(name), keys));
    }
}

bool is_nvfp4_family(const QuantizerAttributes& q) {
    if (!q.num_bits.is(2, 1) || !q.block_sizes) return false;
    const BlockSizes& b = *q.block_sizes;
    return last_axis_block(b) == 16 && b.scale_bits && b.scale_bits->is(4, 3) && !b.has_scale_block_sizes;
}

bool is_fp8_per_tensor(const QuantizerAttributes& q) {
    return q.num_bits.is(4, 3) && !q.block_sizes && !q.axis;
}

std::optional<Format> mx_format(const QuantizerAttributes& q) {
    if (!q.block_sizes) return std::nullopt;
    const BlockSizes& b = *q.block_sizes;
    if (last_axis_block(b) != 32 || !b.scale_bits || !b.scale_bits->is(8, 0) || b.has_scale_block_sizes)
        return std::nullopt;
    if (q.num_bits.is(2, 1)) return Format::MXFP4;
    if (q.num_bits.is(4, 3)) return Format::MXFP8;
    return std::nullopt;
}

}  // namespace

std::optional<Format> weight_format_of(const QuantizerAttributes& q, std::string_view name) {
    if (!q.enable) return std::nullopt;
    check_supported(q, name);
    if (is_nvfp4_family(q)) return Format::NVFP4;
    if (is_fp8_per_tensor(q)) return Format::FP8;
    if (auto mx = mx_format(q)) {
        if (q.block_sizes->type != BlockType::Dynamic)
            throw Error(fmt::format("{}: MX formats are dynamic in ModelOpt; block_sizes.type is static", who(name)));
        return mx;
    }
    std::string hint;
    if (!q.num_bits.is_float)
        hint = " (no rule with cfg matched it, or one set integer bits; ModelOpt's default is an enabled "
               "int8 quantizer, so recipes start with {quantizer_name: '*', enable: false})";
    else if (q.num_bits.is(4, 3) && q.axis)
        hint = " (FP8 per-channel weights are not a format microscale writes)";
    throw Error(fmt::format("{} resolves to {}, which is none of NVFP4 (e2m1, block 16, e4m3 scales), "
                            "FP8 (e4m3 per-tensor), MXFP4 or MXFP8 (block 32, e8m0 scales){}",
                            who(name), describe(q), hint));
}

bool quantizes_activations(const QuantizerAttributes& input) { return input.enable; }

std::optional<Format> activation_format_of(const QuantizerAttributes& q, std::string_view name) {
    if (!q.enable) return std::nullopt;
    check_supported(q, name);
    if (is_fp8_per_tensor(q)) return Format::FP8;
    if (is_nvfp4_family(q)) {
        if (q.block_sizes->type != BlockType::Dynamic)
            throw Error(fmt::format("{}: NVFP4 activations must use dynamic block scales", who(name)));
        return Format::NVFP4;
    }
    if (auto mx = mx_format(q)) return mx;
    throw Error(fmt::format("{} resolves to {}, which is not an activation format microscale supports "
                            "(FP8 per-tensor, NVFP4 dynamic, MX)",
                            who(name), describe(q)));
}

std::optional<Format> linear_format_of(const QuantizerAttributes& weight, const QuantizerAttributes& input,
                                       std::string_view module) {
    const std::string wname = module.empty() ? std::string() : std::string(module) + ".weight_quantizer";
    const std::string iname = module.empty() ? std::string() : std::string(module) + ".input_quantizer";
    const std::optional<Format> w = weight_format_of(weight, wname);
    const std::optional<Format> a = activation_format_of(input, iname);
    if (!w) {
        if (a)
            throw Error(fmt::format("{}: input quantizer enabled ({}) while the weight stays unquantized; "
                                    "activation-only quantization is not supported",
                                    module.empty() ? "layer" : module, describe(input)));
        return std::nullopt;
    }
    if (*w == Format::NVFP4) {
        if (!a) return Format::W4A16_NVFP4;
        if (*a == Format::NVFP4) return Format::NVFP4;
    } else if (!a || *a == *w) {
        return w;
    }
    throw Error(fmt::format("{}: weights {} with inputs {} is not a format microscale writes",
                            module.empty() ? "layer" : module, describe(weight), describe(input)));
}

double effective_bits_of(const QuantizerAttributes& q) {
    if (q.effective_bits) return *q.effective_bits;
    return q.num_bits.total_bits();
}

double autoquant_effective_bits(const Recipe& recipe) {
    if (recipe.effective_bits) return *recipe.effective_bits;
    double best = 16.0;
    bool any = false;
    for (const Rule& r : recipe.rules) {
        if (!r.cfg || !r.enabled_after()) continue;
        const double b = effective_bits_of(*r.cfg);
        best = any ? std::min(best, b) : b;
        any = true;
    }
    return best;
}

format::MseSweep mse_sweep_of(const Algorithm& algo) {
    if (algo.method != "mse" && algo.method != "local_hessian")
        throw Error(fmt::format("{}: algorithm {} has no multiplier sweep", algo.where.str(), algo.method));
    return format::MseSweep{algo.number("start_multiplier", 0.25), algo.number("stop_multiplier", 4.0),
                            algo.number("step_size", 0.1)};
}

std::string describe(const QuantizerAttributes& q) {
    std::string s = q.enable ? "" : "off ";
    s += q.num_bits.str();
    if (q.axis) s += fmt::format(" axis={}", *q.axis);
    if (q.block_sizes) {
        const BlockSizes& b = *q.block_sizes;
        s += " blocks{";
        for (const auto& [axis, size] : b.axes)
            s += fmt::format("{}:{},", axis, size ? std::to_string(*size) : std::string("none"));
        s += b.type == BlockType::Dynamic ? "dynamic" : "static";
        if (b.scale_bits) s += ",scale=" + b.scale_bits->str();
        if (b.four_over_six) s += ",4/6";
        if (b.has_scale_block_sizes) s += ",scale_block_sizes";
        s += "}";
    } else if (!q.axis) {
        s += " per-tensor";
    }
    if (q.dynamic) s += " type=dynamic";
    if (q.use_constant_amax) s += " constant-amax";
    if (q.constant_amax) s += fmt::format(" amax={}", *q.constant_amax);
    if (q.effective_bits) s += fmt::format(" eb={}", *q.effective_bits);
    if (q.calibrator != "max") s += " calib=" + q.calibrator;
    for (const std::string& u : q.unsupported) s += " [" + u + "]";
    return s;
}

std::string describe(const Rule& rule) {
    std::string s = fmt::format("'{}'", rule.quantizer_name);
    if (rule.parent_class) s += fmt::format(" (parent {})", *rule.parent_class);
    if (rule.cfg)
        s += fmt::format(" <- {}{}", rule.enabled_after() ? "" : "off ", describe(*rule.cfg));
    else
        s += rule.enable.value_or(true) ? " on" : " off";
    return s;
}

std::string describe(const Algorithm& algo) {
    std::string s = algo.method;
    if (algo.params.empty()) return s;
    s += " {";
    for (size_t i = 0; i < algo.params.size(); ++i) {
        const AlgorithmParam& p = algo.params[i];
        if (i) s += ", ";
        s += p.key + ": ";
        switch (p.kind) {
            case AlgorithmParam::Kind::Bool: s += p.b ? "true" : "false"; break;
            case AlgorithmParam::Kind::Int: s += std::to_string(p.i); break;
            case AlgorithmParam::Kind::Number: s += fmt::format("{}", p.d); break;
            case AlgorithmParam::Kind::String:
            case AlgorithmParam::Kind::Raw: s += p.s; break;
        }
    }
    return s + "}";
}

Recipe append_rules(Recipe base, const Recipe& extra) {
    base.rules.insert(base.rules.end(), extra.rules.begin(), extra.rules.end());
    base.warnings.insert(base.warnings.end(), extra.warnings.begin(), extra.warnings.end());
    if (!extra.name.empty()) base.name += "+" + extra.name;
    return base;
}

}  // namespace microscale::recipe
