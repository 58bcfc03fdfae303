// `microscale synth --output DIR ...`: a deterministic synthetic Llama-family checkpoint for the
// demo, tests and benchmarks. Hidden from the main help (it is a tool, not a user feature).
#include <fmt/core.h>

#include <cctype>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "microscale/error.h"
#include "model/synthetic.h"

namespace microscale::cli {
namespace {

struct SynthArgs {
    std::string output;
    std::string dtype = "bf16";
    std::string target_size;
    std::string shard_size = "5GB";
    model::SyntheticSpec spec;
};

// "2GiB", "5GB", "512MiB", "1.5GiB", "1000" -> bytes.
uint64_t parse_size(const std::string& text, const char* flag) {
    size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    std::string unit = text.substr(i);
    for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    double value = 0;
    try {
        size_t used = 0;
        value = i ? std::stod(text.substr(0, i), &used) : -1;
        if (used != i) value = -1;
    } catch (const std::exception&) {
        value = -1;
    }
    double mult = 0;
    if (unit.empty() || unit == "b") mult = 1;
    else if (unit == "kb") mult = 1e3;
    else if (unit == "mb") mult = 1e6;
    else if (unit == "gb") mult = 1e9;
    else if (unit == "tb") mult = 1e12;
    else if (unit == "kib") mult = 1024.0;
    else if (unit == "mib") mult = 1024.0 * 1024;
    else if (unit == "gib") mult = 1024.0 * 1024 * 1024;
    else if (unit == "tib") mult = 1024.0 * 1024 * 1024 * 1024;
    if (value < 0 || mult == 0 || value * mult > 1e15)
        throw Error(std::string(flag) + ": '" + text + "' is not a size (e.g. 2GiB, 5GB, 512MiB)");
    return static_cast<uint64_t>(value * mult);
}

DType parse_dtype(const std::string& s) {
    if (s == "bf16" || s == "bfloat16") return DType::BF16;
    if (s == "f16" || s == "fp16" || s == "float16") return DType::F16;
    if (s == "f32" || s == "fp32" || s == "float32") return DType::F32;
    throw Error("--dtype: '" + s + "' is not bf16, f16 or f32");
}

void run(SynthArgs& a) {
    model::SyntheticSpec spec = a.spec;
    spec.dtype = parse_dtype(a.dtype);
    spec.max_shard_bytes = parse_size(a.shard_size, "--shard-size");
    if (!a.target_size.empty()) spec.target_bytes = parse_size(a.target_size, "--target-size");
    const model::SyntheticResult r = model::write_synthetic_llama(a.output, spec);
    const model::SyntheticSpec& s = r.spec;
    fmt::print("wrote {} ({} {}, seed {})\n", a.output, s.model_type, dtype_name(s.dtype), s.seed);
    fmt::print("  hidden {}  layers {}  heads {}  kv_heads {}  head_dim {}  ffn {}  vocab {}{}\n", s.hidden,
               s.layers, s.heads, s.kv_heads, s.head_dim, s.ffn, s.vocab, s.tied ? "  tied" : "");
    fmt::print("  {} tensors, {:.3f} GiB in {} shard{}\n", r.tensors,
               static_cast<double>(r.data_bytes) / (1024.0 * 1024 * 1024), r.shards, r.shards == 1 ? "" : "s");
}

}  // namespace

void register_synth(CLI::App& app) {
    auto args = std::make_shared<SynthArgs>();
    auto* cmd = app.add_subcommand("synth", "Write a deterministic synthetic Llama-style checkpoint");
    cmd->group("");  // hidden from `microscale --help`
    model::SyntheticSpec& s = args->spec;
    cmd->add_option("--output,-o", args->output, "Output directory (must not exist or be empty)")->required();
    cmd->add_option("--model-type", s.model_type, "llama, mistral, qwen2 (q/k/v biases) or qwen3 (q/k norms)")
        ->capture_default_str();
    cmd->add_option("--hidden", s.hidden, "hidden_size")->capture_default_str();
    cmd->add_option("--layers", s.layers, "num_hidden_layers")->capture_default_str();
    cmd->add_option("--heads", s.heads, "num_attention_heads")->capture_default_str();
    cmd->add_option("--kv-heads", s.kv_heads, "num_key_value_heads")->capture_default_str();
    cmd->add_option("--head-dim", s.head_dim, "head_dim (0: hidden / heads)")->capture_default_str();
    cmd->add_option("--ffn", s.ffn, "intermediate_size")->capture_default_str();
    cmd->add_option("--vocab", s.vocab, "vocab_size")->capture_default_str();
    cmd->add_option("--dtype", args->dtype, "bf16, f16 or f32")->capture_default_str();
    cmd->add_flag("--tied", s.tied, "tie_word_embeddings (no lm_head.weight on disk)");
    cmd->add_option("--seed", s.seed, "RNG seed")->capture_default_str();
    cmd->add_option("--target-size", args->target_size,
                    "Pick width and layer count to reach this size (e.g. 2GiB); keeps vocab and dtype");
    cmd->add_option("--shard-size", args->shard_size, "Maximum shard size (e.g. 5GB)")->capture_default_str();
    cmd->add_option("--threads", s.threads, "Generator threads (0: all cores; the bytes do not change)");
    cmd->final_callback([args] { run(*args); });
}

}  // namespace microscale::cli
