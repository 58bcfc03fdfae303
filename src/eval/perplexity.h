// Perplexity of a causal LM over a text (`microscale eval`): tokenization into documents, the
// window plan of Hugging Face's sliding-window recipe, and the scoring loop over the CPU forward
// pass (original checkpoints and quantized exports alike; a LayerObserver applies deployment's
// activation quantizers).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "calib/tokenizer.h"
#include "model/forward/model_forward.h"

namespace microscale::eval {

struct PerplexityOptions {
    int64_t seq_len = 512;       // text tokens per window (BOS, when prepended, comes on top)
    int64_t stride = 512;        // window start step (stream mode)
    int64_t max_tokens = 0;      // > 0: stop after scoring this many tokens
    bool bos = false;            // prepend the tokenizer's BOS to every window
    std::string split_on;        // document separator ("" : the whole file is one document)
    bool per_document = false;   // score each document's first seq_len tokens on its own
    int64_t first_document = 0;  // skip documents before this index
    int64_t batch_tokens = 4096; // tokens per forward batch (several windows)
};

// Documents of `text`: split on `split_on` (when not empty; pieces that are empty or all
// whitespace dropped), from `first_document` on, each tokenized without special tokens.
std::vector<std::vector<int32_t>> tokenize_documents(const calib::Tokenizer& tok, std::string_view text,
                                                     const PerplexityOptions& opts);

// One forward pass: document `doc`'s tokens [begin, end) (after BOS when bos), of which the
// targets [score_begin, end) are scored (each predicted from the tokens before it in the window).
struct Window {
    int64_t doc = 0, begin = 0, end = 0, score_begin = 0;
    int64_t scored() const { return end - score_begin; }
};

// Stream mode (per_document false): the documents' tokens concatenated, then HF's recipe:
// for begin = 0, stride, ...: end = min(begin + seq_len, n); the window scores the tokens not
// scored before, [max(prev_end, begin + (bos ? 0 : 1)), end); stop once end == n. Per-document
// mode: one window [0, min(seq_len, len)) per document. max_tokens trims the last window's
// scored range and drops the rest. Concatenated streams are returned as a single document.
struct WindowPlan {
    std::vector<std::vector<int32_t>> docs;  // what the windows index
    std::vector<Window> windows;
    int64_t scored_tokens = 0;
};
WindowPlan plan_windows(std::vector<std::vector<int32_t>> docs, const PerplexityOptions& opts);

struct PerplexityResult {
    double nll = 0.0;        // summed natural-log loss
    int64_t tokens = 0;      // scored tokens
    int64_t windows = 0;
    int64_t documents = 0;
    double seconds = 0.0;
    double nats_per_token() const { return tokens ? nll / static_cast<double>(tokens) : 0.0; }
    double perplexity() const;
};

// Scores `plan` with `model` (observer may be null). bos_id is used when opts.bos (must be >= 0).
// on_progress(windows done, windows total).
PerplexityResult evaluate_perplexity(model::ModelForward& model, const WindowPlan& plan, const PerplexityOptions& opts,
                                     int32_t bos_id, model::LayerObserver* observer = nullptr,
                                     const std::function<void(int64_t, int64_t)>& on_progress = {});

// The same scoring over any forward pass: logits [tokens, vocab] of a batch, in batch row order
// (the GPU forward plugs in here).
using LogitsFn = std::function<std::vector<float>(const model::TokenSequences&)>;
PerplexityResult evaluate_perplexity(const LogitsFn& forward, int64_t vocab, const WindowPlan& plan,
                                     const PerplexityOptions& opts, int32_t bos_id,
                                     const std::function<void(int64_t, int64_t)>& on_progress = {});

}  // namespace microscale::eval
