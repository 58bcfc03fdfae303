// `microscale eval`: perplexity over a text file, for an original checkpoint and/or a quantized
// export run as deployed (docs/FORMATS.md, "Activation fake quantization in eval").
#include <fmt/core.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "calib/tokenizer.h"
#include "cli/commands.h"
#include "cli/device_option.h"
#include "core/device.h"
#include "eval/eval_job.h"
#include "microscale/error.h"

namespace microscale::cli {
namespace {

namespace fs = std::filesystem;

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": cannot open the text file");
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// "\n", "\t", "\r" and "\\" in --split-on, so a blank-line separator can be typed as '\n\n'.
std::string unescape(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 == s.size()) {
            out += s[i];
            continue;
        }
        const char c = s[++i];
        out += c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
    }
    return out;
}

nlohmann::ordered_json to_json(const eval::CheckpointEval& e) {
    return {{"model", e.dir.string()},
            {"dialect", e.dialect},
            {"kv_cache", e.kv_cache},
            {"quantized_weights", e.counts.quantized_weights},
            {"nvfp4_inputs", e.counts.nvfp4_inputs},
            {"fp8_inputs", e.counts.fp8_inputs},
            {"kv_layers", e.counts.kv_layers},
            {"device", e.device},
            {"perplexity", e.result.perplexity()},
            {"nats_per_token", e.result.nats_per_token()},
            {"tokens", e.result.tokens},
            {"windows", e.result.windows},
            {"seconds", e.result.seconds}};
}

}  // namespace

