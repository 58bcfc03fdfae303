// Mistral (architectures.md §3): Llama's tensors; head_dim may differ from hidden/heads
// (Mistral-Nemo: q_proj [4096, 5120]). Sliding window changes the math, not the tensors.
#include "model/arch.h"

namespace microscale::model {

ModelLayout build_mistral(const ArchInput& in) {
    LlamaFamilyTraits t;
    t.architecture = "mistral";
    t.attention_class = "MistralAttention";
    return build_llama_family(in, t);
}

}  // namespace microscale::model
