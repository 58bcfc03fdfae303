// Re-reads an exported checkpoint with our own reader and checks what a serving engine will rely
// on (spec nvfp4-modelopt.md §2-4, ecosystem.md §1.6 and §6.5): the JSON files and their required
// keys, every quantized layer's tensors (names, dtypes, shapes, byte counts of the format table),
// JSON <-> tensors agreement in both directions, scale codes (no NaN, zero or negative), positive
// finite per-tensor scales, shared weight_scale_2 over fused groups, KV scales.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace microscale::core {
class ThreadPool;
}

namespace microscale::exporter {

struct VerifyReport {
    std::filesystem::path dir;
    std::string dialect;             // "modelopt" or "compressed-tensors"
    std::string quant_algo;          // "NVFP4", "MIXED_PRECISION", CT "format", ...
    std::string kv_cache_quant_algo; // "" when null
    size_t tensor_count = 0;
    size_t quantized_layers = 0;
    std::map<std::string, size_t> format_counts;  // format name ("nvfp4", "fp8") -> layers
    size_t fused_groups_checked = 0;  // NVFP4 groups of >= 2 members whose scales were compared
    size_t kv_scales = 0;             // k_scale / v_scale tensors
    uint64_t total_bytes = 0;         // every tensor's data
    uint64_t quantized_bytes = 0;     // tensors of quantized layers
    std::vector<std::string> warnings;  // suspicious but loadable
    std::vector<std::string> problems;  // what verify_export throws for
};

// Runs every check and returns all findings without throwing for them (throws only when the
// checkpoint itself cannot be opened). The byte scans run over pool when given (same findings,
// in the same order, for any thread count).
VerifyReport check_export(const std::filesystem::path& dir, core::ThreadPool* pool = nullptr);

// check_export, then throws microscale::Error listing the first ~20 problems (and how many in
// all) when there is any.
VerifyReport verify_export(const std::filesystem::path& dir, core::ThreadPool* pool = nullptr);

// One line: "verified DIR: modelopt NVFP4, 42 quantized layers (nvfp4 42), ...".
std::string verify_summary(const VerifyReport& r);

}  // namespace microscale::exporter
