// Qwen3 (architectures.md §3): Llama plus per-head RMSNorms self_attn.q_norm / k_norm [head_dim]
// (passthrough norms, not linears); head_dim is explicit and defaults to 128 as in Qwen3Config.
#include "model/arch.h"

namespace microscale::model {

ModelLayout build_qwen3(const ArchInput& in) {
    LlamaFamilyTraits t;
    t.architecture = "qwen3";
    t.attention_class = "Qwen3Attention";
    t.qk_norm = true;
    t.default_head_dim = 128;
    return build_llama_family(in, t);
}

}  // namespace microscale::model
