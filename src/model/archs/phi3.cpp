// Phi-3 (architectures.md §3): Llama with fused projections on disk and in memory,
// self_attn.qkv_proj [nh*d + 2*nkv*d, H] (rows q|k|v) and mlp.gate_up_proj [2I, H] (rows
// gate|up); no biases. Partial rotary and longrope change the math, not the tensors.
#include "model/arch.h"

namespace microscale::model {

ModelLayout build_phi3(const ArchInput& in) {
    LlamaFamilyTraits t;
    t.architecture = "phi3";
    t.attention_class = "Phi3Attention";
    t.reads_attention_bias = false;
    t.fused_projections = true;
    return build_llama_family(in, t);
}

}  // namespace microscale::model
