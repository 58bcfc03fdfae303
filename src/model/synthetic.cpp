// Synthetic Llama-family checkpoint generator (see synthetic.h).
//
// Every value comes from counter-based hashing of (seed, tensor name, row), so a row's values do
// not depend on chunking or threads, and only +,*,/,sqrt are used (IEEE-exact), so the bytes do
// not depend on the libm either.
#include "model/synthetic.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <system_error>

#include <nlohmann/json.hpp>

#include "core/thread_pool.h"
#include "format/codec/bf16.h"
#include "format/codec/fp16.h"
#include "io/safetensors.h"
#include "microscale/error.h"

namespace microscale::model {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kChunkBytes = 8ull << 20;  // rows generated per write

uint64_t mix64(uint64_t x) {  // splitmix64 finaliser
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t hash_name(std::string_view s) {  // FNV-1a
    uint64_t h = 0xCBF29CE484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
    return h;
}

class Rng {
public:
    explicit Rng(uint64_t seed) : state_(seed) {}
    uint64_t next() {
        state_ += 0x9E3779B97F4A7C15ull;
        uint64_t z = state_;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Student-t with 4 degrees of freedom, unit variance (Bailey's polar method: for nu = 4,
    // T = U * sqrt(4 (W^-1/2 - 1) / W) = 2 U r sqrt(r - 1) with r = W^-1/2: square roots only).
    float student_t4() {
        for (;;) {
            const uint64_t x = next();  // two 24-bit uniforms in (-1, 1) from one draw
            const float u = static_cast<float>(static_cast<int32_t>(x >> 40) - (1 << 23)) * (1.0f / (1 << 23));
            const float v = static_cast<float>(static_cast<int32_t>((x >> 16) & 0xFFFFFF) - (1 << 23)) *
                            (1.0f / (1 << 23));
            const float w = u * u + v * v;
            if (w >= 1.0f || w == 0.0f) continue;
            const float r = 1.0f / std::sqrt(w);
            const float t = 2.0f * u * r * std::sqrt(r - 1.0f);
            return t * 0.70710678f;  // Var(t4) = 2
        }
    }

private:
    uint64_t state_;
};

float unit_interval(uint64_t h) { return static_cast<float>(h >> 40) * (1.0f / (1 << 24)); }

enum class Kind : uint8_t { EMBED, LINEAR, NORM, BIAS };
enum class Cols : uint8_t { HIDDEN, OWN };  // whose outlier columns a tensor uses

struct SynthTensor {
    io::TensorDecl decl;
    Kind kind;
    Cols cols;
};

std::string_view family_class(const std::string& mt) {
    if (mt == "llama") return "Llama";
    if (mt == "mistral") return "Mistral";
    if (mt == "qwen2") return "Qwen2";
    if (mt == "qwen3") return "Qwen3";
    return {};
}

std::vector<SynthTensor> synthetic_tensors(const SyntheticSpec& s) {
    const int64_t H = s.hidden, q_out = s.heads * s.head_dim, kv_out = s.kv_heads * s.head_dim;
    std::vector<SynthTensor> out;
    auto add = [&](std::string name, std::vector<int64_t> shape, Kind k, Cols c = Cols::HIDDEN) {
        out.push_back({{std::move(name), s.dtype, std::move(shape)}, k, c});
    };
    add("model.embed_tokens.weight", {s.vocab, H}, Kind::EMBED);
    for (int64_t i = 0; i < s.layers; ++i) {
        const std::string p = "model.layers." + std::to_string(i) + ".";
        add(p + "input_layernorm.weight", {H}, Kind::NORM);
        add(p + "self_attn.q_proj.weight", {q_out, H}, Kind::LINEAR);
        add(p + "self_attn.k_proj.weight", {kv_out, H}, Kind::LINEAR);
        add(p + "self_attn.v_proj.weight", {kv_out, H}, Kind::LINEAR);
        add(p + "self_attn.o_proj.weight", {H, q_out}, Kind::LINEAR, Cols::OWN);
        if (s.model_type == "qwen2") {
            add(p + "self_attn.q_proj.bias", {q_out}, Kind::BIAS);
            add(p + "self_attn.k_proj.bias", {kv_out}, Kind::BIAS);
            add(p + "self_attn.v_proj.bias", {kv_out}, Kind::BIAS);
        }
        if (s.model_type == "qwen3") {
            add(p + "self_attn.q_norm.weight", {s.head_dim}, Kind::NORM);
            add(p + "self_attn.k_norm.weight", {s.head_dim}, Kind::NORM);
        }
        add(p + "post_attention_layernorm.weight", {H}, Kind::NORM);
        add(p + "mlp.gate_proj.weight", {s.ffn, H}, Kind::LINEAR);
        add(p + "mlp.up_proj.weight", {s.ffn, H}, Kind::LINEAR);
        add(p + "mlp.down_proj.weight", {H, s.ffn}, Kind::LINEAR, Cols::OWN);
    }
    add("model.norm.weight", {H}, Kind::NORM);
    if (!s.tied) add("lm_head.weight", {s.vocab, H}, Kind::LINEAR);
    return out;
}

// Per-input-channel gains: a few outlier columns (at least one), the rest 1.
std::vector<float> column_gains(int64_t n, uint64_t seed, uint64_t every, float base, uint64_t spread) {
    std::vector<float> g(static_cast<size_t>(n), 1.0f);
    for (int64_t c = 0; c < n; ++c) {
        const uint64_t h = mix64(seed ^ (static_cast<uint64_t>(c) * 0xD1B54A32D192ED03ull));
        if (h % every == 0) g[static_cast<size_t>(c)] = base + static_cast<float>((h >> 20) % spread);
    }
    g[static_cast<size_t>(mix64(seed) % static_cast<uint64_t>(n))] = base + static_cast<float>(spread - 1);
    return g;
}

void store(DType dt, float v, uint8_t* dst) {
    if (dt == DType::F32) {
        std::memcpy(dst, &v, 4);
        return;
    }
    const uint16_t h = dt == DType::BF16 ? codec::bf16_from_float(v) : codec::fp16_from_float(v);
    std::memcpy(dst, &h, 2);
}

// Fills rows [r0, r1) of `t` into `dst` (row-major, the tensor's dtype).
void fill_row(const SynthTensor& t, uint64_t tseed, const std::vector<float>& gains, int64_t row,
              int64_t cols, uint8_t* dst) {
    const size_t es = dtype_size(t.decl.dtype);
    Rng rng(mix64(tseed ^ (static_cast<uint64_t>(row + 1) * 0x9E3779B97F4A7C15ull)));
    switch (t.kind) {
        case Kind::NORM:  // trained RMSNorm weights: near 1, a little spread
            for (int64_t c = 0; c < cols; ++c)
                store(t.decl.dtype, std::clamp(1.0f + 0.05f * rng.student_t4(), 0.25f, 2.0f), dst + c * es);
            return;
        case Kind::BIAS:
            for (int64_t c = 0; c < cols; ++c) store(t.decl.dtype, 0.05f * rng.student_t4(), dst + c * es);
            return;
        case Kind::EMBED:
        case Kind::LINEAR: {
            // Per-output-channel scale in [0.6, 1.4], and a "hot" row now and then.
            const uint64_t h = mix64(tseed + static_cast<uint64_t>(row) * 0xA24BAED4963EE407ull);
            float scale = 0.6f + 0.8f * unit_interval(h);
            if ((h & 63) == 0) scale *= 2.5f;
            const float sigma = t.kind == Kind::EMBED ? 0.02f : 0.7f / std::sqrt(static_cast<float>(cols));
            scale *= sigma;
            for (int64_t c = 0; c < cols; ++c)
                store(t.decl.dtype, scale * gains[static_cast<size_t>(c)] * rng.student_t4(), dst + c * es);
            return;
        }
    }
}

fs::path checked_output_dir(const fs::path& dir) {
    std::error_code ec;
    if (fs::exists(dir, ec)) {
        if (!fs::is_directory(dir, ec)) throw Error(dir.string() + ": exists and is not a directory");
        if (!fs::is_empty(dir, ec)) throw Error(dir.string() + ": exists and is not empty; refusing to write a synthetic checkpoint into it");
    } else if (!fs::create_directories(dir, ec) && ec) {
        throw Error(dir.string() + ": cannot create: " + ec.message());
    }
    return dir;
}

nlohmann::ordered_json config_json(const SyntheticSpec& s) {
    const std::string cls(family_class(s.model_type));
    const bool qwen = s.model_type == "qwen2" || s.model_type == "qwen3";
    nlohmann::ordered_json c;
    c["architectures"] = {cls + "ForCausalLM"};
    c["model_type"] = s.model_type;
    c["hidden_size"] = s.hidden;
    c["intermediate_size"] = s.ffn;
    c["num_hidden_layers"] = s.layers;
    c["num_attention_heads"] = s.heads;
    c["num_key_value_heads"] = s.kv_heads;
    c["head_dim"] = s.head_dim;
    c["vocab_size"] = s.vocab;
    c["max_position_embeddings"] = 4096;
    c["rms_norm_eps"] = qwen ? 1e-6 : 1e-5;
    c["rope_theta"] = qwen || s.model_type == "mistral" ? 1000000.0 : 10000.0;
    c["rope_scaling"] = nullptr;
    c["hidden_act"] = "silu";
    c["tie_word_embeddings"] = s.tied;
    if (s.model_type == "llama" || s.model_type == "qwen3") c["attention_bias"] = false;
    if (s.model_type == "llama") c["mlp_bias"] = false;
    if (s.model_type != "llama") c["sliding_window"] = nullptr;
    if (qwen) {
        c["use_sliding_window"] = false;
        c["max_window_layers"] = s.layers;
    }
    c["attention_dropout"] = 0.0;
    c["initializer_range"] = 0.02;
    c["bos_token_id"] = 1;
    c["eos_token_id"] = 2;
    c["torch_dtype"] = s.dtype == DType::BF16 ? "bfloat16" : s.dtype == DType::F16 ? "float16" : "float32";
    c["use_cache"] = true;
    return c;
}

}  // namespace

SyntheticSpec resolve_synthetic_spec(const SyntheticSpec& in) {
    SyntheticSpec s = in;
    auto fail = [](const std::string& m) { throw Error("synthetic checkpoint: " + m); };
    if (family_class(s.model_type).empty())
        fail("model_type '" + s.model_type + "' is not one of llama, mistral, qwen2, qwen3");
    if (s.dtype != DType::BF16 && s.dtype != DType::F16 && s.dtype != DType::F32)
        fail("dtype " + std::string(dtype_name(s.dtype)) + " is not BF16, F16 or F32");
    if (s.target_bytes > 0) {
        struct Width { int64_t hidden, heads, kv_heads, ffn; };
        // Real model widths: 260K-ish, TinyLlama-ish (2048/5632), Llama-3-8B/70B-ish.
        static constexpr std::array<Width, 6> kLadder{{{256, 8, 4, 688},
                                                        {512, 8, 4, 1408},
                                                        {1024, 16, 4, 2816},
                                                        {2048, 16, 4, 5632},
                                                        {4096, 32, 8, 14336},
                                                        {8192, 64, 8, 28672}}};
        SyntheticSpec pick = s;
        for (const Width& w : kLadder) {
            SyntheticSpec c = s;
            c.hidden = w.hidden, c.heads = w.heads, c.kv_heads = w.kv_heads, c.ffn = w.ffn;
            c.head_dim = w.hidden / w.heads, c.layers = 0;
            const uint64_t fixed = synthetic_bytes(c);
            c.layers = 1;
            const uint64_t per_layer = synthetic_bytes(c) - fixed;
            // The widest model that still has >= 8 layers at this size (or the narrowest one).
            if (&w != kLadder.data() && fixed + 8 * per_layer > s.target_bytes) break;
            const uint64_t rest = s.target_bytes > fixed ? s.target_bytes - fixed : 0;
            c.layers = std::max<int64_t>(1, static_cast<int64_t>((rest + per_layer - 1) / per_layer));
            pick = c;
        }
        s = pick;
    }
    if (s.head_dim == 0 && s.heads > 0) {
        if (s.hidden % s.heads != 0) fail("hidden " + std::to_string(s.hidden) + " is not a multiple of heads " + std::to_string(s.heads) + "; give head_dim");
        s.head_dim = s.hidden / s.heads;
    }
    auto positive = [&](int64_t v, const char* what, int64_t lo) {
        if (v < lo || v > (int64_t{1} << 24)) fail(std::string(what) + " = " + std::to_string(v) + " is out of range");
    };
    positive(s.hidden, "hidden", 1);
    positive(s.layers, "layers", 0);
    positive(s.heads, "heads", 1);
    positive(s.kv_heads, "kv_heads", 1);
    positive(s.head_dim, "head_dim", 1);
    positive(s.ffn, "ffn", 1);
    positive(s.vocab, "vocab", 1);
    if (s.heads % s.kv_heads != 0)
        fail("heads " + std::to_string(s.heads) + " is not a multiple of kv_heads " + std::to_string(s.kv_heads));
    if (s.max_shard_bytes == 0) fail("max_shard_bytes must be > 0");
    return s;
}

uint64_t synthetic_bytes(const SyntheticSpec& s) {
    uint64_t total = 0;
    for (const SynthTensor& t : synthetic_tensors(s)) total += io::tensor_nbytes(t.decl, "synthetic checkpoint");
    return total;
}

SyntheticResult write_synthetic_llama(const fs::path& dir_in, const SyntheticSpec& spec) {
    const SyntheticSpec s = resolve_synthetic_spec(spec);
    const fs::path dir = checked_output_dir(dir_in);
    const std::vector<SynthTensor> tensors = synthetic_tensors(s);
    std::vector<io::TensorDecl> decls;
    decls.reserve(tensors.size());
    for (const auto& t : tensors) decls.push_back(t.decl);

    io::ShardedWriter writer(dir, decls,
                             {{"format", "pt"}, {"microscale_synthetic_seed", std::to_string(s.seed)}},
                             s.max_shard_bytes);
    core::ThreadPool pool(s.threads);
    // The same outlier hidden channels in every layer, as the residual stream of a real model has.
    const std::vector<float> hidden_gains = column_gains(s.hidden, mix64(s.seed ^ 0x68696464656Eull), 256, 8.0f, 25);
    std::vector<float> embed_gains = hidden_gains;
    for (float& g : embed_gains) g = 1.0f + (g - 1.0f) * 0.25f;
    std::vector<uint8_t> buf;
    for (const SynthTensor& t : tensors) {
        const uint64_t tseed = mix64(s.seed ^ hash_name(t.decl.name));
        const int64_t rows = t.decl.shape.size() == 2 ? t.decl.shape[0] : 1;
        const int64_t cols = t.decl.shape.back();
        const size_t row_bytes = static_cast<size_t>(cols) * dtype_size(s.dtype);
        std::vector<float> own;
        const std::vector<float>* gains = &hidden_gains;
        if (t.kind == Kind::EMBED) gains = &embed_gains;
        else if (t.cols == Cols::OWN) gains = &(own = column_gains(cols, tseed, 512, 4.0f, 13));
        const int64_t chunk_rows = std::max<int64_t>(1, static_cast<int64_t>(kChunkBytes / std::max<size_t>(row_bytes, 1)));
        for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
            const int64_t n = std::min(chunk_rows, rows - r0);
            buf.resize(static_cast<size_t>(n) * row_bytes);
            pool.parallel_for(n, [&](int64_t i) {
                fill_row(t, tseed, *gains, r0 + i, cols, buf.data() + static_cast<size_t>(i) * row_bytes);
            });
            writer.append(t.decl.name, buf);
        }
    }
    writer.commit();

    io::write_file_atomic(dir / "generation_config.json",
                          nlohmann::ordered_json{{"bos_token_id", 1}, {"eos_token_id", 2}, {"do_sample", false}}.dump(2) + "\n");
    io::write_file_atomic(dir / "config.json", config_json(s).dump(2) + "\n");
    return {s, writer.plan().total_bytes, tensors.size(), writer.plan().files.size()};
}

}  // namespace microscale::model
