// The generic fallback for a model_type without an architecture file. It knows no roles, only
// what ModelOpt itself would find by looking at module names:
//   * every 2-D float `<m>.weight` outside embeddings, norms and lm_head is a linear
//     (LINEAR_OTHER, "nn.Linear");
//   * embeddings (`*embed*`, wte, wpe) and the output head (lm_head, embed_out, output) by name;
//   * fused groups by SHARED_PATTERNS, full-matched per module, grouped by parent
//     (nvfp4-modelopt.md §4.4);
//   * attention modules: parents holding both k_proj and v_proj linears.
// Everything else (norms, biases, buffers, 1-D / 3-D tensors) is passthrough.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <regex>

#include "microscale/error.h"
#include "model/arch.h"

namespace microscale::model {

namespace {

struct SharedPattern {
    const char* kind;
    std::regex re;
    std::vector<std::string> members;  // leaf names, in member order
};

const std::vector<SharedPattern>& shared_patterns() {
    static const std::vector<SharedPattern> kPatterns = {
        {"qkv", std::regex(R"((?:(.*)\.)?(q_proj|k_proj|v_proj))"), {"q_proj", "k_proj", "v_proj"}},
        {"gate_up", std::regex(R"((?:(.*)\.)?(gate_proj|up_proj))"), {"gate_proj", "up_proj"}},
        {"w1_w3", std::regex(R"((?:(.*)\.)?(w1|w3))"), {"w1", "w3"}},
    };
    return kPatterns;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view last_component(std::string_view module) {
    const size_t dot = module.rfind('.');
    return dot == std::string_view::npos ? module : module.substr(dot + 1);
}

bool is_lm_head(std::string_view module) {
    return last_component(module) == "lm_head" || module == "embed_out" || module == "output";
}

bool is_embedding(std::string_view module) {
    const std::string_view last = last_component(module);
    return last.find("embed") != std::string_view::npos || last == "wte" || last == "wpe";
}

bool is_norm(std::string_view module) {
    const std::string_view last = last_component(module);
    if (last.find("norm") != std::string_view::npos) return true;
    // ln_f, ln_1, ln1, ln (GPT-2 / GPT-J style)
    return last.substr(0, 2) == "ln" &&
           (last.size() == 2 || last[2] == '_' || std::isdigit(static_cast<unsigned char>(last[2])));
}

// The first all-digit component: "model.layers.7.mlp.fc1" -> 7.
int layer_index(std::string_view module) {
    size_t start = 0;
    while (start <= module.size()) {
        size_t end = module.find('.', start);
        if (end == std::string_view::npos) end = module.size();
        const std::string_view c = module.substr(start, end - start);
        if (!c.empty() && c.size() <= 9 &&
            std::all_of(c.begin(), c.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); }))
            return std::stoi(std::string(c));
        start = end + 1;
    }
    return -1;
}

// The HF attention class, guessed from the CausalLM class ("OlmoForCausalLM" -> "OlmoAttention").
std::string attention_class_guess(const nlohmann::json& config) {
    auto a = config.find("architectures");
    if (a != config.end() && a->is_array() && !a->empty() && (*a)[0].is_string()) {
        std::string s = (*a)[0].get<std::string>();
        for (const char* suffix : {"ForCausalLM", "ForConditionalGeneration", "Model"})
            if (ends_with(s, suffix) && s.size() > std::string_view(suffix).size())
                return s.substr(0, s.size() - std::string_view(suffix).size()) + "Attention";
    }
    return "Attention";
}

bool is_causal_lm(const nlohmann::json& config) {
    auto a = config.find("architectures");
    if (a == config.end() || !a->is_array()) return false;
    for (const auto& s : *a)
        if (s.is_string() && ends_with(s.get_ref<const std::string&>(), "ForCausalLM")) return true;
    return false;
}

}  // namespace