void register_eval(CLI::App& app) {
    struct Options {
        std::string model, baseline, text, act_quant = "on", kv_quant = "on", gpu_precision = "fp32";
        unsigned threads = 0;
        bool json = false;
        eval::PerplexityOptions ppl;
    };
    auto o = std::make_shared<Options>();
    auto* cmd = app.add_subcommand("eval", "Perplexity over a text file (original or quantized checkpoint, as deployed)");
    cmd->footer(
        "\nExamples:\n"
        "  microscale eval --model ./m-nvfp4 --baseline ./m --text wiki.test.raw --bos --max-tokens 100000\n"
        "  microscale eval --model ./stories260K --text val.eot.txt --split-on '<|endoftext|>' --per-document --bos\n"
        "Stream mode (default): the text's tokens in windows of --seq-len every --stride, each window scoring\n"
        "only tokens not scored before (Hugging Face's sliding-window recipe). --per-document: each document's\n"
        "first --seq-len tokens on their own. Recovery = baseline perplexity / quantized perplexity.\n"
        "On a GPU (--device auto/cuda) weight-only scoring runs there; checkpoints whose deployed activation\n"
        "or KV-cache quantizers apply are scored on the CPU (say --act-quant off --kv-quant off for weights only).");
    cmd->add_option("--model", o->model, "Checkpoint directory (original or microscale/ModelOpt/compressed-tensors export)")
        ->required();
    cmd->add_option("--baseline", o->baseline, "Also evaluate this (original) checkpoint and compare");
    cmd->add_option("--text", o->text, "UTF-8 text file")->required();
    cmd->add_option("--seq-len", o->ppl.seq_len, "Text tokens per window (BOS comes on top)")->capture_default_str();
    cmd->add_option("--stride", o->ppl.stride, "Window step in tokens (stream mode)")->capture_default_str();
    cmd->add_option("--max-tokens", o->ppl.max_tokens, "Stop after scoring this many tokens (0 = all)")
        ->capture_default_str();
    cmd->add_flag("--bos", o->ppl.bos, "Prepend BOS to every window");
    cmd->add_option("--split-on", o->ppl.split_on, "Document separator, e.g. '<|endoftext|>' or '\\n\\n' (\\n \\t \\r \\\\ escapes)");
    cmd->add_flag("--per-document", o->ppl.per_document, "Score each document's first --seq-len tokens separately");
    cmd->add_option("--first-document", o->ppl.first_document, "Skip the documents before this index")
        ->capture_default_str();
    cmd->add_option("--batch-tokens", o->ppl.batch_tokens, "Tokens per forward batch")->capture_default_str();
    cmd->add_option("--act-quant", o->act_quant, "Fake-quantize NVFP4 / FP8 linear inputs as deployed (off: weight-only)")
        ->check(CLI::IsMember({"on", "off"}))->capture_default_str();
    cmd->add_option("--kv-quant", o->kv_quant, "Fake-quantize keys/values with k_scale / v_scale (FP8 KV cache)")
        ->check(CLI::IsMember({"on", "off"}))->capture_default_str();
    cmd->add_option("--threads", o->threads, "Worker threads (0 = all cores)")->capture_default_str();
    cmd->add_flag("--json", o->json, "Print the result as JSON on stdout");
    auto device = add_device_option(cmd);
    cmd->add_option("--gpu-precision", o->gpu_precision,
                    "GEMM arithmetic on the GPU: fp32 (no TF32: the CPU's perplexity to ~1e-4) or bf16 (faster; "
                    "bf16 activations as in calibration)")
        ->check(CLI::IsMember({"fp32", "bf16"}))
        ->capture_default_str();
    cmd->final_callback([o, device] {
        o->ppl.split_on = unescape(o->ppl.split_on);
        // The tokenizer travels with the export; fall back to the baseline's.
        fs::path tok_dir = o->model;
        if (!fs::exists(tok_dir / "tokenizer.json") && !o->baseline.empty()) tok_dir = o->baseline;
        const calib::Tokenizer tok = calib::Tokenizer::load(tok_dir);
        const std::string text = read_text(o->text);
        const eval::WindowPlan plan = eval::plan_windows(eval::tokenize_documents(tok, text, o->ppl), o->ppl);
        int64_t doc_tokens = 0;
        for (const auto& d : plan.docs) doc_tokens += static_cast<int64_t>(d.size());
        fmt::print(stderr, "{}: {} tokens; {} windows (seq-len {}, {}{}), {} tokens scored\n", o->text, doc_tokens,
                   plan.windows.size(), o->ppl.seq_len,
                   o->ppl.per_document ? "per document" : fmt::format("stride {}", o->ppl.stride),
                   o->ppl.bos ? ", BOS" : "", plan.scored_tokens);
        if (plan.scored_tokens == 0) throw Error(o->text + ": no token to score");
        const eval::DeployOptions deploy{o->act_quant == "on", o->kv_quant == "on"};
        const core::Device dev = core::resolve_device(*device);
        const eval::EvalDevice on{dev.is_cuda(), o->gpu_precision == "bf16"};
        const auto run = [&](const std::string& dir) {
            const bool tty = isatty(2) != 0;  // progress lines only on a terminal
            const auto progress = [&, tty](int64_t done, int64_t total) {
                if (!tty) return;
                fmt::print(stderr, "\r{}: {}/{} windows", dir, done, total);
                if (done == total) fmt::print(stderr, "\n");
            };
            eval::CheckpointEval e =
                eval::evaluate_checkpoint(dir, plan, o->ppl, tok.bos_id(), deploy, o->threads, progress, on);
            fmt::print(stderr, "{} ({}): {}; scored on {}\n", dir, e.dialect, e.quantizers, e.device);
            if (!e.device_note.empty()) fmt::print(stderr, "note: {}\n", e.device_note);
            return e;
        };
        std::optional<eval::CheckpointEval> base;
        if (!o->baseline.empty()) base = run(o->baseline);
        const eval::CheckpointEval q = run(o->model);
        if (o->json) {
            nlohmann::ordered_json j;
            j["text"] = o->text;
            j["protocol"] = {{"seq_len", o->ppl.seq_len}, {"stride", o->ppl.stride}, {"bos", o->ppl.bos},
                             {"per_document", o->ppl.per_document}, {"split_on", o->ppl.split_on},
                             {"first_document", o->ppl.first_document}, {"max_tokens", o->ppl.max_tokens},
                             {"act_quant", o->act_quant}, {"kv_quant", o->kv_quant}};
            j["model"] = to_json(q);
            if (base) {
                j["baseline"] = to_json(*base);
                j["recovery"] = base->result.perplexity() / q.result.perplexity();
            }
            fmt::print("{}\n", j.dump(2));
            return;
        }
        const auto line = [](const char* label, const eval::CheckpointEval& e) {
            fmt::print("{:<10} perplexity {:>10.4f}  {:.5f} nats/token  {} tokens  {:.1f} s  {}\n", label,
                       e.result.perplexity(), e.result.nats_per_token(), e.result.tokens, e.result.seconds,
                       e.dir.string());
        };
        if (base) line("baseline", *base);
        line(base ? "quantized" : "model", q);
        if (base)
            fmt::print("recovery (baseline ppl / quantized ppl) {:.4f}  perplexity {:+.2f}%\n",
                       base->result.perplexity() / q.result.perplexity(),
                       100.0 * (q.result.perplexity() / base->result.perplexity() - 1.0));
    });
}

}  // namespace microscale::cli
