// The calibration-sampling options quantize and autoquant share: --calib-size, --calib-seq-len,
// --seed, --calib-format (each command adds its own --calib, whose help and requiredness differ).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "calib/dataset.h"

namespace microscale::cli {

// Adds the options into *calib; the returned string holds --calib-format until calib_format_of.
inline std::shared_ptr<std::string> add_calib_sampling_options(CLI::App* cmd, calib::CalibOptions& calib) {
    auto format = std::make_shared<std::string>("auto");
    cmd->add_option("--calib-size", calib.num_samples, "Number of calibration samples")->capture_default_str()->group("Calibration");
    cmd->add_option("--calib-seq-len", calib.seq_len, "Tokens per calibration sample")->capture_default_str()->group("Calibration");
    cmd->add_option("--seed", calib.seed, "Seed for sampling the calibration documents")->capture_default_str()->group("Calibration");
    cmd->add_option("--calib-format", *format, "auto (by extension), text, jsonl or ids")
        ->check(CLI::IsMember({"auto", "text", "jsonl", "ids"}))
        ->capture_default_str()
        ->group("Calibration");
    return format;
}

inline calib::CalibFormat calib_format_of(const std::string& name) {
    return name == "text" ? calib::CalibFormat::TEXT
           : name == "jsonl" ? calib::CalibFormat::JSONL
           : name == "ids"   ? calib::CalibFormat::IDS
                             : calib::CalibFormat::AUTO;
}

}  // namespace microscale::cli
