#include "export/inspect.h"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>

#include "io/checkpoint.h"
#include "microscale/error.h"

namespace microscale::exporter {

using ordered_json = nlohmann::ordered_json;

namespace {

constexpr uint64_t kMaxJsonBytes = 64ull << 20;

std::string_view last_component(std::string_view name) {
    const size_t dot = name.rfind('.');
    return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

uint64_t numel(const std::vector<int64_t>& shape) {
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);
    return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

double mib(uint64_t bytes) { return double(bytes) / (1024.0 * 1024.0); }

bool is_e8m0_dtype(DType t) { return t == DType::U8 || t == DType::F8_E8M0; }

// The format a module's JSON entry names (ModelOpt), matched by exact name, then by parent
// prefix (quantized_layers may be keyed by a fused-experts container, spec §4.2).
std::optional<Format> format_from_algo(std::string_view algo) {
    for (const FormatInfo& f : format_table())
        if (!f.quant_algo.empty() && f.quant_algo == algo) return f.id;
    return std::nullopt;
}

struct JsonView {
    std::optional<nlohmann::json> config, hf_quant;
    std::string method;  // quantization_config.quant_method, "" when absent
    const nlohmann::json* quantization = nullptr;  // hf_quant_config["quantization"]

    std::optional<Format> modelopt_format(const std::string& module) const {
        if (!quantization || !quantization->is_object()) return std::nullopt;
        const auto algo_it = quantization->find("quant_algo");
        if (algo_it == quantization->end() || !algo_it->is_string()) return std::nullopt;
        const std::string algo = algo_it->get<std::string>();
        if (algo != "MIXED_PRECISION") return format_from_algo(algo);
        const auto ql = quantization->find("quantized_layers");
        if (ql == quantization->end() || !ql->is_object()) return std::nullopt;
        std::string name = module;
        while (true) {
            const auto it = ql->find(name);
            if (it != ql->end() && it->is_object() && it->contains("quant_algo") && (*it)["quant_algo"].is_string())
                return format_from_algo((*it)["quant_algo"].get<std::string>());
            const size_t dot = name.rfind('.');
            if (dot == std::string::npos) return std::nullopt;
            name.resize(dot);
        }
    }
};

struct ModuleTensors {
    std::string name;
    std::map<TensorRole, const io::TensorInfo*> by_role;
    std::vector<const io::TensorInfo*> all;
};

}  // namespace

TensorName split_tensor_name(std::string_view tensor) {
    const size_t dot = tensor.rfind('.');
    if (dot == std::string_view::npos) return {"", TensorRole::OTHER};
    static const std::array<std::pair<std::string_view, TensorRole>, 11> kRoles = {{
        {"weight", TensorRole::WEIGHT},
        {"weight_packed", TensorRole::WEIGHT_PACKED},
        {"weight_scale", TensorRole::WEIGHT_SCALE},
        {"weight_scale_2", TensorRole::WEIGHT_SCALE_2},
        {"weight_global_scale", TensorRole::WEIGHT_GLOBAL_SCALE},
        {"input_scale", TensorRole::INPUT_SCALE},
        {"input_global_scale", TensorRole::INPUT_GLOBAL_SCALE},
        {"weight_zero_point", TensorRole::WEIGHT_ZERO_POINT},
        {"k_scale", TensorRole::K_SCALE},
        {"v_scale", TensorRole::V_SCALE},
        {"pre_quant_scale", TensorRole::PRE_QUANT_SCALE},
    }};
    const std::string_view leaf = tensor.substr(dot + 1);
    for (const auto& [suffix, role] : kRoles)
        if (leaf == suffix) return {std::string(tensor.substr(0, dot)), role};
    return {std::string(tensor.substr(0, dot)), TensorRole::OTHER};
}

std::string_view layer_kind_name(LayerKind k) {
    static constexpr std::array<std::string_view, static_cast<size_t>(LayerKind::COUNT)> kNames = {
        "attn.q", "attn.k", "attn.v", "attn.qkv", "attn.o", "mlp.gate", "mlp.up", "mlp.gate_up",
        "mlp.down", "experts", "other", "lm_head", "embed"};
    return kNames.at(static_cast<size_t>(k));
}

LayerKind layer_kind_of(std::string_view module) {
    const std::string_view leaf = last_component(module);
    if (leaf == "lm_head" || module == "output") return LayerKind::LM_HEAD;
    if (leaf == "embed_tokens" || leaf == "wte" || leaf == "wpe" || leaf == "word_embeddings" ||
        leaf == "tok_embeddings" || leaf == "embeddings" || leaf == "embed_in")
        return LayerKind::EMBED;
    // Routed experts, per expert (".experts.7.up_proj") or as a 3-D container parameter.
    if (module.find(".experts.") != std::string_view::npos || module.ends_with(".experts"))
        return LayerKind::EXPERTS;
    if (leaf == "q_proj") return LayerKind::ATTN_Q;
    if (leaf == "k_proj") return LayerKind::ATTN_K;
    if (leaf == "v_proj") return LayerKind::ATTN_V;
    if (leaf == "qkv_proj" || leaf == "W_pack" || leaf == "query_key_value") return LayerKind::ATTN_QKV;
    if (leaf == "o_proj" || (leaf == "dense" && module.find("attention") != std::string_view::npos))
        return LayerKind::ATTN_O;
    if (leaf == "gate_proj" || leaf == "w1") return LayerKind::MLP_GATE;
    if (leaf == "up_proj" || leaf == "w3") return LayerKind::MLP_UP;
    if (leaf == "gate_up_proj") return LayerKind::MLP_GATE_UP;
    if (leaf == "down_proj" || leaf == "w2") return LayerKind::MLP_DOWN;
    return LayerKind::OTHER;
}

std::optional<std::string> fused_group_key(std::string_view module) {
    // A full match of `(?:(.*)\.)?(?:a|b)` is "the last component is a or b"; the group is the
    // parent (possibly empty), so q/k/v of one attention block share a key.
    const std::string_view leaf = last_component(module);
    const std::string parent(module.substr(0, module.size() > leaf.size() ? module.size() - leaf.size() - 1 : 0));
    if (leaf == "q_proj" || leaf == "k_proj" || leaf == "v_proj") return parent + "|qkv";
    if (leaf == "gate_proj" || leaf == "up_proj") return parent + "|gate_up";
    if (leaf == "w1" || leaf == "w3") return parent + "|w1_w3";
    return std::nullopt;
}

std::optional<nlohmann::json> read_json_file(const std::filesystem::path& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec || size > kMaxJsonBytes) throw Error(path.string() + ": unreadable or larger than 64 MiB");
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    try {
        return nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::exception& e) {
        throw Error(path.string() + ": invalid JSON: " + e.what());
    }
}

InspectReport inspect_checkpoint(const std::filesystem::path& dir, bool with_tensors) {
    InspectReport r;
    r.dir = dir;
    JsonView js;
    js.config = read_json_file(dir / "config.json");
    js.hf_quant = read_json_file(dir / "hf_quant_config.json");
    const nlohmann::json* qc = nullptr;
    if (js.config && js.config->is_object()) {
        if (js.config->contains("model_type") && (*js.config)["model_type"].is_string())
            r.model_type = (*js.config)["model_type"].get<std::string>();
        const auto it = js.config->find("quantization_config");
        if (it != js.config->end() && it->is_object()) {
            qc = &*it;
            if (qc->contains("quant_method") && (*qc)["quant_method"].is_string())
                js.method = (*qc)["quant_method"].get<std::string>();
        }
    }
    if (js.hf_quant && js.hf_quant->is_object() && js.hf_quant->contains("quantization"))
        js.quantization = &(*js.hf_quant)["quantization"];

    const io::Checkpoint ckpt = io::Checkpoint::open(dir);
    r.shards = ckpt.shard_count();
    r.tensor_count = ckpt.tensors().size();

    // Tensors by module, in checkpoint order.
    std::vector<ModuleTensors> mods;
    std::unordered_map<std::string, size_t> mod_index;
    bool any_packed = false, any_scale = false;
    for (const io::TensorRef& t : ckpt.tensors()) {
        const io::TensorInfo& info = *t.info;
        r.total_bytes += info.nbytes();
        if (with_tensors) r.tensors.push_back({info.name, info.dtype, info.shape, info.nbytes()});
        TensorName tn = split_tensor_name(info.name);
        // A 3-D expert parameter without a ".weight" leaf (transformers-5 fused experts) is a
        // weight module of its own.
        if (tn.role == TensorRole::OTHER && info.shape.size() == 3 && dtype_is_float(info.dtype) &&
            layer_kind_of(tn.module) == LayerKind::EXPERTS)
            tn = {info.name, TensorRole::WEIGHT};
        any_packed |= tn.role == TensorRole::WEIGHT_PACKED;
        any_scale |= tn.role == TensorRole::WEIGHT_SCALE;
        if (tn.role == TensorRole::K_SCALE || tn.role == TensorRole::V_SCALE) ++r.kv_scale_tensors;
        auto [it, fresh] = mod_index.try_emplace(tn.module, mods.size());
        if (fresh) mods.push_back({tn.module, {}, {}});
        ModuleTensors& m = mods[it->second];
        m.all.push_back(&info);
        if (tn.role != TensorRole::OTHER) m.by_role[tn.role] = &info;
    }

    // Dialect, algorithm and KV cache format.
    if (js.method == "compressed-tensors" || (js.method.empty() && !js.quantization && any_packed)) {
        r.dialect = "compressed-tensors";
        if (qc && qc->contains("format") && (*qc)["format"].is_string()) r.quant_algo = (*qc)["format"];
        r.kv_cache = "none";
        if (qc && qc->contains("kv_cache_scheme") && (*qc)["kv_cache_scheme"].is_object()) {
            const auto& kv = (*qc)["kv_cache_scheme"];
            r.kv_cache = fmt::format("{}{}", kv.value("type", std::string("?")), kv.value("num_bits", 0));
        }
    } else if (js.method.starts_with("modelopt") || js.quantization) {
        r.dialect = "modelopt";
        const nlohmann::json* q = js.quantization ? js.quantization : qc;
        if (q && q->contains("quant_algo") && (*q)["quant_algo"].is_string()) r.quant_algo = (*q)["quant_algo"];
        r.kv_cache = "none";
        if (js.quantization && js.quantization->contains("kv_cache_quant_algo") &&
            (*js.quantization)["kv_cache_quant_algo"].is_string())
            r.kv_cache = (*js.quantization)["kv_cache_quant_algo"];
        else if (qc && qc->contains("kv_cache_scheme")) {
            const auto& kv = (*qc)["kv_cache_scheme"];
            if (kv.is_string()) r.kv_cache = kv;
            else if (kv.is_object() && kv.value("num_bits", 0) == 8 && kv.value("type", std::string()) == "float")
                r.kv_cache = "FP8";
        }
    } else if (!js.method.empty()) {
        r.dialect = js.method;  // gptq, awq, fp8, ...: listed by storage only
        r.kv_cache = "unknown";
    } else {
        r.dialect = any_scale ? "quantized (unknown dialect)" : "unquantized";
        r.kv_cache = "none";
    }

    // Weight modules.
    bool have_lm_head = false;
    for (const ModuleTensors& m : mods) {
        const auto role = [&](TensorRole ro) -> const io::TensorInfo* {
            const auto it = m.by_role.find(ro);
            return it == m.by_role.end() ? nullptr : it->second;
        };
        const io::TensorInfo* w = role(TensorRole::WEIGHT_PACKED) ? role(TensorRole::WEIGHT_PACKED) : role(TensorRole::WEIGHT);
        const bool quantized_dtype = w && (w->dtype == DType::U8 || w->dtype == DType::F8_E4M3);
        if (!w || (!quantized_dtype && !(dtype_is_float(w->dtype) && w->shape.size() >= 2))) {
            for (const io::TensorInfo* t : m.all) r.non_module_bytes += t->nbytes();
            continue;
        }
        InspectModule im;
        im.name = m.name;
        im.kind = layer_kind_of(m.name);
        have_lm_head |= im.kind == LayerKind::LM_HEAD;
        im.shape = w->shape;
        im.has_input_scale = role(TensorRole::INPUT_SCALE) || role(TensorRole::INPUT_GLOBAL_SCALE);
        const io::TensorInfo* ws = role(TensorRole::WEIGHT_SCALE);
        for (const io::TensorInfo* t : m.all) {
            const TensorRole ro = split_tensor_name(t->name).role;
            const bool weight_part = t == w || ro == TensorRole::WEIGHT_SCALE || ro == TensorRole::WEIGHT_SCALE_2 ||
                                     ro == TensorRole::WEIGHT_GLOBAL_SCALE || ro == TensorRole::WEIGHT_ZERO_POINT;
            (weight_part ? im.weight_bytes : im.other_bytes) += t->nbytes();
        }
        if (!quantized_dtype) {
            im.storage = lower(dtype_name(w->dtype));
            if (w->dtype == DType::BF16) im.format = Format::BF16;
        } else if (w->dtype == DType::U8) {
            // Two E2M1 codes per byte: the logical row is twice as long.
            if (!im.shape.empty()) im.shape.back() *= 2;
            if (ws && ws->dtype == DType::F8_E4M3) im.format = im.has_input_scale ? Format::NVFP4 : Format::W4A16_NVFP4;
            else if (ws && is_e8m0_dtype(ws->dtype)) im.format = Format::MXFP4;
            else im.storage = "u8 (unknown packing)";
        } else {
            if (ws && ws->dtype == DType::F32) im.format = Format::FP8;
            else if (ws && is_e8m0_dtype(ws->dtype)) im.format = Format::MXFP8;
            else im.storage = "f8_e4m3 (no scale)";
        }
        // The JSON may tell W4A16 from W4A4 (input_scale is optional for either in practice).
        if (im.format && r.dialect == "modelopt" && *im.format != Format::BF16) {
            const auto jf = js.modelopt_format(m.name);
            if (jf && format_info(*jf).elem_bits == format_info(*im.format).elem_bits &&
                format_info(*jf).block_scale == format_info(*im.format).block_scale)
                im.format = jf;
        }
        if (im.format && im.storage.empty()) im.storage = std::string(format_info(*im.format).name);
        im.elements = numel(im.shape);
        r.modules.push_back(std::move(im));
    }
    r.tied_lm_head = !have_lm_head && js.config && js.config->is_object() &&
                     js.config->value("tie_word_embeddings", false);

    std::stable_sort(r.modules.begin(), r.modules.end(),
                     [](const InspectModule& a, const InspectModule& b) { return a.kind < b.kind; });
    r.linear.label = "linear weights (no embeddings, no lm_head)";
    r.linear_lm_head.label = "linear weights + lm_head";
    r.all_weights.label = "all weight matrices (+ embeddings)";
    std::array<InspectBits, static_cast<size_t>(LayerKind::COUNT)> per_kind{};
    const auto add = [](InspectBits& b, const InspectModule& m) {
        ++b.modules;
        b.elements += m.elements;
        b.weight_bytes += m.weight_bytes;
    };
    for (const InspectModule& m : r.modules) {
        add(per_kind[static_cast<size_t>(m.kind)], m);
        add(r.all_weights, m);
        if (m.kind == LayerKind::EMBED) continue;
        add(r.linear_lm_head, m);
        if (m.kind != LayerKind::LM_HEAD) add(r.linear, m);
    }
    for (size_t k = 0; k < per_kind.size(); ++k) {
        if (!per_kind[k].modules) continue;
        per_kind[k].label = std::string(layer_kind_name(static_cast<LayerKind>(k)));
        r.kinds.push_back(per_kind[k]);
    }
    return r;
}

std::string format_inspect_text(const InspectReport& r, bool with_tensors) {
    std::string out;
    out += fmt::format("checkpoint   {}\n", r.dir.string());
    out += fmt::format("files        {} shard(s), {} tensors, {:.2f} MiB of tensor data\n", r.shards, r.tensor_count,
                       mib(r.total_bytes));
    if (!r.model_type.empty()) out += fmt::format("model_type   {}\n", r.model_type);
    out += fmt::format("dialect      {}{}\n", r.dialect, r.quant_algo.empty() ? "" : "  (" + r.quant_algo + ")");
    out += fmt::format("kv cache     {}{}\n", r.kv_cache,
                       r.kv_scale_tensors ? fmt::format("  ({} k/v scale tensors)", r.kv_scale_tensors) : "");

    // Modules that differ only in their layer index (and agree on storage and shape) share a
    // line, "model.layers.{0-5}.mlp.down_proj x6"; --json keeps every module.
    struct Line {
        const InspectModule* first;
        std::string pattern;
        std::vector<int64_t> indices;
        uint64_t bytes = 0;
    };
    std::vector<Line> lines;
    std::map<std::string, size_t> line_of;
    for (const InspectModule& m : r.modules) {
        std::string pattern = m.name;
        std::optional<int64_t> idx;
        for (size_t i = 0; i + 1 < m.name.size(); ++i) {
            if (m.name[i] != '.' || !std::isdigit(static_cast<unsigned char>(m.name[i + 1]))) continue;
            size_t j = i + 1;
            while (j < m.name.size() && std::isdigit(static_cast<unsigned char>(m.name[j]))) ++j;
            if (j != m.name.size() && m.name[j] != '.') continue;
            if (j - i - 1 > 9) continue;
            idx = std::stoll(m.name.substr(i + 1, j - i - 1));
            pattern = m.name.substr(0, i + 1) + "{}" + m.name.substr(j);
            break;
        }
        const std::string key = fmt::format("{}|{}|{}|{}|{}", int(m.kind), pattern, m.storage, shape_str(m.shape),
                                            m.has_input_scale);
        auto [it, fresh] = line_of.try_emplace(key, lines.size());
        if (fresh) lines.push_back({&m, idx ? pattern : m.name, {}, 0});
        Line& l = lines[it->second];
        if (idx) l.indices.push_back(*idx);
        l.bytes += m.weight_bytes;
    }
    const auto ranges = [](std::vector<int64_t> v) {
        std::sort(v.begin(), v.end());
        std::string s;
        for (size_t i = 0; i < v.size();) {
            size_t j = i;
            while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
            if (!s.empty()) s += ',';
            s += j > i ? fmt::format("{}-{}", v[i], v[j]) : std::to_string(v[i]);
            i = j + 1;
        }
        return s;
    };
    LayerKind current = LayerKind::COUNT;
    for (const Line& l : lines) {
        const InspectModule& m = *l.first;
        if (m.kind != current) {
            current = m.kind;
            out += fmt::format("\n[{}]\n", layer_kind_name(current));
        }
        std::string name = l.pattern;
        const size_t n = l.indices.size();
        if (n == 1) name = m.name;
        else if (n > 1) name.replace(name.find("{}"), 2, "{" + ranges(l.indices) + "}") += fmt::format(" x{}", n);
        out += fmt::format("  {:<52} {:<12} {:<14} {:>9.3f} MiB {:>8.3f} bits{}\n", name, m.storage,
                           shape_str(m.shape), mib(l.bytes), m.bits(), m.has_input_scale ? "  +input_scale" : "");
    }
    if (r.tied_lm_head) out += "\nlm_head      tied to the embeddings (no tensor of its own, not counted)\n";

    out += "\neffective bits per element, weights only: (weight + block scale + per-tensor weight scale\n"
           "bytes as stored) x 8 / logical elements; input/KV scales, biases and norms not counted\n";
    out += fmt::format("  {:<44} {:>7} {:>14} {:>11} {:>10}\n", "layer kind", "modules", "elements", "MiB", "bits/elem");
    const auto row = [&](const InspectBits& b) {
        out += fmt::format("  {:<44} {:>7} {:>14} {:>11.3f} {:>10.4f}\n", b.label, b.modules, b.elements,
                           mib(b.weight_bytes), b.bits());
    };
    for (const InspectBits& b : r.kinds) row(b);
    out += "  ----\n";
    row(r.linear);
    row(r.linear_lm_head);
    row(r.all_weights);
    out += fmt::format("  other tensors (norms, biases, activation/KV scales): {:.3f} MiB\n",
                       mib(r.total_bytes - r.all_weights.weight_bytes));

    if (with_tensors) {
        out += fmt::format("\n{} tensors\n", r.tensors.size());
        for (const InspectTensor& t : r.tensors)
            out += fmt::format("  {:<64} {:<8} {:<16} {:>12}\n", t.name, dtype_name(t.dtype), shape_str(t.shape), t.bytes);
    }
    return out;
}

ordered_json inspect_to_json(const InspectReport& r, bool with_tensors) {
    const auto bits_json = [](const InspectBits& b) {
        return ordered_json{{"label", b.label},
                            {"modules", b.modules},
                            {"elements", b.elements},
                            {"weight_bytes", b.weight_bytes},
                            {"bits_per_element", b.bits()}};
    };
    ordered_json j;
    j["dir"] = r.dir.string();
    j["dialect"] = r.dialect;
    j["quant_algo"] = r.quant_algo;
    j["kv_cache"] = r.kv_cache;
    j["model_type"] = r.model_type;
    j["shards"] = r.shards;
    j["tensor_count"] = r.tensor_count;
    j["total_bytes"] = r.total_bytes;
    j["tied_lm_head"] = r.tied_lm_head;
    j["kv_scale_tensors"] = r.kv_scale_tensors;
    j["bits_counted"] = "weights only: weight + block scales + per-tensor weight scale bytes as stored, "
                        "x8 / logical elements";
    ordered_json mods = ordered_json::array();
    for (const InspectModule& m : r.modules)
        mods.push_back(ordered_json{{"name", m.name},
                                    {"kind", std::string(layer_kind_name(m.kind))},
                                    {"storage", m.storage},
                                    {"shape", m.shape},
                                    {"elements", m.elements},
                                    {"weight_bytes", m.weight_bytes},
                                    {"other_bytes", m.other_bytes},
                                    {"input_scale", m.has_input_scale},
                                    {"bits_per_element", m.bits()}});
    j["modules"] = mods;
    ordered_json kinds = ordered_json::object();
    for (const InspectBits& b : r.kinds) kinds[b.label] = bits_json(b);
    j["kinds"] = kinds;
    j["linear"] = bits_json(r.linear);
    j["linear_with_lm_head"] = bits_json(r.linear_lm_head);
    j["all_weights"] = bits_json(r.all_weights);
    if (with_tensors) {
        ordered_json ts = ordered_json::array();
        for (const InspectTensor& t : r.tensors)
            ts.push_back(ordered_json{{"name", t.name}, {"dtype", std::string(dtype_name(t.dtype))},
                                      {"shape", t.shape}, {"bytes", t.bytes}});
        j["tensors"] = ts;
    }
    return j;
}

}  // namespace microscale::exporter
