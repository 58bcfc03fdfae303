#include "calib/stats.h"

#include <fmt/core.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "microscale/error.h"

namespace microscale::calib {

void save_stats(const std::filesystem::path& path, const CalibStats& s) {
    nlohmann::ordered_json j;
    j["microscale_calib_stats"] = kStatsVersion;
    const StatsProvenance& p = s.provenance;
    j["provenance"] = {{"tool", p.tool},
                       {"tool_version", p.tool_version},
                       {"model", p.model},
                       {"model_type", p.model_type},
                       {"dataset", p.dataset},
                       {"dataset_hash", fmt::format("{:016x}", p.dataset_hash)},
                       {"dataset_format", p.dataset_format},
                       {"samples", p.samples},
                       {"seq_len", p.seq_len},
                       {"tokens", p.tokens},
                       {"seed", p.seed},
                       {"sequential_quantized", p.sequential_quantized}};
    j["input_amax"] = s.input_amax;
    j["k_amax"] = s.k_amax;
    j["v_amax"] = s.v_amax;
    io::write_file_atomic(path, j.dump(2) + "\n");
}

namespace {
std::map<std::string, float> read_amax(const nlohmann::json& j, const char* key, const std::string& file) {
    std::map<std::string, float> out;
    if (!j.contains(key)) return out;
    if (!j[key].is_object()) throw Error(fmt::format("{}: '{}' must be an object", file, key));
    for (const auto& [name, v] : j[key].items()) {
        if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
            throw Error(fmt::format("{}: {}.{} must be a finite non-negative number", file, key, name));
        out[name] = v.get<float>();
    }
    return out;
}
}  // namespace

CalibStats load_stats(const std::filesystem::path& path) {
    const std::string file = path.string();
    std::ifstream f(path);
    if (!f) throw Error(fmt::format("--calib-stats {}: cannot open", file));
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(f);
    } catch (const nlohmann::json::exception& e) {
        throw Error(fmt::format("--calib-stats {}: invalid JSON: {}", file, e.what()));
    }
    if (!j.is_object() || !j.contains("microscale_calib_stats"))
        throw Error(fmt::format("--calib-stats {}: not a microscale statistics file", file));
    if (j["microscale_calib_stats"] != kStatsVersion)
        throw Error(fmt::format("--calib-stats {}: version {} is not supported (this build reads {})", file,
                                j["microscale_calib_stats"].dump(), kStatsVersion));
    CalibStats s;
    if (j.contains("provenance") && j["provenance"].is_object()) {
        const auto& p = j["provenance"];
        auto str = [&](const char* k) { return p.contains(k) && p[k].is_string() ? p[k].get<std::string>() : std::string(); };
        auto num = [&](const char* k) { return p.contains(k) && p[k].is_number_integer() ? p[k].get<int64_t>() : int64_t{0}; };
        s.provenance.tool = str("tool");
        s.provenance.tool_version = str("tool_version");
        s.provenance.model = str("model");
        s.provenance.model_type = str("model_type");
        s.provenance.dataset = str("dataset");
        s.provenance.dataset_hash = std::strtoull(str("dataset_hash").c_str(), nullptr, 16);
        s.provenance.dataset_format = str("dataset_format");
        s.provenance.samples = num("samples");
        s.provenance.seq_len = num("seq_len");
        s.provenance.tokens = num("tokens");
        s.provenance.seed = static_cast<uint64_t>(num("seed"));
        s.provenance.sequential_quantized = p.contains("sequential_quantized") && p["sequential_quantized"].is_boolean() &&
                                            p["sequential_quantized"].get<bool>();
    }
    s.input_amax = read_amax(j, "input_amax", file);
    s.k_amax = read_amax(j, "k_amax", file);
    s.v_amax = read_amax(j, "v_amax", file);
    return s;
}

}  // namespace microscale::calib
