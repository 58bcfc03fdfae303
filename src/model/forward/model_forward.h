// A Llama-family model on CPU: embeddings -> decoder layers -> final norm -> logits, for a batch of
// token sequences. Weights are read from the mmap'd checkpoint one decoder layer at a time (fp32
// copies, released after the layer ran), and the lm_head in vocabulary slabs, so peak memory is one
// layer plus the activations whatever the model size. The pieces are public so that the
// calibration runner can drive the layers itself (load_layer / run_layer with observers).
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "model/forward/config.h"
#include "model/forward/decoder_layer.h"
#include "model/layout.h"

namespace microscale::model {

using TokenSequences = std::vector<std::vector<int32_t>>;

class ModelForward {
public:
    // Reads dir/config.json and opens the checkpoint in `dir`. threads = 0: all cores.
    explicit ModelForward(const std::filesystem::path& dir, unsigned threads = 0);

    const ForwardConfig& config() const { return config_; }
    const ModelLayout& layout() const { return layout_; }
    const io::Checkpoint& checkpoint() const { return ckpt_; }
    core::ThreadPool& pool() { return pool_; }

    // The batch layout of `seqs` and its embeddings [tokens, H]; ids outside the vocabulary are
    // errors naming the sequence and position.
    TokenBatch batch_of(const TokenSequences& seqs) const;
    std::vector<float> embed(const TokenSequences& seqs) const;
    // embed()'s id check alone (the GPU forward gathers embeddings on the device).
    void check_token_ids(const TokenSequences& seqs) const;

    DecoderLayerWeights load_layer(int layer) const;
    void run_layer(const DecoderLayerWeights& weights, const TokenBatch& batch,
                   std::vector<float>& hidden, LayerObserver* observer = nullptr);

    // Final RMSNorm in place, then logits [tokens, V] (lm_head or the tied embedding).
    void final_norm(std::vector<float>& hidden);
    std::vector<float> lm_head(const std::vector<float>& normed, int64_t tokens);

    // Everything, one layer in memory at a time: logits [tokens, V] in batch row order.
    std::vector<float> forward(const TokenSequences& seqs, LayerObserver* observer = nullptr);

private:
    std::filesystem::path dir_;
    io::Checkpoint ckpt_;
    ForwardConfig config_;
    ModelLayout layout_;
    mutable core::ThreadPool pool_;  // const lookups (embed) use the workers too
};

// Natural-log likelihood helpers on logits rows (fp64 accumulation).
// Sum over t in [1, len) of -log softmax(logits[t-1])[ids[t]] for one sequence's rows.
double sequence_nll(const float* logits, int64_t vocab, const std::vector<int32_t>& ids);

}  // namespace microscale::model
