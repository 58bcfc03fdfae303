// Decoder layer: load (fp32 copies of one layer's tensors) and forward.
//   h = RMSNorm(x); q|k|v = h·Wᵀ (+b); [qwen3: per-head q/k RMSNorm]; RoPE(q, k);
//   x += o_proj(attention(q, k, v)); h = RMSNorm(x); x += down(silu(gate(h)) ⊙ up(h)).
#include "model/forward/decoder_layer.h"

#include <cmath>
#include <cstring>

#include "format/codec/bf16.h"
#include "format/codec/fp16.h"
#include "format/quantize.h"
#include "microscale/error.h"
#include "model/forward/ops.h"

namespace microscale::model {

namespace {

void add_into(float* x, const float* y, int64_t n, core::ThreadPool& pool) {
    constexpr int64_t kBlock = 1 << 14;
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    pool.parallel_for(blocks, [&](int64_t b) {
        const int64_t end = std::min(n, (b + 1) * kBlock);
        for (int64_t i = b * kBlock; i < end; ++i) x[i] += y[i];
    });
}

// The input the GEMM of `l` reads: observed, then possibly replaced (into scratch).
const float* observe(LayerObserver* obs, const LinearWeights& l, const float* x, int64_t rows, int64_t ld,
                     std::vector<float>& scratch) {
    if (!obs) return x;
    obs->linear_input(l, x, rows, ld);
    return obs->transform_linear_input(l, x, rows, ld, scratch);
}

void check_linear(const LinearWeights& l, int64_t out, int64_t in) {
    if (l.out != out || l.in != in)
        throw Error(l.name + ": weight is [" + std::to_string(l.out) + ", " + std::to_string(l.in) +
                    "], the forward pass expects [" + std::to_string(out) + ", " +
                    std::to_string(in) + "]");
}

}  // namespace

int64_t TokenBatch::max_length() const {
    int64_t m = 0;
    for (size_t s = 1; s < offsets.size(); ++s) m = std::max(m, offsets[s] - offsets[s - 1]);
    return m;
}

const LinearWeights* DecoderLayerWeights::find(Role role) const {
    for (const LinearWeights& l : linears)
        if (l.role == role) return &l;
    return nullptr;
}

const LinearWeights& DecoderLayerWeights::at(Role role) const {
    const LinearWeights* l = find(role);
    if (!l)
        throw Error("decoder layer " + std::to_string(layer) + ": no " + std::string(role_name(role)) +
                    " linear");
    return *l;
}

uint64_t DecoderLayerWeights::bytes() const {
    uint64_t n = input_norm.size() + post_attention_norm.size() + q_norm.size() + k_norm.size();
    for (const LinearWeights& l : linears) n += l.weight.size() + l.bias.size();
    return n * sizeof(float);
}

namespace {

void to_f32(const io::Checkpoint& ckpt, const io::TensorInfo& info, const uint8_t* p, uint64_t n,
            float* out) {
    switch (info.dtype) {
        case DType::F32:
            std::memcpy(out, p, n * sizeof(float));
            return;
        case DType::BF16:
        case DType::F16:
            for (uint64_t i = 0; i < n; ++i) {
                uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                out[i] = info.dtype == DType::BF16 ? codec::bf16_to_float(h) : codec::fp16_to_float(h);
            }
            return;
        case DType::F64:
            for (uint64_t i = 0; i < n; ++i) {
                double d;
                std::memcpy(&d, p + 8 * i, 8);
                out[i] = static_cast<float>(d);
            }
            return;
        default:
            throw Error(ckpt.dir().string() + ": " + info.name + " is " +
                        std::string(dtype_name(info.dtype)) +
                        "; the forward pass reads F32, BF16, F16 or F64 tensors");
    }
}

}  // namespace

std::vector<float> load_tensor_f32(const io::Checkpoint& ckpt, const std::string& name, uint64_t numel) {
    const io::TensorRef& ref = ckpt.at(name);
    if (ref.info->numel() != numel)
        throw Error(ckpt.dir().string() + ": " + name + " has " + std::to_string(ref.info->numel()) +
                    " elements (" + io::describe_shape(ref.info->shape) + "), expected " +
                    std::to_string(numel));
    std::vector<float> out(static_cast<size_t>(numel));
    to_f32(ckpt, *ref.info, ckpt.bytes(ref).data(), numel, out.data());
    return out;
}

void load_rows_f32(const io::Checkpoint& ckpt, const std::string& name, int64_t row0, int64_t rows,
                   int64_t cols, float* out) {
    const io::TensorRef& ref = ckpt.at(name);
    const io::TensorInfo& info = *ref.info;
    if (info.shape.size() != 2 || info.shape[1] != cols || row0 < 0 || rows < 0 ||
        row0 + rows > info.shape[0])
        throw Error(ckpt.dir().string() + ": " + name + " " + io::describe_shape(info.shape) +
                    ": cannot read rows [" + std::to_string(row0) + ", " + std::to_string(row0 + rows) +
                    ") of width " + std::to_string(cols));
    const uint64_t esize = dtype_size(info.dtype);
    const uint8_t* p = ckpt.bytes(ref).data() + static_cast<uint64_t>(row0 * cols) * esize;
    to_f32(ckpt, info, p, static_cast<uint64_t>(rows * cols), out);
}

float load_scalar_f32(const io::Checkpoint& ckpt, const std::string& name) {
    return load_tensor_f32(ckpt, name, 1)[0];
}

std::vector<float> load_linear_weight(const io::Checkpoint& ckpt, const LinearModule& m) {
    const uint64_t numel = static_cast<uint64_t>(m.out_features * m.in_features);
    if (!m.quant) return load_tensor_f32(ckpt, m.weight, numel);
    const QuantizedWeightRef& r = *m.quant;
    format::QuantizedWeight q;
    q.format = r.format;
    q.rows = m.out_features;
    q.cols = m.in_features;
    const auto bytes_of = [&](const std::string& name) {
        const auto b = ckpt.bytes(ckpt.at(name));
        return std::vector<uint8_t>(b.begin(), b.end());
    };
    q.data = bytes_of(m.weight);
    if (!r.block_scale.empty()) q.block_scales = bytes_of(r.block_scale);
    if (!r.global_scale.empty()) {
        const float g = load_scalar_f32(ckpt, r.global_scale);
        q.global_scale = r.inverted_global ? 1.0f / g : g;
    }
    return format::dequantize_weight(q);
}

DecoderLayerWeights load_decoder_layer(const io::Checkpoint& ckpt, const ModelLayout& layout,
                                       const ForwardConfig& c, int layer) {
    if (layer < 0 || layer >= c.layers)
        throw Error("decoder layer " + std::to_string(layer) + " out of range [0, " +
                    std::to_string(c.layers) + ")");
    DecoderLayerWeights w;
    w.layer = layer;
    for (size_t i = 0; i < layout.linears.size(); ++i) {
        const LinearModule& m = layout.linears[i];
        if (m.layer != layer) continue;
        LinearWeights l;
        l.linear = static_cast<int>(i);
        l.name = m.name;
        l.role = m.role;
        l.out = m.out_features;
        l.in = m.in_features;
        l.weight = load_linear_weight(ckpt, m);
        if (!m.bias.empty()) l.bias = load_tensor_f32(ckpt, m.bias, static_cast<uint64_t>(l.out));
        w.linears.push_back(std::move(l));
    }
    for (const NormTensor& n : layout.norms) {
        if (n.layer != layer) continue;
        std::vector<float> v = load_tensor_f32(ckpt, n.tensor, static_cast<uint64_t>(n.dim));
        switch (n.role) {
            case NormRole::INPUT: w.input_norm = std::move(v); break;
            case NormRole::POST_ATTENTION: w.post_attention_norm = std::move(v); break;
            case NormRole::ATTN_Q: w.q_norm = std::move(v); break;
            case NormRole::ATTN_K: w.k_norm = std::move(v); break;
            case NormRole::FINAL: break;
        }
    }
    const auto need = [&](const std::vector<float>& v, int64_t dim, const char* what) {
        if (static_cast<int64_t>(v.size()) != dim)
            throw Error(ckpt.dir().string() + ": decoder layer " + std::to_string(layer) + " has no " +
                        what + " of size " + std::to_string(dim));
    };
    need(w.input_norm, c.hidden, "input_layernorm");
    need(w.post_attention_norm, c.hidden, "post_attention_layernorm");
    if (c.qk_norm) {
        need(w.q_norm, c.head_dim, "q_norm");
        need(w.k_norm, c.head_dim, "k_norm");
    }
    const int64_t H = c.hidden, qd = c.q_dim(), kvd = c.kv_dim(), I = c.intermediate;
    if (c.fused_projections) {
        check_linear(w.at(Role::ATTN_QKV), qd + 2 * kvd, H);
        check_linear(w.at(Role::MLP_GATE_UP), 2 * I, H);
    } else {
        check_linear(w.at(Role::ATTN_Q), qd, H);
        check_linear(w.at(Role::ATTN_K), kvd, H);
        check_linear(w.at(Role::ATTN_V), kvd, H);
        check_linear(w.at(Role::MLP_GATE), I, H);
        check_linear(w.at(Role::MLP_UP), I, H);
    }
    check_linear(w.at(Role::ATTN_O), H, qd);
    check_linear(w.at(Role::MLP_DOWN), H, I);
    return w;
}

void run_decoder_layer(const ForwardConfig& c, const DecoderLayerWeights& w, const TokenBatch& batch,
                       float* hidden, core::ThreadPool& pool, LayerObserver* obs) {
    const int64_t T = batch.tokens();
    if (T <= 0) return;
    const int64_t H = c.hidden, qd = c.q_dim(), kvd = c.kv_dim(), I = c.intermediate;
    const int64_t ld_qkv = qd + 2 * kvd;
    const auto bias = [](const LinearWeights& l) { return l.bias.empty() ? nullptr : l.bias.data(); };

    std::vector<float> scratch;  // a transformed linear input (LayerObserver::transform_linear_input)

    // --- attention block ---
    std::vector<float> h(static_cast<size_t>(T * H));
    rms_norm(hidden, T, H, H, w.input_norm.data(), c.rms_norm_eps, h.data(), H, pool);
    std::vector<float> qkv(static_cast<size_t>(T * ld_qkv));
    if (c.fused_projections) {
        const LinearWeights& l = w.at(Role::ATTN_QKV);
        const float* x = observe(obs, l, h.data(), T, H, scratch);
        linear(x, T, H, H, l.weight.data(), l.out, bias(l), qkv.data(), ld_qkv, pool);
    } else {
        const Role roles[3] = {Role::ATTN_Q, Role::ATTN_K, Role::ATTN_V};
        const int64_t cols[3] = {0, qd, qd + kvd};
        for (int i = 0; i < 3; ++i) {
            const LinearWeights& l = w.at(roles[i]);
            const float* x = observe(obs, l, h.data(), T, H, scratch);
            linear(x, T, H, H, l.weight.data(), l.out, bias(l), qkv.data() + cols[i], ld_qkv, pool);
        }
    }
    float* q = qkv.data();
    float* k = q + qd;
    float* v = k + kvd;
    if (c.qk_norm) {
        head_rms_norm(q, T, c.heads, c.head_dim, ld_qkv, w.q_norm.data(), c.rms_norm_eps, pool);
        head_rms_norm(k, T, c.kv_heads, c.head_dim, ld_qkv, w.k_norm.data(), c.rms_norm_eps, pool);
    }
    // RoPE tables depend on the sequence length only for dynamic NTK.
    const bool per_length = c.rope.type == RopeType::DYNAMIC;
    RopeTable shared;
    if (!per_length)
        shared = rope_table(rope_frequencies(c.rope, c.rotary_dim, c.max_position_embeddings,
                                             batch.max_length()),
                            batch.max_length());
    for (int64_t s = 0; s < batch.sequences(); ++s) {
        const int64_t r0 = batch.offsets[static_cast<size_t>(s)];
        const int64_t len = batch.offsets[static_cast<size_t>(s) + 1] - r0;
        if (len <= 0) continue;
        RopeTable own;
        if (per_length)
            own = rope_table(rope_frequencies(c.rope, c.rotary_dim, c.max_position_embeddings, len), len);
        const RopeTable& tab = per_length ? own : shared;
        apply_rope(q + r0 * ld_qkv, len, c.heads, c.head_dim, ld_qkv, tab, 0, pool);
        apply_rope(k + r0 * ld_qkv, len, c.kv_heads, c.head_dim, ld_qkv, tab, 0, pool);
    }
    if (obs) {
        obs->key_values(w.layer, k, v, T, kvd, ld_qkv);
        obs->transform_key_values(w.layer, k, v, T, kvd, ld_qkv);
    }

    std::vector<float> attn(static_cast<size_t>(T * qd));
    const float scaling = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
    causal_attention(q, ld_qkv, k, v, ld_qkv, batch.offsets, c.heads, c.kv_heads, c.head_dim,
                     c.sliding_window.at(static_cast<size_t>(w.layer)), scaling, attn.data(), qd, pool);
    qkv = {};
    {
        const LinearWeights& o = w.at(Role::ATTN_O);
        const float* x = observe(obs, o, attn.data(), T, qd, scratch);
        linear(x, T, qd, qd, o.weight.data(), H, bias(o), h.data(), H, pool);
    }
    attn = {};
    add_into(hidden, h.data(), T * H, pool);

    // --- MLP block ---
    rms_norm(hidden, T, H, H, w.post_attention_norm.data(), c.rms_norm_eps, h.data(), H, pool);
    std::vector<float> gu(static_cast<size_t>(T * 2 * I));
    if (c.fused_projections) {
        const LinearWeights& l = w.at(Role::MLP_GATE_UP);
        const float* x = observe(obs, l, h.data(), T, H, scratch);
        linear(x, T, H, H, l.weight.data(), 2 * I, bias(l), gu.data(), 2 * I, pool);
    } else {
        const LinearWeights& g = w.at(Role::MLP_GATE);
        const LinearWeights& u = w.at(Role::MLP_UP);
        const float* xg = observe(obs, g, h.data(), T, H, scratch);
        linear(xg, T, H, H, g.weight.data(), I, bias(g), gu.data(), 2 * I, pool);
        const float* xu = observe(obs, u, h.data(), T, H, scratch);
        linear(xu, T, H, H, u.weight.data(), I, bias(u), gu.data() + I, 2 * I, pool);
    }
    std::vector<float> act(static_cast<size_t>(T * I));
    swiglu(gu.data(), T, I, act.data(), pool);
    gu = {};
    const LinearWeights& down = w.at(Role::MLP_DOWN);
    const float* xd = observe(obs, down, act.data(), T, I, scratch);
    linear(xd, T, I, I, down.weight.data(), H, bias(down), h.data(), H, pool);
    add_into(hidden, h.data(), T * H, pool);
}

}  // namespace microscale::model
