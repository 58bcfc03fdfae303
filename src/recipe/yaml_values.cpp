// Scalar, quantizer-attribute (QuantizerAttributeConfig) and algorithm parsing for recipe YAML.
// Validation follows ModelOpt 0.46's pydantic models where they reject input (spec §6.1).
#include <charconv>
#include <cmath>
#include <fmt/core.h>
#include <set>

#include "microscale/error.h"
#include "recipe/yaml_detail.h"

namespace microscale::recipe::detail {

SourceLoc loc_of(const std::string& file, const YAML::Node& node) {
    SourceLoc loc{file, 0, 0};
    const YAML::Mark m = node.Mark();
    if (!m.is_null()) {
        loc.line = m.line + 1;
        loc.column = m.column + 1;
    }
    return loc;
}

void fail(const std::string& file, const YAML::Node& node, std::string_view key, const std::string& message) {
    const std::string where = loc_of(file, node).str();
    if (key.empty()) throw Error(fmt::format("{}: {}", where, message));
    throw Error(fmt::format("{}: key '{}': {}", where, key, message));
}

void fail_key(const Located& v, const std::string& message) {
    fail(v.file, v.key_node.IsDefined() && !v.key_node.Mark().is_null() ? v.key_node : v.node, v.key, message);
}

std::vector<Located> map_entries(const YAML::Node& map, const std::string& file, std::string_view what) {
    std::vector<Located> out;
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
        if (!it->first.IsScalar()) fail(file, it->first, what, "keys must be scalars");
        std::string key = it->first.Scalar();
        if (!seen.insert(key).second) fail(file, it->first, key, fmt::format("duplicate key in {}", what));
        out.push_back(Located{std::move(key), it->second, file, it->first});
    }
    return out;
}

bool is_plain_scalar(const YAML::Node& node) { return node.IsScalar() && node.Tag() != "!"; }

bool get_bool(const Located& v) {
    bool b = false;
    if (!is_plain_scalar(v.node) || !YAML::convert<bool>::decode(v.node, b))
        fail(v, fmt::format("expected true or false, got '{}'", v.node.IsScalar() ? v.node.Scalar() : "a collection"));
    return b;
}

int64_t get_int(const Located& v) {
    if (is_plain_scalar(v.node)) {
        const std::string& s = v.node.Scalar();
        const char* first = s.data() + (s.size() > 1 && s[0] == '+' ? 1 : 0);
        int64_t x = 0;
        auto [ptr, ec] = std::from_chars(first, s.data() + s.size(), x);
        if (ec == std::errc() && ptr == s.data() + s.size()) return x;
    }
    fail(v, fmt::format("expected an integer, got '{}'", v.node.IsScalar() ? v.node.Scalar() : "a collection"));
}

double get_number(const Located& v) {
    if (is_plain_scalar(v.node)) {
        const std::string& s = v.node.Scalar();
        const char* first = s.data() + (s.size() > 1 && s[0] == '+' ? 1 : 0);
        double x = 0;
        auto [ptr, ec] = std::from_chars(first, s.data() + s.size(), x);
        if (ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(x)) return x;
    }
    fail(v, fmt::format("expected a number, got '{}'", v.node.IsScalar() ? v.node.Scalar() : "a collection"));
}

std::string get_string(const Located& v) {
    if (!v.node.IsScalar()) fail(v, "expected a string");
    return v.node.Scalar();
}

