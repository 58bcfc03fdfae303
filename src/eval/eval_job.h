// `microscale eval` on one checkpoint directory: open it, set up deployment's quantizers from
// what its export declares, score a window plan.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "eval/act_quant.h"
#include "eval/perplexity.h"

namespace microscale::eval {

// Where the forward pass runs. On the GPU, FP32 GEMMs (no TF32) and the fp32 attention kernel
// reproduce the CPU's perplexity to ~1e-4 relative; bf16 is the faster calibration-forward
// arithmetic (docs/GPU_FORWARD.md). Deployed activation / KV quantizers exist only on the CPU:
// such checkpoints are scored there.
struct EvalDevice {
    bool gpu = false;
    bool bf16 = false;
};

struct CheckpointEval {
    std::filesystem::path dir;
    std::string device;    // what scored it: "cpu", "cuda (fp32 GEMMs)", ...
    std::string device_note;  // why a GPU request ran on the CPU ("" otherwise)
    std::string dialect;   // "unquantized", "modelopt", "compressed-tensors"
    std::string kv_cache;  // kv_cache_quant_algo as declared ("none" when absent)
    std::string quantizers;  // DeployedQuantization::describe()
    DeployCounts counts;
    PerplexityResult result;
};

// The KV-cache algorithm `dir` declares: hf_quant_config.json quantization.kv_cache_quant_algo,
// config.json quantization_config (ModelOpt's kv_cache_quant_algo or compressed-tensors'
// kv_cache_scheme: FP8 when num_bits 8 / type float); "none" when absent.
std::string declared_kv_cache(const std::filesystem::path& dir);

// Errors: a KV algorithm other than FP8 while deploy.kv_quant is on.
CheckpointEval evaluate_checkpoint(const std::filesystem::path& dir, const WindowPlan& plan,
                                   const PerplexityOptions& opts, int32_t bos_id, const DeployOptions& deploy,
                                   unsigned threads, const std::function<void(int64_t, int64_t)>& on_progress = {},
                                   const EvalDevice& device = {});

}  // namespace microscale::eval
