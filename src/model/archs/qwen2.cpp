// Qwen2 (architectures.md §3): Llama plus q/k/v biases that are always present (hard-coded in
// transformers, not config-driven); o_proj and the MLP have none.
#include "model/arch.h"

namespace microscale::model {

ModelLayout build_qwen2(const ArchInput& in) {
    LlamaFamilyTraits t;
    t.architecture = "qwen2";
    t.attention_class = "Qwen2Attention";
    t.qkv_bias_always = true;
    t.reads_attention_bias = false;
    return build_llama_family(in, t);
}

}  // namespace microscale::model
