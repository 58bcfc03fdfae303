#include "search/score_file.h"

#include <fmt/core.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "export/inspect.h"
#include "microscale/error.h"

namespace microscale::search {

namespace {
constexpr int kVersion = 1;
}

void save_scores(const std::filesystem::path& path, const SavedScores& s) {
    nlohmann::ordered_json j;
    j["microscale_autoquant_scores"] = kVersion;
    j["model"] = s.model;
    j["method"] = s.method;
    j["w4a4"] = s.w4a4;
    j["calibration"] = {{"file", s.calib_file}, {"samples", s.calib_samples}, {"seq_len", s.calib_seq_len},
                        {"seed", s.seed}, {"tokens", s.tokens}};
    j["groups"] = nlohmann::ordered_json::array();
    for (const SavedScores::Group& g : s.groups) {
        nlohmann::ordered_json sc = nlohmann::ordered_json::object();
        for (const auto& [c, v] : g.score) sc[c] = v;
        j["groups"].push_back({{"name", g.name}, {"scores", sc}, {"seconds", g.seconds}});
    }
    std::ofstream f(path);
    f << j.dump(2) << "\n";
    if (!f) throw Error(fmt::format("--scores-out {}: cannot write", path.string()));
}

SavedScores load_scores(const std::filesystem::path& path) {
    const auto j = exporter::read_json_file(path);
    if (!j) throw Error(fmt::format("--scores-in {}: no such file", path.string()));
    const auto bad = [&](const std::string& what) {
        return Error(fmt::format("--scores-in {}: {} (expected a file written by autoquant --scores-out)", path.string(), what));
    };
    if (!j->is_object() || j->value("microscale_autoquant_scores", 0) != kVersion) throw bad("not a version-1 scores file");
    SavedScores s;
    try {
        s.model = j->at("model").get<std::string>();
        s.method = j->at("method").get<std::string>();
        s.w4a4 = j->at("w4a4").get<bool>();
        const auto& c = j->at("calibration");
        s.calib_file = c.at("file").get<std::string>();
        s.calib_samples = c.at("samples").get<int64_t>();
        s.calib_seq_len = c.at("seq_len").get<int64_t>();
        s.seed = c.at("seed").get<uint64_t>();
        s.tokens = c.at("tokens").get<int64_t>();
        for (const auto& g : j->at("groups")) {
            SavedScores::Group sg;
            sg.name = g.at("name").get<std::string>();
            sg.seconds = g.value("seconds", 0.0);
            for (const auto& [k, v] : g.at("scores").items()) {
                const double d = v.get<double>();
                if (!std::isfinite(d)) throw bad(fmt::format("group {}: score of {} is {}", sg.name, k, d));
                sg.score[k] = d;
            }
            s.groups.push_back(std::move(sg));
        }
    } catch (const nlohmann::json::exception& e) {
        throw bad(e.what());
    }
    return s;
}

}  // namespace microscale::search
