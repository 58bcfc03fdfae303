#include "eval/eval_job.h"

#include <fmt/core.h>

#include "cuda/forward/gpu_forward.h"
#include "export/inspect.h"
#include "microscale/error.h"

namespace microscale::eval {

namespace fs = std::filesystem;

std::string declared_kv_cache(const fs::path& dir) {
    const auto algo_of = [](const nlohmann::json& j, const char* key) -> std::string {
        const auto it = j.find(key);
        return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (const auto hf = exporter::read_json_file(dir / "hf_quant_config.json")) {
        const auto q = hf->find("quantization");
        if (q != hf->end() && q->is_object()) {
            const std::string a = algo_of(*q, "kv_cache_quant_algo");
            return a.empty() ? "none" : a;
        }
    }
    if (const auto cfg = exporter::read_json_file(dir / "config.json")) {
        const auto qc = cfg->find("quantization_config");
        if (qc != cfg->end() && qc->is_object()) {
            const std::string a = algo_of(*qc, "kv_cache_quant_algo");
            if (!a.empty()) return a;
            const auto kv = qc->find("kv_cache_scheme");
            if (kv != qc->end() && kv->is_object())
                return kv->value("num_bits", 0) == 8 && kv->value("type", std::string()) == "float"
                           ? "FP8"
                           : kv->dump();
        }
    }
    return "none";
}

CheckpointEval evaluate_checkpoint(const fs::path& dir, const WindowPlan& plan, const PerplexityOptions& opts,
                                   int32_t bos_id, const DeployOptions& deploy, unsigned threads,
                                   const std::function<void(int64_t, int64_t)>& on_progress, const EvalDevice& device) {
    CheckpointEval e;
    e.dir = dir;
    e.dialect = exporter::inspect_checkpoint(dir).dialect;
    e.kv_cache = declared_kv_cache(dir);
    if (deploy.kv_quant && e.kv_cache != "none" && e.kv_cache != "FP8")
        throw Error(fmt::format("{}: KV cache '{}' is not emulated by eval (FP8 only); pass --kv-quant off",
                                dir.string(), e.kv_cache));
    model::ModelForward model(dir, threads);
    DeployedQuantization observer(model.layout(), model.checkpoint(), deploy);
    e.counts = observer.counts();
    e.quantizers = observer.describe();
    const bool active = e.counts.nvfp4_inputs + e.counts.fp8_inputs + e.counts.kv_layers > 0;
    e.device = "cpu";
    if (device.gpu && active)
        e.device_note = "activation / KV-cache quantizers are emulated on the CPU only: scored on the CPU "
                        "(--act-quant off --kv-quant off scores the weights alone on the GPU)";
    if (device.gpu && !active) {
        cuda::GpuForwardOptions o;
        o.precision = device.bf16 ? cuda::GemmPrecision::BF16 : cuda::GemmPrecision::FP32;
        cuda::GpuModelForward gpu(model, o);
        e.device = device.bf16 ? "cuda (bf16 GEMMs)" : "cuda (fp32 GEMMs)";
        e.result = evaluate_perplexity([&](const model::TokenSequences& seqs) { return gpu.forward(seqs); },
                                       model.config().vocab, plan, opts, bos_id, on_progress);
        return e;
    }
    e.result = evaluate_perplexity(model, plan, opts, bos_id, active ? &observer : nullptr, on_progress);
    return e;
}

}  // namespace microscale::eval
