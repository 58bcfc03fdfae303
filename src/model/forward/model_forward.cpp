// Whole-model forward: embeddings, layers one at a time, final norm, lm_head in vocabulary slabs.
#include "model/forward/model_forward.h"

#include <algorithm>
#include <cmath>

#include "microscale/error.h"
#include "model/forward/ops.h"

namespace microscale::model {

namespace {

constexpr int64_t kHeadSlabRows = 4096;  // lm_head rows converted to fp32 at a time

const LinearModule& linear_with_role(const ModelLayout& layout, Role role, const std::string& dir) {
    for (const LinearModule& m : layout.linears)
        if (m.role == role) return m;
    throw Error(dir + ": the model has no " + std::string(role_name(role)));
}

const NormTensor& final_norm_tensor(const ModelLayout& layout, const std::string& dir) {
    for (const NormTensor& n : layout.norms)
        if (n.role == NormRole::FINAL) return n;
    throw Error(dir + ": the model has no final norm");
}

}  // namespace

ModelForward::ModelForward(const std::filesystem::path& dir, unsigned threads)
    : dir_(dir), ckpt_(io::Checkpoint::open(dir)), pool_(threads) {
    const std::filesystem::path cfg_path = dir / "config.json";
    const nlohmann::json cfg = load_config_json(cfg_path);
    config_ = parse_forward_config(cfg, cfg_path.string());
    layout_ = describe_model(cfg, ckpt_, cfg_path.string(), /*accept_quantized=*/true);
    if (layout_.generic_fallback)
        throw Error(cfg_path.string() + ": model_type '" + layout_.model_type +
                    "' has no architecture table for the forward pass");
}

TokenBatch ModelForward::batch_of(const TokenSequences& seqs) const {
    TokenBatch b;
    for (const auto& s : seqs) b.add(static_cast<int64_t>(s.size()));
    return b;
}

std::vector<float> ModelForward::embed(const TokenSequences& seqs) const {
    const int64_t H = config_.hidden;
    const LinearModule& e = linear_with_role(layout_, Role::EMBED, dir_.string());
    if (e.quant) throw Error(dir_.string() + ": a quantized embedding is not supported by the forward pass");
    check_token_ids(seqs);
    int64_t tokens = 0;
    for (const auto& s : seqs) tokens += static_cast<int64_t>(s.size());
    std::vector<float> x(static_cast<size_t>(tokens * H));
    std::vector<int32_t> ids;
    ids.reserve(static_cast<size_t>(tokens));
    for (const auto& s : seqs) ids.insert(ids.end(), s.begin(), s.end());
    // Rows in parallel: a 32k-token calibration batch is 0.2 s of lookups on one thread.
    pool_.parallel_for((tokens + 255) / 256, [&](int64_t chunk) {
        const int64_t r1 = std::min(tokens, (chunk + 1) * 256);
        for (int64_t r = chunk * 256; r < r1; ++r)
            load_rows_f32(ckpt_, e.weight, ids[static_cast<size_t>(r)], 1, H, x.data() + r * H);
    });
    return x;
}

void ModelForward::check_token_ids(const TokenSequences& seqs) const {
    const int64_t V = config_.vocab;
    for (size_t s = 0; s < seqs.size(); ++s)
        for (size_t t = 0; t < seqs[s].size(); ++t) {
            const int32_t id = seqs[s][t];
            if (id < 0 || id >= V)
                throw Error("token id " + std::to_string(id) + " at sequence " + std::to_string(s) +
                            ", position " + std::to_string(t) + " is outside the vocabulary [0, " +
                            std::to_string(V) + ")");
        }
}

DecoderLayerWeights ModelForward::load_layer(int layer) const {
    return load_decoder_layer(ckpt_, layout_, config_, layer);
}

void ModelForward::run_layer(const DecoderLayerWeights& weights, const TokenBatch& batch,
                             std::vector<float>& hidden, LayerObserver* observer) {
    if (static_cast<int64_t>(hidden.size()) != batch.tokens() * config_.hidden)
        throw Error("run_layer: hidden has " + std::to_string(hidden.size()) + " values, expected " +
                    std::to_string(batch.tokens()) + " x " + std::to_string(config_.hidden));
    run_decoder_layer(config_, weights, batch, hidden.data(), pool_, observer);
}

void ModelForward::final_norm(std::vector<float>& hidden) {
    const int64_t H = config_.hidden;
    const NormTensor& n = final_norm_tensor(layout_, dir_.string());
    const std::vector<float> w = load_tensor_f32(ckpt_, n.tensor, static_cast<uint64_t>(H));
    const int64_t rows = static_cast<int64_t>(hidden.size()) / H;
    rms_norm(hidden.data(), rows, H, H, w.data(), config_.rms_norm_eps, hidden.data(), H, pool_);
}

std::vector<float> ModelForward::lm_head(const std::vector<float>& normed, int64_t tokens) {
    const int64_t H = config_.hidden, V = config_.vocab;
    const LinearModule& head = linear_with_role(layout_, Role::LM_HEAD, dir_.string());
    // Tied: lm_head.weight is the embedding (architectures.md §1.4).
    const std::string weight =
        head.weight.empty() ? linear_with_role(layout_, Role::EMBED, dir_.string()).weight : head.weight;
    std::vector<float> logits(static_cast<size_t>(tokens * V));
    if (head.quant) {  // a quantized lm_head is decoded whole (it is one [V, H] tensor)
        const std::vector<float> w = load_linear_weight(ckpt_, head);
        linear(normed.data(), tokens, H, H, w.data(), V, nullptr, logits.data(), V, pool_);
        return logits;
    }
    std::vector<float> slab;
    for (int64_t v0 = 0; v0 < V; v0 += kHeadSlabRows) {
        const int64_t rows = std::min(kHeadSlabRows, V - v0);
        slab.resize(static_cast<size_t>(rows * H));
        load_rows_f32(ckpt_, weight, v0, rows, H, slab.data());
        linear(normed.data(), tokens, H, H, slab.data(), rows, nullptr, logits.data() + v0, V, pool_);
    }
    return logits;
}

std::vector<float> ModelForward::forward(const TokenSequences& seqs, LayerObserver* observer) {
    const TokenBatch batch = batch_of(seqs);
    std::vector<float> hidden = embed(seqs);
    for (int layer = 0; layer < config_.layers; ++layer) {
        const DecoderLayerWeights w = load_layer(layer);
        run_layer(w, batch, hidden, observer);
    }
    final_norm(hidden);
    return lm_head(hidden, batch.tokens());
}

double sequence_nll(const float* logits, int64_t vocab, const std::vector<int32_t>& ids) {
    double nll = 0.0;
    for (size_t t = 1; t < ids.size(); ++t) {
        if (ids[t] < 0 || ids[t] >= vocab)
            throw Error("sequence_nll: token id " + std::to_string(ids[t]) + " outside the vocabulary");
        const float* row = logits + static_cast<int64_t>(t - 1) * vocab;
        const float m = *std::max_element(row, row + vocab);
        double sum = 0.0;
        for (int64_t j = 0; j < vocab; ++j) sum += std::exp(static_cast<double>(row[j]) - m);
        nll += std::log(sum) + m - static_cast<double>(row[ids[t]]);
    }
    return nll;
}

}  // namespace microscale::model
