// `microscale quantize`: the main job.
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "calib/dataset.h"
#include "cli/calib_options.h"
#include "cli/commands.h"
#include "cli/device_option.h"
#include "core/device.h"
#include "microscale/error.h"
#include "pipeline/progress.h"
#include "pipeline/quantize_job.h"

namespace microscale::cli {
namespace {

uint64_t parse_size(const std::string& s) {
    size_t pos = 0;
    const double v = std::stod(s, &pos);
    std::string unit = s.substr(pos);
    for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    double mul = 1;
    if (unit == "K" || unit == "KB") mul = 1e3;
    else if (unit == "M" || unit == "MB") mul = 1e6;
    else if (unit == "G" || unit == "GB") mul = 1e9;
    else if (unit == "KIB") mul = 1024.0;
    else if (unit == "MIB") mul = 1024.0 * 1024;
    else if (unit == "GIB") mul = 1024.0 * 1024 * 1024;
    else if (!unit.empty() && unit != "B") throw Error("size '" + s + "': unknown unit (use B, MB, GB, MiB, GiB)");
    if (!(v > 0)) throw Error("size '" + s + "' must be positive");
    return static_cast<uint64_t>(v * mul);
}

}  // namespace

void register_quantize(CLI::App& app) {
    auto opts = std::make_shared<pipeline::QuantizeOptions>();
    auto shard = std::make_shared<std::string>("5GB");
    auto json = std::make_shared<bool>(false);
    auto backend = std::make_shared<std::string>("simd");
    auto progress = std::make_shared<std::string>("auto");
    auto write_mode = std::make_shared<std::string>("direct");
    auto* cmd = app.add_subcommand("quantize", "Quantize a Hugging Face checkpoint with a ModelOpt recipe and export it");
    cmd->footer(
        "\nExamples:\n"
        "  microscale quantize --model ./Llama-3-8B --recipe W4A16_NVFP4_CFG --output ./Llama-3-8B-NVFP4\n"
        "  microscale quantize --model ./m --recipe NVFP4_FOUR_OVER_SIX_CFG --weights-only --output ./m-4o6\n"
        "  microscale quantize --model ./m --recipe NVFP4_DEFAULT_CFG+FP8_KV_CFG --calib ./calib.jsonl --output ./m-w4a4\n"
        "  microscale quantize --model ./m --recipe ./my-recipe.yaml --dry-run\n"
        "  microscale quantize --model ./m --recipe W4A16_NVFP4_CFG --export-format compressed-tensors --output ./m-ct\n"
        "Recipes: `microscale recipes` lists the built-in presets (ModelOpt names); a YAML file in\n"
        "ModelOpt's schema works verbatim. Formats: `microscale formats`.");
    cmd->add_option("--model", opts->model_dir, "Input checkpoint directory (config.json + safetensors)")->required();
    cmd->add_option("--recipe", opts->recipe, "Preset name (e.g. NVFP4_FOUR_OVER_SIX_CFG, A+B merges) or YAML file")
        ->capture_default_str();
    cmd->add_option("--output", opts->output_dir, "Output directory (written atomically)");
    cmd->add_flag("--dry-run", opts->dry_run, "Print the resolved plan (module -> format, algorithm, bits) and stop");
    cmd->add_flag("--force", opts->force, "Replace an existing output directory");
    cmd->add_flag("--weights-only", opts->plan.weights_only,
                  "Disable input and KV quantizers: weight-only export (NVFP4 becomes W4A16_NVFP4), no calibration");
    cmd->add_flag("--skip-incompatible", opts->plan.skip_incompatible,
                  "Leave layers whose in_features the block size does not divide in BF16 (and report them)");
    cmd->add_option("--threads", opts->threads, "Worker threads (0 = all cores)")->capture_default_str();
    cmd->add_option("--shard-size", *shard, "Maximum output shard size (HF convention, e.g. 5GB, 500MB, 2GiB)")
        ->capture_default_str();
    auto device = add_device_option(cmd);
    cmd->add_option("--backend", *backend,
                    "CPU kernel path: simd (default) or ref (the scalar reference; same bytes as simd and cuda)")
        ->check(CLI::IsMember({"simd", "ref"}))
        ->capture_default_str();
    cmd->add_option("--export-format", opts->export_format,
                    "Checkpoint dialect: modelopt (default: hf_quant_config.json, weight / weight_scale_2, what "
                    "vLLM's modelopt method, TensorRT-LLM and SGLang load) or compressed-tensors (llm-compressor's: "
                    "weight_packed / weight_global_scale = 1/weight_scale_2, vLLM's compressed_tensors method)")
        ->check(CLI::IsMember({"modelopt", "compressed-tensors"}))
        ->capture_default_str();
    cmd->add_flag("--json", *json, "Print the final report as JSON on stdout");
    cmd->add_option("--progress", *progress,
                    "Progress on stderr: auto (a bar on a terminal, else lines), bar (one updating line: tensor "
                    "i/n, bytes, GB/s, ETA), lines (one aligned line per tensor) or none")
        ->check(CLI::IsMember({"auto", "bar", "lines", "none"}))
        ->capture_default_str();
    cmd->add_option("--write-mode", *write_mode,
                    "How shards reach the disk: direct (O_DIRECT from aligned blocks, no page-cache copy; buffered "
                    "where the filesystem refuses it) or buffered (write() into the page cache). Same bytes")
        ->check(CLI::IsMember({"direct", "buffered"}))
        ->capture_default_str();
    // Calibration (W4A4 NVFP4, FP8 W8A8, calibrated KV cache).
    auto calib_file = std::make_shared<std::string>();
    auto calib = std::make_shared<calib::CalibOptions>();
    auto calib_mem = std::make_shared<std::string>("4GiB");
    cmd->add_option("--calib", *calib_file,
                    "Calibration data: .txt (documents split on blank lines), .jsonl (\"text\" or chat "
                    "\"messages\"), or pre-tokenized ids (.ids / .ids.txt, one document per line)")
        ->group("Calibration");
    auto calib_format = add_calib_sampling_options(cmd, *calib);
    cmd->add_option("--calib-mem", *calib_mem, "Activation memory before spilling to a temporary file (e.g. 4GiB)")
        ->capture_default_str()->group("Calibration");
    cmd->add_flag("--sequential-quantized", opts->calibration.sequential_quantized,
                  "Feed each layer the outputs of the already-quantized layers before it (default: ModelOpt's "
                  "max calibration on unquantized activations)")->group("Calibration");
    cmd->add_option("--calib-stats", opts->calibration.stats_in,
                    "Reuse saved calibration statistics instead of running the forward pass")->group("Calibration");
    cmd->add_option("--save-calib-stats", opts->calibration.stats_out, "Save the calibration statistics (JSON)")
        ->group("Calibration");
    auto gpu_budget = std::make_shared<std::string>();
    cmd->add_option("--gpu-mem-budget", *gpu_budget,
                    "With --device cuda: GPU memory the calibration forward may use (e.g. 12GiB); layers beyond "
                    "it stream from pinned host memory, so a model larger than the GPU still calibrates "
                    "(default: free memory minus 1 GiB)")
        ->group("Calibration");
    cmd->final_callback([cmd, opts, shard, json, backend, device, gpu_budget, progress, write_mode, calib_file, calib, calib_format, calib_mem] {
        opts->max_shard_bytes = parse_size(*shard);
        opts->calibration.activation_budget_bytes = parse_size(*calib_mem);
        if (!calib_file->empty()) {
            calib->file = *calib_file;
            calib->format = calib_format_of(*calib_format);
            opts->calibration.data = *calib;
        }
        opts->backend = *backend == "ref" ? format::Backend::REF : format::Backend::SIMD;
        opts->write_mode = *write_mode == "buffered" ? io::WriteMode::BUFFERED : io::WriteMode::DIRECT;
        // An explicit --backend names a CPU kernel path, so it implies --device cpu unless told otherwise.
        const bool cpu_backend_asked = cmd->count("--backend") > 0;
        const core::Device dev = core::resolve_device(cpu_backend_asked && *device == "auto" ? "cpu" : *device);
        if (dev.is_cuda()) {
            if (cpu_backend_asked) throw Error("--backend selects a CPU kernel path; use it with --device cpu");
            opts->backend = format::Backend::CUDA;
            opts->calibration.gpu = true;
            if (!gpu_budget->empty()) opts->calibration.gpu_mem_budget_bytes = parse_size(*gpu_budget);
        } else if (!gpu_budget->empty()) {
            throw Error("--gpu-mem-budget applies to --device cuda");
        }
        if (!opts->dry_run) fmt::print(stderr, "device: {}\n", dev.describe());
        if (!opts->dry_run && opts->output_dir.empty()) throw Error("--output is required (or use --dry-run)");
        pipeline::ProgressPrinter printer(
            pipeline::resolve_progress_mode(*pipeline::progress_mode_from_name(*progress), fileno(stderr)), stderr);
        pipeline::JobCallbacks cb;
        cb.on_log = [&](const std::string& line) { printer.log(line); };
        // The plan goes to stdout (it is the result of --dry-run), progress to stderr.
        cb.on_plan = [&](const std::string& plan, const std::vector<std::string>&) {
            if (opts->dry_run || !*json) fmt::print("{}", plan);
            std::fflush(stdout);
        };
        cb.on_start = [&](size_t n, uint64_t bytes) { printer.start(n, bytes); };
        cb.on_tensor = [&](size_t i, size_t n, const pipeline::TensorReport& t) { printer.tensor(i, n, t); };
        const pipeline::QuantizeReport r = pipeline::run_quantize(*opts, cb);
        printer.finish();
        if (opts->dry_run) return;
        if (*json) {
            nlohmann::ordered_json j;
            j["output"] = r.output.string();
            j["seconds"] = r.seconds;
            j["seconds_breakdown"] = {{"tensors", r.quantize_seconds}, {"writer_drain", r.write_wait_seconds},
                                      {"commit", r.commit_seconds}, {"verify", r.verify_seconds}};
            j["input_bytes"] = r.input_bytes;
            j["output_bytes"] = r.output_bytes;
            j["effective_bits"] = {{"without_lm_head", r.bpe_without_lm_head}, {"with_lm_head", r.bpe_with_lm_head}};
            j["notes"] = r.notes;
            for (const auto& t : r.tensors)
                j["tensors"].push_back({{"name", t.name}, {"format", t.format}, {"algorithm", t.algorithm},
                                        {"input_bytes", t.input_bytes}, {"output_bytes", t.output_bytes},
                                        {"rel_mse", t.rel_mse}, {"seconds", t.seconds}});
            fmt::print("{}\n", j.dump(2));
        } else {
            fmt::print("{}", pipeline::summarize(r));
        }
    });
}

}  // namespace microscale::cli
