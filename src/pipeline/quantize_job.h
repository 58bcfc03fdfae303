// `microscale quantize`: checkpoint + recipe -> plan -> streaming quantization -> ModelOpt export,
// written into a temporary directory, verified, then renamed into place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "format/quantize.h"
#include "io/safetensors.h"
#include "pipeline/activation_scales.h"
#include "pipeline/plan.h"

namespace microscale::pipeline {

struct QuantizeOptions {
    std::filesystem::path model_dir;
    std::filesystem::path output_dir;
    std::string recipe = "NVFP4_FOUR_OVER_SIX_CFG";  // preset name(s) or YAML file
    PlanOptions plan;
    bool dry_run = false;
    bool force = false;
    unsigned threads = 0;                             // 0: all cores
    uint64_t max_shard_bytes = 5'000'000'000ull;      // HF "5GB"
    format::Backend backend = format::Backend::SIMD;
    bool verify = true;
    io::WriteMode write_mode = io::WriteMode::DIRECT;  // shards: O_DIRECT (buffered where unsupported)
    std::string export_format = "modelopt";           // or "compressed-tensors" (llm-compressor / vLLM CT)
    CalibrationOptions calibration;  // activation statistics for W4A4 / W8A8 / KV-cache recipes
};

struct TensorReport {
    std::string name;          // input tensor name
    std::string input_dtype;   // "BF16", "F32", ...
    std::string format;        // output format name ("bf16" for copies)
    std::string algorithm;
    std::string kind;          // layer kind for the BPE table: attention, mlp, lm_head, embedding, other
    int64_t elements = 0;
    uint64_t input_bytes = 0, output_bytes = 0;
    double rel_mse = -1.0;     // sum (w - w_hat)^2 / sum w^2 over sampled rows; -1 for copies
    int64_t sampled_rows = 0;
    double seconds = 0.0;
};

struct QuantizeReport {
    std::string plan_text;            // describe_plan
    std::vector<std::string> notes;
    std::vector<TensorReport> tensors;
    double seconds = 0.0;             // wall time of the whole run
    double quantize_seconds = 0.0;    // sum of the per-tensor quantize times
    double write_wait_seconds = 0.0;  // waiting for the writer thread to finish (drain)
    double commit_seconds = 0.0;      // fsync + rename of the shards and the JSON files
    double verify_seconds = 0.0;      // re-reading and checking the output
    uint64_t input_bytes = 0, output_bytes = 0;
    double bpe_without_lm_head = 0.0, bpe_with_lm_head = 0.0;  // linear weights only, as stored
    std::filesystem::path output;
    bool dry_run = false;
};

// Callbacks while the job runs: the resolved plan before any tensor is written, the tensor count
// and input bytes when streaming starts, then one finished tensor at a time (index, count, report).
struct JobCallbacks {
    std::function<void(const std::string&)> on_log;  // calibration progress and notes
    std::function<void(const std::string& plan_text, const std::vector<std::string>& notes)> on_plan;
    std::function<void(size_t n_tensors, uint64_t input_bytes)> on_start;
    std::function<void(size_t, size_t, const TensorReport&)> on_tensor;
};

QuantizeReport run_quantize(const QuantizeOptions& opts, const JobCallbacks& callbacks = {});

// Human-readable summary: time, sizes, BPE per layer kind and overall, worst tensors.
std::string summarize(const QuantizeReport& r);

}  // namespace microscale::pipeline