namespace {

Located child(const Located& parent, const YAML::Node& node, std::string key) {
    return Located{std::move(key), node, parent.file};
}

// `e4m3` / `E2M1` (config_loader._parse_exmy), `[E, M]`, or an integer bit count.
NumBits parse_num_bits(const Located& v, bool allow_int) {
    if (v.node.IsSequence()) {
        if (v.node.size() != 2) fail(v, "an [E, M] list needs exactly two integers");
        const int64_t e = get_int(child(v, v.node[0], v.key));
        const int64_t m = get_int(child(v, v.node[1], v.key));
        if (e < 0 || m < 0 || e > 8 || m > 23) fail(v, fmt::format("[{}, {}] is not a float format", e, m));
        return NumBits::fp(static_cast<int>(e), static_cast<int>(m));
    }
    if (!v.node.IsScalar()) fail(v, "expected eXmY, [E, M] or an integer");
    const std::string& s = v.node.Scalar();
    if (s.size() >= 4 && (s[0] == 'e' || s[0] == 'E')) {
        const size_t mpos = s.find_first_of("mM", 1);
        int e = 0, m = 0;
        if (mpos != std::string::npos && mpos > 1 && mpos + 1 < s.size()) {
            auto r1 = std::from_chars(s.data() + 1, s.data() + mpos, e);
            auto r2 = std::from_chars(s.data() + mpos + 1, s.data() + s.size(), m);
            if (r1.ec == std::errc() && r1.ptr == s.data() + mpos && r2.ec == std::errc() &&
                r2.ptr == s.data() + s.size() && e <= 8 && m <= 23)
                return NumBits::fp(e, m);
        }
    }
    if (allow_int && is_plain_scalar(v.node)) {
        const int64_t n = get_int(v);
        if (n < 1 || n > 32) fail(v, fmt::format("num_bits must be a positive bit count, got {}", n));
        return NumBits::integer(static_cast<int>(n));
    }
    fail(v, fmt::format("'{}' is not eXmY (e2m1, e4m3, e5m2, e8m0){}", s, allow_int ? ", [E, M] or an integer" : " or [E, M]"));
}

BlockSizes parse_block_sizes(const Located& v) {
    if (!v.node.IsMap()) fail(v, "block_sizes must be a mapping like {-1: 16, type: dynamic, scale_bits: e4m3}");
    BlockSizes b;
    for (const Located& e : map_entries(v.node, v.file, "block_sizes")) {
        if (e.key == "type") {
            const std::string t = get_string(e);
            if (t == "static") b.type = BlockType::Static;
            else if (t == "dynamic") b.type = BlockType::Dynamic;
            else fail(e, fmt::format("expected static or dynamic, got '{}'", t));
        } else if (e.key == "scale_bits") {
            b.scale_bits = parse_num_bits(e, true);
        } else if (e.key == "scale_block_sizes") {
            b.has_scale_block_sizes = !e.node.IsNull();
        } else if (e.key == "four_over_six") {
            b.four_over_six = get_bool(e);
        } else {
            int axis = 0;
            auto [ptr, ec] = std::from_chars(e.key.data(), e.key.data() + e.key.size(), axis);
            if (ec != std::errc() || ptr != e.key.data() + e.key.size())
                fail_key(e, "unknown block_sizes key (expected an axis such as -1, type, scale_bits, "
                        "scale_block_sizes or four_over_six)");
            std::optional<int> size;
            if (!e.node.IsNull()) {
                const int64_t n = get_int(e);
                if (n < 1 || n > (1 << 20)) fail(e, fmt::format("block size must be positive, got {}", n));
                size = static_cast<int>(n);
            }
            b.axes.emplace_back(axis, size);
        }
    }
    if (b.axes.empty()) fail(v, "block_sizes names no axis (e.g. -1: 16)");
    if (b.type == BlockType::Dynamic && b.axes.size() != 1)
        fail(v, "dynamic block quantization supports one (the last) axis only");
    return b;
}

// (E, M) pairs QuantizerAttributeConfig.validate_num_bits accepts.
bool modelopt_float_ok(const NumBits& n) {
    static constexpr int kOk[][2] = {{4, 3}, {5, 2}, {2, 1}, {1, 2}, {0, 3}, {3, 0}, {3, 2}, {2, 3}};
    for (const auto& p : kOk)
        if (n.is(p[0], p[1])) return true;
    return false;
}

}  // namespace

