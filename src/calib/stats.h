// Calibration statistics: a versioned file with provenance, so a second quantization of the same
// model skips the forward pass (`quantize --calib-stats FILE`). Keys are on-disk module names.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace microscale::calib {

inline constexpr int kStatsVersion = 1;

struct StatsProvenance {
    std::string tool = "microscale";
    std::string tool_version;
    std::string model;          // model directory as given
    std::string model_type;
    std::string dataset;        // calibration file name
    uint64_t dataset_hash = 0;  // FNV-1a of its bytes
    std::string dataset_format;
    int64_t samples = 0, seq_len = 0, tokens = 0;
    uint64_t seed = 0;
    bool sequential_quantized = false;
};

struct CalibStats {
    StatsProvenance provenance;
    std::map<std::string, float> input_amax;  // linear module -> max |input| over all calibration tokens
    std::map<std::string, float> k_amax;      // attention module -> max |key| after RoPE
    std::map<std::string, float> v_amax;      // attention module -> max |value|
};

void save_stats(const std::filesystem::path& path, const CalibStats& stats);
// Throws microscale::Error naming the file for a wrong version, bad JSON or non-finite values.
CalibStats load_stats(const std::filesystem::path& path);

}  // namespace microscale::calib