ModelLayout build_generic(const ArchInput& in) {
    const size_t n_tensors = in.ckpt.tensors().size();
    LayoutBuilder b(in, "generic", "generic fallback for model_type '" + in.model_type + "'");
    int embed_tokens = -1;
    bool have_head = false;
    size_t n_other = 0;
    for (const io::TensorRef& ref : in.ckpt.tensors()) {
        const io::TensorInfo& t = *ref.info;
        const bool linear_like = ends_with(t.name, ".weight") && t.shape.size() == 2 &&
                                 dtype_is_float(t.dtype) && t.shape[0] > 0 && t.shape[1] > 0;
        if (!linear_like) {
            b.add_passthrough_any(t);
            continue;
        }
        const std::string module = t.name.substr(0, t.name.size() - 7);
        if (is_lm_head(module)) {
            b.add_linear(module, Role::LM_HEAD, "nn.Linear", -1, t.shape[0], t.shape[1]);
            have_head = true;
        } else if (is_embedding(module)) {
            const int e = b.add_linear(module, Role::EMBED, "nn.Embedding", layer_index(module),
                                       t.shape[0], t.shape[1]);
            if (ends_with(module, "embed_tokens") && embed_tokens < 0) embed_tokens = e;
        } else if (is_norm(module)) {
            b.add_passthrough_any(t);
        } else {
            b.add_linear(module, Role::LINEAR_OTHER, "nn.Linear", layer_index(module), t.shape[0],
                         t.shape[1]);
            ++n_other;
        }
    }
    if (n_other == 0) {
        std::string types;
        for (const auto& s : supported_model_types()) types += (types.empty() ? "" : ", ") + s;
        throw Error(in.config_path + ": unknown model_type '" + in.model_type +
                    "' and the generic fallback found no linear weights (2-D float *.weight outside "
                    "embeddings, norms and lm_head) among the " + std::to_string(n_tensors) +
                    " tensors of " + in.ckpt.dir().string() + "; supported model types: " + types);
    }
    // A tied CausalLM head is a module (with quantizer attributes) even though no tensor exists.
    if (!have_head && embed_tokens >= 0 && is_causal_lm(in.config) &&
        config_bool(in, "tie_word_embeddings", true)) {
        const LinearModule e = b.layout().linears[static_cast<size_t>(embed_tokens)];
        b.add_tied_linear("lm_head", Role::LM_HEAD, "nn.Linear", -1, e.out_features, e.in_features);
    }

    // Fused groups: (pattern, parent) -> member per leaf slot.
    const auto& pats = shared_patterns();
    std::map<std::pair<size_t, std::string>, std::vector<int>> found;
    const auto& linears = b.layout().linears;
    for (size_t i = 0; i < linears.size(); ++i) {
        if (linears[i].role != Role::LINEAR_OTHER) continue;
        for (size_t p = 0; p < pats.size(); ++p) {
            std::smatch m;
            if (!std::regex_match(linears[i].name, m, pats[p].re)) continue;
            auto& slots = found[{p, m[1].matched ? m[1].str() : std::string()}];
            slots.resize(pats[p].members.size(), -1);
            const auto slot = std::find(pats[p].members.begin(), pats[p].members.end(), m[2].str());
            slots[static_cast<size_t>(slot - pats[p].members.begin())] = static_cast<int>(i);
            break;
        }
    }
    // Groups in model order (the map orders parents as strings: "layers.10" < "layers.2").
    std::vector<std::pair<int, const std::pair<size_t, std::string>*>> order;
    for (const auto& [key, slots] : found) {
        int first = INT32_MAX;
        for (int s : slots)
            if (s >= 0) first = std::min(first, s);
        order.emplace_back(first, &key);
    }
    std::sort(order.begin(), order.end());
    const std::string attn_class = attention_class_guess(in.config);
    for (const auto& [first, keyp] : order) {
        const auto& key = *keyp;
        const std::vector<int>& slots = found.at(key);
        std::vector<int> members;
        for (int s : slots)
            if (s >= 0) members.push_back(s);
        if (members.size() < 2) continue;  // nothing to share with
        b.add_group(pats[key.first].kind, members);
        if (key.first == 0 && !key.second.empty() && slots[1] >= 0 && slots[2] >= 0)
            b.add_attention(key.second, attn_class, b.layout().linears[static_cast<size_t>(slots[1])].layer,
                            slots[1], slots[2]);
    }
    ModelLayout layout = b.finish([](const io::TensorInfo&) { return false; });
    layout.generic_fallback = true;
    return layout;
}

}  // namespace microscale::model
