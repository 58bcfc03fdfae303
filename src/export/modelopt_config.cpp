#include "export/modelopt_config.h"

#include <algorithm>
#include <map>
#include <set>

#include "microscale/error.h"

namespace microscale::exporter {

std::vector<std::string> summarize_exclude_modules(const std::vector<std::string>& unquantized,
                                                   const std::vector<std::string>& quantized) {
    // Every prefix wildcard of a quantized name (and the name itself) is off limits.
    std::set<std::string> forbidden;
    for (const std::string& q : quantized) {
        forbidden.insert(q);
        for (size_t i = 0; i <= q.size(); ++i) forbidden.insert(q.substr(0, i) + "*");
    }
    std::set<std::string> summary;
    for (const std::string& name : unquantized) {
        std::vector<std::vector<std::string>> candidates;
        for (size_t i = 0; i < name.size(); ++i) {
            if (name[i] != '.') continue;
            const std::string prefix = name.substr(0, i);
            candidates.push_back({prefix + "*"});
            candidates.push_back({prefix, prefix + ".*"});
        }
        candidates.push_back({name});
        for (const auto& wildcards : candidates) {
            const bool blocked = std::any_of(wildcards.begin(), wildcards.end(),
                                             [&](const std::string& w) { return forbidden.count(w) > 0; });
            if (blocked) continue;
            const bool covered = std::all_of(wildcards.begin(), wildcards.end(),
                                             [&](const std::string& w) { return summary.count(w) > 0; });
            if (!covered) summary.insert(wildcards.begin(), wildcards.end());
            break;
        }
    }
    return {summary.begin(), summary.end()};
}

ordered_json layer_quant_config(Format f) {
    const FormatInfo& info = format_info(f);
    ordered_json j;
    j["quant_algo"] = std::string(info.quant_algo);
    // group_size is the weight quantizer's block size for block formats (§4.2); MXFP4 falls
    // through to the bare {"quant_algo": "mxfp4"} in ModelOpt.
    if (f == Format::NVFP4 || f == Format::W4A16_NVFP4 || f == Format::MXFP8) j["group_size"] = info.block_elems;
    return j;
}

ordered_json producer_info() {
    return ordered_json{{"name", "microscale"}, {"version", MICROSCALE_VERSION}};
}

ordered_json build_hf_quant_config(const std::vector<LayerQuant>& layers,
                                   const std::optional<std::string>& kv_cache_quant_algo) {
    std::vector<std::string> excluded, quantized;
    std::set<std::string> distinct;
    ordered_json quantized_layers = ordered_json::object();
    std::optional<Format> single;
    for (const LayerQuant& l : layers) {
        if (!l.format) {
            excluded.push_back(l.module);
            continue;
        }
        quantized.push_back(l.module);
        const ordered_json cfg = layer_quant_config(*l.format);
        distinct.insert(cfg.dump());
        quantized_layers[l.module] = cfg;
        single = l.format;
    }
    ordered_json q;
    if (distinct.size() > 1) {
        q["quant_algo"] = "MIXED_PRECISION";
        q["kv_cache_quant_algo"] = kv_cache_quant_algo ? ordered_json(*kv_cache_quant_algo) : ordered_json(nullptr);
        q["quantized_layers"] = quantized_layers;
    } else {
        q["quant_algo"] = single ? ordered_json(std::string(format_info(*single).quant_algo)) : ordered_json(nullptr);
        q["kv_cache_quant_algo"] = kv_cache_quant_algo ? ordered_json(*kv_cache_quant_algo) : ordered_json(nullptr);
        if (single) {
            const ordered_json cfg = layer_quant_config(*single);  // keep alive while iterating
            for (const auto& [k, v] : cfg.items())
                if (k != "quant_algo") q[k] = v;
        }
        q["exclude_modules"] = summarize_exclude_modules(excluded, quantized);
    }
    return ordered_json{{"producer", producer_info()}, {"quantization", q}};
}

namespace {

// `_quant_algo_to_group_config` for the formats microscale writes.
ordered_json group_config(const std::string& algo, std::optional<int> group_size) {
    auto args = [](int bits, std::optional<int> gs) {
        ordered_json a{{"dynamic", false}, {"num_bits", bits}, {"type", "float"}};
        if (gs) a["group_size"] = *gs;
        return a;
    };
    if (algo == "FP8") return ordered_json{{"input_activations", args(8, {})}, {"weights", args(8, {})}};
    if (algo == "NVFP4") {
        const int gs = group_size.value_or(16);
        return ordered_json{{"input_activations", args(4, gs)}, {"weights", args(4, gs)}};
    }
    if (algo == "W4A16_NVFP4") return ordered_json{{"weights", args(4, group_size.value_or(16))}};
    if (algo == "MXFP8") {
        const int gs = group_size.value_or(32);
        return ordered_json{{"input_activations", args(8, gs)}, {"weights", args(8, gs)}};
    }
    return ordered_json{{"quant_algo", algo}};
}

}  // namespace

ordered_json build_quantization_config(const ordered_json& hf_quant_config) {
    const ordered_json& q = hf_quant_config.at("quantization");
    ordered_json out;
    const std::string algo = q.at("quant_algo").is_string() ? q.at("quant_algo").get<std::string>() : "";
    if (algo == "FP8" || algo == "NVFP4" || algo == "W4A16_NVFP4") {
        std::optional<int> gs;
        if (q.contains("group_size")) gs = q.at("group_size").get<int>();
        ordered_json g = group_config(algo, gs);
        g["targets"] = ordered_json::array({"Linear"});
        out["config_groups"] = ordered_json{{"group_0", g}};
    } else if (algo == "MIXED_PRECISION") {
        // One group per distinct layer config, numbered in first-seen order; targets sorted.
        std::vector<std::pair<std::string, std::vector<std::string>>> groups;
        std::map<std::string, size_t> index;
        for (const auto& [name, cfg] : q.at("quantized_layers").items()) {
            const std::string key = cfg.dump();
            auto it = index.find(key);
            if (it == index.end()) {
                index[key] = groups.size();
                groups.push_back({key, {}});
                it = index.find(key);
            }
            groups[it->second].second.push_back(name);
        }
        ordered_json config_groups = ordered_json::object();
        for (size_t i = 0; i < groups.size(); ++i) {
            const ordered_json cfg = ordered_json::parse(groups[i].first);
            std::optional<int> gs;
            if (cfg.contains("group_size")) gs = cfg.at("group_size").get<int>();
            ordered_json g = group_config(cfg.at("quant_algo").get<std::string>(), gs);
            std::vector<std::string> targets = groups[i].second;
            std::sort(targets.begin(), targets.end());
            g["targets"] = targets;
            config_groups["group_" + std::to_string(i)] = g;
        }
        out["config_groups"] = config_groups;
        out["quantized_layers"] = q.at("quantized_layers");
    }
    out["ignore"] = q.contains("exclude_modules") ? q.at("exclude_modules") : ordered_json::array();
    if (!algo.empty()) out["quant_algo"] = algo;
    if (q.contains("kv_cache_quant_algo") && q.at("kv_cache_quant_algo").is_string()) {
        const std::string kv = q.at("kv_cache_quant_algo").get<std::string>();
        out["kv_cache_scheme"] = kv == "FP8" ? ordered_json{{"dynamic", false}, {"num_bits", 8}, {"type", "float"}}
                                             : ordered_json(kv);
    }
    out["producer"] = hf_quant_config.at("producer");
    out["quant_method"] = "modelopt";
    return out;
}

}  // namespace microscale::exporter