QuantizerAttributes parse_attributes(const std::vector<Located>& pairs, const Located& where) {
    QuantizerAttributes q;
    const Located* num_bits_at = nullptr;
    const Located* axis_at = nullptr;
    for (const Located& e : pairs) {
        const std::string& k = e.key;
        if (k == "enable") {
            q.enable = get_bool(e);  // the entry's enable overrides it (QuantizerCfgEntry semantics)
        } else if (k == "num_bits") {
            q.num_bits = parse_num_bits(e, true);
            num_bits_at = &e;
        } else if (k == "axis") {
            axis_at = &e;
            if (e.node.IsNull()) {
                q.axis.reset();
            } else if (e.node.IsSequence()) {
                if (e.node.size() != 1) fail(e, "axis tuples with more than one axis are not supported");
                q.axis = static_cast<int>(get_int(child(e, e.node[0], k)));
            } else {
                q.axis = static_cast<int>(get_int(e));
            }
        } else if (k == "block_sizes") {
            if (e.node.IsNull()) q.block_sizes.reset();
            else q.block_sizes = parse_block_sizes(e);
        } else if (k == "type") {
            const std::string t = get_string(e);
            if (t != "static" && t != "dynamic") fail(e, fmt::format("expected static or dynamic, got '{}'", t));
            q.dynamic = t == "dynamic";
        } else if (k == "use_constant_amax") {
            q.use_constant_amax = get_bool(e);
        } else if (k == "constant_amax") {
            if (e.node.IsNull()) {
                q.constant_amax.reset();
            } else {
                const double a = get_number(e);
                if (!(a > 0)) fail(e, "constant_amax must be positive");
                q.constant_amax = a;
            }
        } else if (k == "effective_bits") {
            if (e.node.IsNull()) {
                q.effective_bits.reset();
            } else {
                const double b = get_number(e);
                if (!(b > 0 && b <= 64)) fail(e, "effective_bits must be in (0, 64]");
                q.effective_bits = b;
            }
        } else if (k == "calibrator") {
            const std::string c = get_string(e);
            if (c != "max" && c != "histogram") fail(e, fmt::format("expected max or histogram, got '{}'", c));
            q.calibrator = c;
        } else if (k == "fake_quant") {
            q.fake_quant = get_bool(e);
        } else if (k == "unsigned") {
            q.is_unsigned = get_bool(e);
        } else if (k == "narrow_range") {
            q.narrow_range = get_bool(e);
        } else if (k == "pass_through_bwd") {
            q.pass_through_bwd = get_bool(e);
        } else if (k == "learn_amax") {
            if (get_bool(e)) fail(e, "learn_amax is deprecated in ModelOpt and must be false");
        } else if (k == "trt_high_precision_dtype") {
            q.trt_high_precision_dtype = get_string(e);
        } else if (k == "bias" || k == "backend" || k == "backend_extra_args") {
            if (!e.node.IsNull()) q.unsupported.push_back(k);
        } else if (k == "rotate") {
            bool on = false;
            if (e.node.IsMap()) {
                for (const Located& r : map_entries(e.node, e.file, "rotate"))
                    if (r.key == "enable") on = get_bool(r);
            } else if (!e.node.IsNull()) {
                on = get_bool(e);
            }
            if (on) q.unsupported.push_back("rotate");
        } else {
            fail_key(e, "unknown quantizer attribute (expected num_bits, axis, block_sizes, type, "
                    "use_constant_amax, constant_amax, effective_bits, calibrator, fake_quant, unsigned, "
                    "narrow_range, pass_through_bwd, trt_high_precision_dtype, bias, rotate, backend)");
        }
    }
    if (pairs.size() == 1 && pairs[0].key == "enable" && q.enable)
        fail(pairs[0], "cfg {enable: true} alone is rejected by ModelOpt: drop cfg and use the entry's enable");
    if (q.axis && q.block_sizes) fail(axis_at ? *axis_at : where, "axis must be null when block_sizes is set");
    if (q.num_bits.is_float) {
        const Located& at = num_bits_at ? *num_bits_at : where;
        if (!modelopt_float_ok(q.num_bits))
            fail(at, fmt::format("{} is not a ModelOpt element format (FP8 e4m3/e5m2, FP6 e3m2/e2m3, FP4 e2m1)",
                                 q.num_bits.str()));
        const bool dyn_blocks = q.block_sizes && q.block_sizes->type == BlockType::Dynamic;
        if (!q.num_bits.is(4, 3) && !q.num_bits.is(2, 1) && !dyn_blocks)
            fail(at, fmt::format("{} needs dynamic block quantization in ModelOpt", q.num_bits.str()));
    }
    return q;
}

