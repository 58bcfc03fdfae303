// config.json -> ForwardConfig. Defaults are the transformers 5.17 class defaults of each family
// (they only matter for hand-written configs: save_pretrained writes every key).
#include "model/forward/config.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "microscale/error.h"

namespace microscale::model {

using nlohmann::json;

namespace {

struct FamilyDefaults {
    const char* model_type;
    double rms_norm_eps;
    int64_t max_position_embeddings;
    int64_t head_dim;        // 0: hidden / heads
    bool qk_norm;
    bool fused;
    bool windowed_by_layer;  // qwen2/qwen3: use_sliding_window + max_window_layers / layer_types
    bool has_window;         // mistral/phi3: sliding_window (non-null) applies to every layer
};

constexpr std::array<FamilyDefaults, 5> kFamilies{{
    {"llama", 1e-6, 2048, 0, false, false, false, false},
    {"mistral", 1e-6, 4096 * 32, 0, false, false, false, true},
    {"phi3", 1e-5, 4096, 0, false, true, false, true},
    {"qwen2", 1e-6, 32768, 0, false, false, true, false},
    {"qwen3", 1e-6, 32768, 128, true, false, true, false},
}};

bool present(const json& obj, const char* key) {
    auto it = obj.find(key);
    return it != obj.end() && !it->is_null();
}

std::string where(const std::string& path, const std::string& scope, const char* key) {
    return path + ": '" + scope + key + "'";
}

double get_double(const json& obj, const char* key, std::optional<double> fallback,
                  const std::string& path, const std::string& scope = "") {
    if (!present(obj, key)) {
        if (fallback) return *fallback;
        throw Error(where(path, scope, key) + " is missing");
    }
    const json& v = obj.at(key);
    if (!v.is_number()) throw Error(where(path, scope, key) + " must be a number, got " + v.dump());
    const double x = v.get<double>();
    if (!std::isfinite(x)) throw Error(where(path, scope, key) + " is not finite");
    return x;
}

std::optional<double> get_optional_double(const json& obj, const char* key, const std::string& path,
                                          const std::string& scope) {
    if (!present(obj, key)) return std::nullopt;
    return get_double(obj, key, std::nullopt, path, scope);
}

int64_t get_int(const json& obj, const char* key, std::optional<int64_t> fallback,
                const std::string& path, int64_t min_value = 1, const std::string& scope = "") {
    if (!present(obj, key)) {
        if (fallback) return *fallback;
        throw Error(where(path, scope, key) + " is missing");
    }
    const json& v = obj.at(key);
    // Integral floats (e.g. 8192.0) appear in real configs.
    if (!v.is_number() || (v.is_number_float() && std::floor(v.get<double>()) != v.get<double>()))
        throw Error(where(path, scope, key) + " must be an integer, got " + v.dump());
    const double x = v.get<double>();
    if (x < static_cast<double>(min_value) || x >= 2147483648.0)
        throw Error(where(path, scope, key) + " = " + v.dump() + " is out of range [" +
                    std::to_string(min_value) + ", 2^31)");
    return static_cast<int64_t>(x);
}

bool get_bool(const json& obj, const char* key, bool fallback, const std::string& path) {
    if (!present(obj, key)) return fallback;
    const json& v = obj.at(key);
    if (!v.is_boolean()) throw Error(where(path, "", key) + " must be true or false, got " + v.dump());
    return v.get<bool>();
}

const FamilyDefaults& family(const std::string& model_type, const std::string& path) {
    for (const FamilyDefaults& f : kFamilies)
        if (model_type == f.model_type) return f;
    std::string list;
    for (const std::string& t : forward_model_types()) list += (list.empty() ? "" : ", ") + t;
    throw Error(path + ": model_type '" + model_type +
                "' has no CPU forward pass; supported: " + list);
}

std::vector<int64_t> sliding_windows(const json& c, const FamilyDefaults& fam, int64_t layers,
                                     const std::string& path) {
    std::vector<int64_t> w(static_cast<size_t>(layers), 0);
    auto window = [&] { return get_int(c, "sliding_window", std::nullopt, path); };
    if (fam.has_window) {
        if (present(c, "sliding_window")) std::fill(w.begin(), w.end(), window());
        return w;
    }
    if (!fam.windowed_by_layer) return w;  // llama ignores sliding_window
    if (present(c, "layer_types")) {
        const json& lt = c.at("layer_types");
        if (!lt.is_array() || static_cast<int64_t>(lt.size()) != layers)
            throw Error(where(path, "", "layer_types") + " must be a list of num_hidden_layers=" +
                        std::to_string(layers) + " strings");
        for (int64_t i = 0; i < layers; ++i) {
            const json& t = lt[static_cast<size_t>(i)];
            if (t == "sliding_attention") w[static_cast<size_t>(i)] = window();
            else if (t != "full_attention")
                throw Error(where(path, "", "layer_types") + "[" + std::to_string(i) + "] = " +
                            t.dump() + " is not full_attention or sliding_attention");
        }
        return w;
    }
    if (get_bool(c, "use_sliding_window", false, path)) {
        const int64_t from = get_int(c, "max_window_layers", layers, path, 0);
        for (int64_t i = from; i < layers; ++i) w[static_cast<size_t>(i)] = window();
    }
    return w;
}

}  // namespace

std::vector<std::string> forward_model_types() {
    std::vector<std::string> out;
    for (const FamilyDefaults& f : kFamilies) out.emplace_back(f.model_type);
    std::sort(out.begin(), out.end());
    return out;
}

RopeConfig parse_rope_config(const json& c, const std::string& path) {
    // transformers 5 writes rope_parameters; hub configs carry rope_theta + rope_scaling.
    json rp = json::object();
    std::string scope;
    if (present(c, "rope_parameters")) {
        rp = c.at("rope_parameters");
        scope = "rope_parameters.";
    } else if (present(c, "rope_scaling")) {
        rp = c.at("rope_scaling");
        scope = "rope_scaling.";
    }
    if (!rp.is_object())
        throw Error(path + ": '" + scope.substr(0, scope.size() - 1) + "' must be an object");
    for (auto it = rp.begin(); it != rp.end(); ++it)
        if (it->is_object())
            throw Error(path + ": '" + scope + it.key() +
                        "': per-layer-type RoPE parameters are not supported");

    RopeConfig r;
    if (present(rp, "rope_theta")) r.theta = get_double(rp, "rope_theta", std::nullopt, path, scope);
    else r.theta = get_double(c, "rope_theta", 10000.0, path);
    if (!(r.theta > 1.0)) throw Error(path + ": rope_theta must be > 1");

    std::string type = "default";
    const char* type_key = present(rp, "rope_type") ? "rope_type" : "type";
    if (present(rp, type_key)) {
        if (!rp.at(type_key).is_string())
            throw Error(where(path, scope, type_key) + " must be a string");
        type = rp.at(type_key).get<std::string>();
    }
    auto factor = [&](std::optional<double> fallback) {
        const double f = get_double(rp, "factor", fallback, path, scope);
        if (!(f > 0.0)) throw Error(where(path, scope, "factor") + " must be > 0");
        return f;
    };
    if (type == "default") {
        r.type = RopeType::DEFAULT;
    } else if (type == "linear") {
        r.type = RopeType::LINEAR;
        r.factor = factor(std::nullopt);
    } else if (type == "dynamic") {
        r.type = RopeType::DYNAMIC;
        r.factor = factor(std::nullopt);
    } else if (type == "llama3") {
        r.type = RopeType::LLAMA3;
        r.factor = factor(std::nullopt);
        r.low_freq_factor = get_double(rp, "low_freq_factor", std::nullopt, path, scope);
        r.high_freq_factor = get_double(rp, "high_freq_factor", std::nullopt, path, scope);
        r.original_max_position_embeddings =
            get_int(rp, "original_max_position_embeddings", std::nullopt, path, 1, scope);
        if (!(r.high_freq_factor > r.low_freq_factor))
            throw Error(path + ": '" + scope + "high_freq_factor' must exceed low_freq_factor");
    } else if (type == "yarn") {
        r.type = RopeType::YARN;
        r.original_max_position_embeddings =
            get_int(rp, "original_max_position_embeddings", 0, path, 1, scope);
        r.factor = present(rp, "factor") ? factor(std::nullopt) : -1.0;  // -1: max_pos / O, later
        r.beta_fast = get_double(rp, "beta_fast", 32.0, path, scope);
        r.beta_slow = get_double(rp, "beta_slow", 1.0, path, scope);
        r.mscale = get_optional_double(rp, "mscale", path, scope);
        r.mscale_all_dim = get_optional_double(rp, "mscale_all_dim", path, scope);
        r.attention_factor = get_optional_double(rp, "attention_factor", path, scope);
        if (present(rp, "truncate")) {
            if (!rp.at("truncate").is_boolean())
                throw Error(where(path, scope, "truncate") + " must be true or false");
            r.truncate = rp.at("truncate").get<bool>();
        }
    } else if (type == "longrope" || type == "su") {
        throw Error(where(path, scope, type_key) + " = \"" + type +
                    "\": longrope is not supported by the CPU forward pass yet");
    } else {
        throw Error(where(path, scope, type_key) + " = \"" + type +
                    "\" is unknown; supported: default, linear, dynamic, llama3, yarn");
    }
    return r;
}

ForwardConfig parse_forward_config(const json& c, const std::string& path) {
    if (!c.is_object()) throw Error(path + ": config is not a JSON object");
    if (!present(c, "model_type") || !c.at("model_type").is_string())
        throw Error(path + ": 'model_type' is missing or not a string");
    ForwardConfig f;
    f.model_type = c.at("model_type").get<std::string>();
    const FamilyDefaults& fam = family(f.model_type, path);

    f.hidden = get_int(c, "hidden_size", std::nullopt, path);
    f.intermediate = get_int(c, "intermediate_size", std::nullopt, path);
    f.layers = get_int(c, "num_hidden_layers", std::nullopt, path, 0);
    f.heads = get_int(c, "num_attention_heads", std::nullopt, path);
    f.kv_heads = get_int(c, "num_key_value_heads", f.heads, path);
    f.vocab = get_int(c, "vocab_size", std::nullopt, path);
    f.max_position_embeddings =
        get_int(c, "max_position_embeddings", fam.max_position_embeddings, path);
    if (f.heads % f.kv_heads != 0)
        throw Error(path + ": 'num_attention_heads' = " + std::to_string(f.heads) +
                    " is not a multiple of 'num_key_value_heads' = " + std::to_string(f.kv_heads));
    std::optional<int64_t> d_default;
    if (fam.head_dim > 0) d_default = fam.head_dim;
    else if (f.hidden % f.heads == 0) d_default = f.hidden / f.heads;
    f.head_dim = get_int(c, "head_dim", d_default, path);
    f.rms_norm_eps = static_cast<float>(get_double(c, "rms_norm_eps", fam.rms_norm_eps, path));
    if (!(f.rms_norm_eps > 0.0f)) throw Error(where(path, "", "rms_norm_eps") + " must be > 0");
    f.tie_word_embeddings = get_bool(c, "tie_word_embeddings", false, path);
    f.qk_norm = fam.qk_norm;
    f.fused_projections = fam.fused;
    if (present(c, "hidden_act") && c.at("hidden_act") != "silu")
        throw Error(where(path, "", "hidden_act") + " = " + c.at("hidden_act").dump() +
                    ": only silu (SwiGLU) is supported");

    f.rope = parse_rope_config(c, path);
    if (f.rope.type == RopeType::YARN) {
        RopeConfig& r = f.rope;
        if (r.original_max_position_embeddings == 0)
            r.original_max_position_embeddings = f.max_position_embeddings;
        if (r.factor < 0.0)  // factor absent: the context extension ratio
            r.factor = static_cast<double>(f.max_position_embeddings) /
                       static_cast<double>(r.original_max_position_embeddings);
    }
    // partial_rotary_factor: in rope_parameters (5.x) or at top level (phi3, older configs).
    double prf = 1.0;
    const char* scope_key = present(c, "rope_parameters") ? "rope_parameters" : nullptr;
    if (scope_key && present(c.at(scope_key), "partial_rotary_factor"))
        prf = get_double(c.at(scope_key), "partial_rotary_factor", std::nullopt, path,
                         "rope_parameters.");
    else prf = get_double(c, "partial_rotary_factor", 1.0, path);
    if (!(prf > 0.0 && prf <= 1.0))
        throw Error(path + ": 'partial_rotary_factor' must be in (0, 1]");
    f.rotary_dim = static_cast<int64_t>(static_cast<double>(f.head_dim) * prf);
    if (f.rotary_dim < 2 || f.rotary_dim % 2 != 0)
        throw Error(path + ": rotary dim int(head_dim * partial_rotary_factor) = " +
                    std::to_string(f.rotary_dim) + " must be even and >= 2");

    f.sliding_window = sliding_windows(c, fam, f.layers, path);
    return f;
}

}  // namespace microscale::model
