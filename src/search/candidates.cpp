#include "search/candidates.h"

#include <fmt/core.h>

#include <algorithm>

#include "microscale/error.h"

namespace microscale::search {
namespace {

// The same numerics as the built-in snippets configs/numerics/{nvfp4, nvfp4_static,
// nvfp4_four_over_six, fp8}, inlined so the emitted recipe stands alone.
constexpr std::string_view kNvfp4Dynamic = "{num_bits: e2m1, block_sizes: {-1: 16, type: dynamic, scale_bits: e4m3}}";
constexpr std::string_view kNvfp4Static = "{num_bits: e2m1, block_sizes: {-1: 16, type: static, scale_bits: e4m3}}";
constexpr std::string_view kNvfp4FourOverSix =
    "{num_bits: e2m1, block_sizes: {-1: 16, type: static, scale_bits: e4m3, four_over_six: true}}";
constexpr std::string_view kFp8 = "{num_bits: e4m3, axis: null}";

}  // namespace

const std::vector<CandidateInfo>& candidate_table() {
    static const std::vector<CandidateInfo> table = {
        {"nvfp4", "NVFP4, block scales from max|w| (W4A16_NVFP4_CFG weights; algorithm max)", kNvfp4Dynamic, false,
         true, "max"},
        {"nvfp4_4o6", "NVFP4 four-over-six (NVFP4_FOUR_OVER_SIX_CFG weights; algorithm mse [1.0, 1.5])",
         kNvfp4FourOverSix, false, true,
         "{method: mse, fp8_scale_sweep: false, start_multiplier: 1.0, stop_multiplier: 1.5, step_size: 0.5}"},
        {"nvfp4_mse", "NVFP4, static block scales by the mse multiplier sweep (39 x [0.25..4])", kNvfp4Static, false,
         true, "{method: mse, fp8_scale_sweep: false}"},
        {"nvfp4_sweep", "NVFP4, static block scales by the FP8 scale sweep (all 126 E4M3 codes)", kNvfp4Static, false,
         true, "{method: mse, fp8_scale_sweep: true}"},
        {"fp8", "FP8 E4M3 W8A8, per-tensor weight and (calibrated) input scales", kFp8, true, false, ""},
        {"bf16", "left as stored (16 bits for a BF16 checkpoint); always a choice", "", false, false, ""},
    };
    return table;
}

std::string candidate_names() {
    std::string s;
    for (const CandidateInfo& c : candidate_table()) {
        if (!s.empty()) s += ", ";
        s += c.name;
    }
    return s;
}

CandidateSet parse_candidates(std::string_view list, bool w4a4) {
    CandidateSet set;
    set.w4a4 = w4a4;
    const CandidateInfo* with_algorithm = nullptr;
    size_t pos = 0;
    while (pos <= list.size()) {
        const size_t comma = std::min(list.find(',', pos), list.size());
        std::string_view name = list.substr(pos, comma - pos);
        while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
        while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
        pos = comma + 1;
        if (name.empty()) throw Error(fmt::format("--formats '{}': empty format name", list));
        const auto& t = candidate_table();
        const auto it = std::find_if(t.begin(), t.end(), [&](const CandidateInfo& c) { return c.name == name; });
        if (it == t.end())
            throw Error(fmt::format("--formats: unknown format '{}' (expected a comma-separated list of {})", name,
                                    candidate_names()));
        if (std::find(set.candidates.begin(), set.candidates.end(), &*it) != set.candidates.end())
            throw Error(fmt::format("--formats '{}': '{}' is listed twice", list, name));
        if (!it->algorithm.empty()) {
            if (with_algorithm && with_algorithm->algorithm != it->algorithm)
                throw Error(fmt::format(
                    "--formats: {} needs algorithm {} and {} needs {}; a recipe carries one calibration algorithm, "
                    "so search one NVFP4 variant at a time (e.g. --formats {},fp8,bf16)",
                    with_algorithm->name, with_algorithm->algorithm, it->name, it->algorithm, it->name));
            with_algorithm = &*it;
        }
        set.candidates.push_back(&*it);
    }
    const CandidateInfo* bf16 = &candidate_table().back();
    if (std::find(set.candidates.begin(), set.candidates.end(), bf16) == set.candidates.end())
        set.candidates.push_back(bf16);
    set.algorithm = with_algorithm ? std::string(with_algorithm->algorithm) : "max";
    return set;
}

std::optional<Format> candidate_format(const CandidateInfo& c, bool w4a4) {
    if (c.weight_cfg.empty()) return std::nullopt;
    if (c.fp8_inputs) return Format::FP8;
    return w4a4 ? Format::NVFP4 : Format::W4A16_NVFP4;
}

std::string escape_glob(std::string_view name) {
    std::string s;
    for (char ch : name) {
        if (ch == '*' || ch == '?' || ch == '[') s += std::string("[") + ch + "]";
        else s += ch;
    }
    return s;
}

namespace {

// A single-quoted YAML scalar ('' stands for ').
std::string yaml_quoted(std::string_view s) {
    std::string q = "'";
    for (char ch : s) q += ch == '\'' ? std::string("''") : std::string(1, ch);
    return q + "'";
}

}  // namespace

std::string emit_recipe_yaml(const CandidateSet& set, const std::vector<RecipeEntry>& entries,
                             const std::vector<std::string>& header, const std::string& description) {
    std::string y;
    for (const std::string& h : header) y += h.empty() ? "#\n" : "# " + h + "\n";
    y += "metadata:\n  recipe_type: ptq\n  description: " + yaml_quoted(description) + "\n";
    y += "quantize:\n  algorithm: " + set.algorithm + "\n  quant_cfg:\n";
    y += "    - {quantizer_name: '*', enable: false}\n";
    for (const RecipeEntry& e : entries) {
        if (!e.comment.empty()) y += "    # " + e.comment + "\n";
        if (!e.candidate || e.candidate->weight_cfg.empty()) continue;  // bf16: the deny-all rule covers it
        const std::string input_cfg = e.candidate->fp8_inputs                  ? std::string(kFp8)
                                      : (e.candidate->nvfp4_family && set.w4a4) ? std::string(kNvfp4Dynamic)
                                                                                : std::string();
        for (const std::string& m : e.modules) {
            y += fmt::format("    - {{quantizer_name: {}, cfg: {}}}\n", yaml_quoted(escape_glob(m + ".weight_quantizer")),
                             e.candidate->weight_cfg);
            if (!input_cfg.empty())
                y += fmt::format("    - {{quantizer_name: {}, cfg: {}}}\n", yaml_quoted(escape_glob(m + ".input_quantizer")),
                                 input_cfg);
        }
    }
    return y;
}

}  // namespace microscale::search