namespace {

using Kind = AlgorithmParam::Kind;
struct ParamSpec {
    std::string_view key;
    Kind kind;
};
struct MethodSpec {
    std::string_view method;
    std::vector<ParamSpec> params;
};

const std::vector<MethodSpec>& method_table() {
    // Pydantic configs of mq/config.py (spec §5); every method also takes the base layerwise /
    // moe_calib_experts_ratio options.
    static const std::vector<MethodSpec> table = {
        {"max", {{"distributed_sync", Kind::Bool}, {"sync_expert_weight_amax", Kind::Bool},
                 {"shared_states", Kind::Raw}, {"skip_forward_without_activation_calib", Kind::Bool}}},
        {"mse", {{"step_size", Kind::Number}, {"start_multiplier", Kind::Number},
                 {"stop_multiplier", Kind::Number}, {"fp8_scale_sweep", Kind::Bool},
                 {"distributed_sync", Kind::Bool}, {"shared_states", Kind::Raw}}},
        {"local_hessian", {{"step_size", Kind::Number}, {"start_multiplier", Kind::Number},
                           {"stop_multiplier", Kind::Number}, {"fp8_scale_sweep", Kind::Bool},
                           {"block_size", Kind::Int}, {"debug", Kind::Bool},
                           {"distributed_sync", Kind::Bool}, {"shared_states", Kind::Raw}}},
        // act_order is microscale's (ModelOpt's gptq has none, spec §5.5).
        {"gptq", {{"perc_damp", Kind::Number}, {"block_size", Kind::Int}, {"fused", Kind::Bool}, {"act_order", Kind::Bool}}},
        {"awq_lite", {{"alpha_step", Kind::Number}, {"debug", Kind::Bool}}},
        {"awq_clip", {{"max_co_batch_size", Kind::Int}, {"max_tokens_per_batch", Kind::Int},
                      {"min_clip_ratio", Kind::Number}, {"shrink_step", Kind::Number}, {"debug", Kind::Bool}}},
        {"awq_full", {{"alpha_step", Kind::Number}, {"max_co_batch_size", Kind::Int},
                      {"max_tokens_per_batch", Kind::Int}, {"min_clip_ratio", Kind::Number},
                      {"shrink_step", Kind::Number}, {"debug", Kind::Bool}}},
        {"smoothquant", {{"alpha", Kind::Number}}},
        {"svdquant", {{"lowrank", Kind::Int}}},
    };
    return table;
}

const MethodSpec* find_method(std::string_view name) {
    for (const MethodSpec& m : method_table())
        if (m.method == name) return &m;
    return nullptr;
}

Algorithm make_algorithm(const Located& v, const std::string& method) {
    const MethodSpec* spec = find_method(method);
    if (!spec) {
        std::string known;
        for (const MethodSpec& m : method_table()) known += (known.empty() ? "" : ", ") + std::string(m.method);
        fail(v, fmt::format("unknown calibration algorithm '{}' (known: {})", method, known));
    }
    Algorithm a;
    a.method = method;
    a.where = loc_of(v.file, v.node);
    return a;
}

void add_param(Algorithm& a, const Located& e) {
    static const ParamSpec kBase[] = {{"layerwise", Kind::Raw}, {"moe_calib_experts_ratio", Kind::Number}};
    const MethodSpec* spec = find_method(a.method);
    const ParamSpec* ps = nullptr;
    for (const ParamSpec& p : spec->params)
        if (p.key == e.key) ps = &p;
    for (const ParamSpec& p : kBase)
        if (p.key == e.key) ps = &p;
    if (!ps) {
        std::string known;
        for (const ParamSpec& p : spec->params) known += (known.empty() ? "" : ", ") + std::string(p.key);
        fail_key(e, fmt::format("unknown parameter of algorithm {} (known: {}{}layerwise, moe_calib_experts_ratio)",
                            a.method, known, known.empty() ? "" : ", "));
    }
    AlgorithmParam p;
    p.key = e.key;
    p.kind = ps->kind;
    switch (ps->kind) {
        case Kind::Bool: p.b = get_bool(e); break;
        case Kind::Int: p.i = get_int(e); p.d = static_cast<double>(p.i); break;
        case Kind::Number: p.d = get_number(e); break;
        case Kind::String: p.s = get_string(e); break;
        case Kind::Raw: {
            YAML::Emitter out;
            out << YAML::Flow << e.node;
            p.s = out.c_str();
            break;
        }
    }
    a.params.push_back(std::move(p));
}

void validate(const Algorithm& a, const Located& v) {
    auto positive = [&](std::string_view key) {
        if (const AlgorithmParam* p = a.find(key); p && !(p->d > 0))
            fail(v, fmt::format("algorithm {}: {} must be positive", a.method, key));
    };
    if (a.method == "mse" || a.method == "local_hessian") {
        positive("step_size");
        positive("start_multiplier");
        positive("stop_multiplier");
        const double start = a.number("start_multiplier", 0.25), stop = a.number("stop_multiplier", 4.0);
        if (stop < start) fail(v, fmt::format("algorithm {}: stop_multiplier {} < start_multiplier {}", a.method, stop, start));
        if ((stop - start) / a.number("step_size", 0.1) > 10000)
            fail(v, fmt::format("algorithm {}: more than 10000 multiplier candidates", a.method));
    }
    if (a.method == "gptq" || a.method == "local_hessian") positive("block_size");
    if (a.method == "gptq")
        if (const AlgorithmParam* p = a.find("perc_damp"); p && !(p->d >= 0 && p->d < 1))
            fail(v, "algorithm gptq: perc_damp must be in [0, 1)");
    if (a.method == "svdquant") positive("lowrank");
    for (std::string_view key : {"alpha_step", "min_clip_ratio", "shrink_step"})
        if (const AlgorithmParam* p = a.find(key); p && !(p->d > 0 && p->d <= 1))
            fail(v, fmt::format("algorithm {}: {} must be in (0, 1]", a.method, key));
}

Algorithm parse_one(const Located& v) {
    if (v.node.IsScalar()) return make_algorithm(v, get_string(v));
    if (!v.node.IsMap()) fail(v, "expected an algorithm name or {method: ..., ...}");
    const std::vector<Located> entries = map_entries(v.node, v.file, "algorithm");
    const Located* method = nullptr;
    for (const Located& e : entries)
        if (e.key == "method") method = &e;
    if (!method) fail(v, "algorithm mapping needs a 'method' key");
    Algorithm a = make_algorithm(*method, get_string(*method));
    for (const Located& e : entries)
        if (e.key != "method") add_param(a, e);
    validate(a, v);
    return a;
}

}  // namespace

std::vector<Algorithm> parse_algorithms(const Located& v) {
    std::vector<Algorithm> out;
    if (v.node.IsNull()) return out;
    if (v.node.IsSequence()) {
        for (const YAML::Node& item : v.node) {
            Located e{v.key, item, v.file};
            if (item.IsNull()) fail(e, "null inside an algorithm list");
            out.push_back(parse_one(e));
        }
        return out;
    }
    out.push_back(parse_one(v));
    return out;
}

}  // namespace microscale::recipe::detail
