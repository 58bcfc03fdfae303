// AutoQuantize scores on disk (`autoquant --scores-out / --scores-in`): they do not depend on the
// budget, so one scoring run serves a sweep of budgets, or any subset of the scored formats.
// JSON with what produced them; loading checks the file against the current search.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace microscale::search {

struct SavedScores {
    std::string model;         // model directory as given
    std::string method;        // kl | mse
    bool w4a4 = false;
    std::string calib_file;
    int64_t calib_samples = 0, calib_seq_len = 0;
    uint64_t seed = 0;
    int64_t tokens = 0;
    struct Group {
        std::string name;
        std::map<std::string, double> score;  // candidate name -> score (scored candidates only)
        double seconds = 0.0;
    };
    std::vector<Group> groups;
};

void save_scores(const std::filesystem::path& path, const SavedScores& s);
// Throws microscale::Error naming the file for unreadable or malformed content.
SavedScores load_scores(const std::filesystem::path& path);

}  // namespace microscale::search
