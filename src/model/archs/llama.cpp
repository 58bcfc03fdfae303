// Llama (architectures.md §2) and the builder shared by its dense relatives (§3: mistral, qwen2,
// qwen3), which differ only in the traits passed in.
//
// On disk, per layer i (prefix model.layers.i.):
//   input_layernorm.weight [H]            post_attention_layernorm.weight [H]
//   self_attn.{q,k,v,o}_proj.weight       q [nh*d, H], k/v [nkv*d, H], o [H, nh*d]
//   self_attn.{q,k,v}_proj.bias           qwen2 always; attention_bias (llama/mistral/qwen3, +o)
//   self_attn.{q,k}_norm.weight [d]       qwen3
//   mlp.{gate,up}_proj.weight [I, H]      mlp.down_proj.weight [H, I]   (+ .bias if mlp_bias)
// plus model.embed_tokens.weight [V, H], model.norm.weight [H], lm_head.weight [V, H] (absent
// when tie_word_embeddings).
#include "microscale/error.h"
#include "model/arch.h"

namespace microscale::model {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

ModelLayout build_llama_family(const ArchInput& in, const LlamaFamilyTraits& t) {
    const int64_t H = config_int(in, "hidden_size", std::nullopt);
    const int64_t L = config_int(in, "num_hidden_layers", std::nullopt, 0);
    const int64_t nh = config_int(in, "num_attention_heads", std::nullopt);
    const int64_t nkv = config_int(in, "num_key_value_heads", nh);  // null -> nh (MHA)
    const int64_t I = config_int(in, "intermediate_size", std::nullopt);
    const int64_t V = config_int(in, "vocab_size", std::nullopt);
    if (nh % nkv != 0)
        throw Error(in.config_path + ": num_attention_heads=" + std::to_string(nh) +
                    " is not a multiple of num_key_value_heads=" + std::to_string(nkv));
    std::optional<int64_t> d_default;
    if (t.default_head_dim > 0) d_default = t.default_head_dim;
    else if (H % nh == 0) d_default = H / nh;
    auto hd = in.config.find("head_dim");
    if (!d_default && (hd == in.config.end() || hd->is_null()))
        throw Error(in.config_path + ": no head_dim and hidden_size=" + std::to_string(H) +
                    " is not a multiple of num_attention_heads=" + std::to_string(nh));
    const int64_t d = config_int(in, "head_dim", d_default);
    const bool tied = config_bool(in, "tie_word_embeddings", false);
    const bool attn_bias = t.reads_attention_bias && config_bool(in, "attention_bias", false);
    const bool mlp_bias = t.reads_mlp_bias && config_bool(in, "mlp_bias", false);
    // Products stay far below 2^62: every factor is < 2^31 and shapes multiply at most two.
    const int64_t q_out = nh * d, kv_out = nkv * d;

    std::string dims = "hidden_size=" + std::to_string(H) + ", intermediate_size=" + std::to_string(I) +
                       ", num_attention_heads=" + std::to_string(nh) +
                       ", num_key_value_heads=" + std::to_string(nkv) + ", head_dim=" + std::to_string(d) +
                       ", vocab_size=" + std::to_string(V) + ", num_hidden_layers=" + std::to_string(L);
    LayoutBuilder b(in, t.architecture, std::move(dims));

    b.add_linear("model.embed_tokens", Role::EMBED, "nn.Embedding", -1, V, H);
    for (int64_t li = 0; li < L; ++li) {
        const int layer = static_cast<int>(li);
        const std::string p = "model.layers." + std::to_string(li) + ".";
        const std::string attn = p + "self_attn";
        b.add_norm(p + "input_layernorm.weight", NormRole::INPUT, layer, H);
        int k = -1, v = -1;
        if (t.fused_projections) {
            b.add_linear(attn + ".qkv_proj", Role::ATTN_QKV, "nn.Linear", layer, q_out + 2 * kv_out, H);
        } else {
            const int q = b.add_linear(attn + ".q_proj", Role::ATTN_Q, "nn.Linear", layer, q_out, H);
            k = b.add_linear(attn + ".k_proj", Role::ATTN_K, "nn.Linear", layer, kv_out, H);
            v = b.add_linear(attn + ".v_proj", Role::ATTN_V, "nn.Linear", layer, kv_out, H);
            if (t.qkv_bias_always || attn_bias)
                for (int x : {q, k, v}) b.add_bias(x);
            b.add_group("qkv", {q, k, v});
        }
        const int o = b.add_linear(attn + ".o_proj", Role::ATTN_O, "nn.Linear", layer, H, q_out);
        if (attn_bias) b.add_bias(o);
        if (t.qk_norm) {
            b.add_norm(attn + ".q_norm.weight", NormRole::ATTN_Q, layer, d);
            b.add_norm(attn + ".k_norm.weight", NormRole::ATTN_K, layer, d);
        }
        b.add_norm(p + "post_attention_layernorm.weight", NormRole::POST_ATTENTION, layer, H);
        if (t.fused_projections) {
            b.add_linear(p + "mlp.gate_up_proj", Role::MLP_GATE_UP, "nn.Linear", layer, 2 * I, H);
            b.add_linear(p + "mlp.down_proj", Role::MLP_DOWN, "nn.Linear", layer, H, I);
        } else {
            const int g = b.add_linear(p + "mlp.gate_proj", Role::MLP_GATE, "nn.Linear", layer, I, H);
            const int u = b.add_linear(p + "mlp.up_proj", Role::MLP_UP, "nn.Linear", layer, I, H);
            const int dn = b.add_linear(p + "mlp.down_proj", Role::MLP_DOWN, "nn.Linear", layer, H, I);
            if (mlp_bias)
                for (int x : {g, u, dn}) b.add_bias(x);
            b.add_group("gate_up", {g, u});
        }
        b.add_attention(attn, t.attention_class, layer, k, v);
    }
    b.add_norm("model.norm.weight", NormRole::FINAL, -1, H);
    if (tied) {
        // A tied checkpoint that still stores lm_head.weight: transformers re-ties it to the
        // embedding, so the stored copy is only carried along.
        if (in.ckpt.find("lm_head.weight")) b.add_passthrough("lm_head.weight", {V, H});
        b.add_tied_linear("lm_head", Role::LM_HEAD, "nn.Linear", -1, V, H);
    } else {
        b.add_linear("lm_head", Role::LM_HEAD, "nn.Linear", -1, V, H);
    }
    // Non-persistent RoPE buffers that old exports sometimes contain (architectures.md §1.2).
    return b.finish([](const io::TensorInfo& x) { return ends_with(x.name, ".rotary_emb.inv_freq"); });
}

ModelLayout build_llama(const ArchInput& in) {
    LlamaFamilyTraits t;
    t.architecture = "llama";
    t.attention_class = "LlamaAttention";
    t.reads_mlp_bias = true;
    return build_llama_family(in, t);
}

}  // namespace microscale::model
