// Sliding-window perplexity over the layer-at-a-time CPU forward pass.
#include "eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fmt/core.h>

#include "microscale/error.h"

namespace microscale::eval {

namespace {

bool all_space(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; });
}

}  // namespace

double PerplexityResult::perplexity() const { return std::exp(nats_per_token()); }

std::vector<std::vector<int32_t>> tokenize_documents(const calib::Tokenizer& tok, std::string_view text,
                                                     const PerplexityOptions& opts) {
    std::vector<std::string_view> pieces;
    if (opts.split_on.empty()) {
        pieces.push_back(text);
    } else {
        size_t pos = 0;
        while (true) {
            const size_t hit = text.find(opts.split_on, pos);
            const std::string_view piece = text.substr(pos, hit == std::string_view::npos ? std::string_view::npos : hit - pos);
            if (!all_space(piece)) pieces.push_back(piece);
            if (hit == std::string_view::npos) break;
            pos = hit + opts.split_on.size();
        }
    }
    if (opts.first_document < 0) throw Error("--first-document must be >= 0");
    std::vector<std::vector<int32_t>> docs;
    for (size_t i = static_cast<size_t>(opts.first_document); i < pieces.size(); ++i) {
        // Separator-split documents lose the separator's surrounding whitespace, as
        // `text.split(sep)` + `strip()` evaluations do.
        std::string_view p = pieces[i];
        if (!opts.split_on.empty()) {
            while (!p.empty() && (p.front() == '\n' || p.front() == ' ' || p.front() == '\r')) p.remove_prefix(1);
            while (!p.empty() && (p.back() == '\n' || p.back() == ' ' || p.back() == '\r')) p.remove_suffix(1);
        }
        docs.push_back(tok.encode(p, /*add_special_tokens=*/false));
    }
    return docs;
}

WindowPlan plan_windows(std::vector<std::vector<int32_t>> docs, const PerplexityOptions& opts) {
    if (opts.seq_len < 1) throw Error("--seq-len must be >= 1");
    if (!opts.per_document && (opts.stride < 1 || opts.stride > opts.seq_len))
        throw Error(fmt::format("--stride {} must be in [1, --seq-len {}]", opts.stride, opts.seq_len));
    if (opts.max_tokens < 0) throw Error("--max-tokens must be >= 0");
    WindowPlan plan;
    const int64_t first = opts.bos ? 0 : 1;  // without BOS a window's first token has no context
    if (opts.per_document) {
        plan.docs = std::move(docs);
        for (size_t d = 0; d < plan.docs.size(); ++d) {
            const int64_t end = std::min<int64_t>(opts.seq_len, static_cast<int64_t>(plan.docs[d].size()));
            if (end > first) plan.windows.push_back({static_cast<int64_t>(d), 0, end, first});
        }
    } else {
        std::vector<int32_t> stream;
        for (const auto& d : docs) stream.insert(stream.end(), d.begin(), d.end());
        const int64_t n = static_cast<int64_t>(stream.size());
        plan.docs.push_back(std::move(stream));
        int64_t prev_end = 0;
        for (int64_t begin = 0; begin < n; begin += opts.stride) {
            const int64_t end = std::min(begin + opts.seq_len, n);
            const int64_t score_begin = std::max(prev_end, begin + first);
            if (end > score_begin) plan.windows.push_back({0, begin, end, score_begin});
            prev_end = end;
            if (end == n) break;
        }
    }
    for (size_t i = 0; i < plan.windows.size(); ++i) {
        Window& w = plan.windows[i];
        if (opts.max_tokens > 0 && plan.scored_tokens + w.scored() >= opts.max_tokens) {
            w.end = w.score_begin + (opts.max_tokens - plan.scored_tokens);
            plan.windows.resize(i + 1);
            plan.scored_tokens = opts.max_tokens;
            break;
        }
        plan.scored_tokens += w.scored();
    }
    return plan;
}

PerplexityResult evaluate_perplexity(model::ModelForward& model, const WindowPlan& plan, const PerplexityOptions& opts,
                                     int32_t bos_id, model::LayerObserver* observer,
                                     const std::function<void(int64_t, int64_t)>& on_progress) {
    return evaluate_perplexity([&](const model::TokenSequences& seqs) { return model.forward(seqs, observer); },
                               model.config().vocab, plan, opts, bos_id, on_progress);
}

PerplexityResult evaluate_perplexity(const LogitsFn& forward, int64_t vocab, const WindowPlan& plan,
                                     const PerplexityOptions& opts, int32_t bos_id,
                                     const std::function<void(int64_t, int64_t)>& on_progress) {
    if (opts.bos && bos_id < 0) throw Error("--bos: the tokenizer has no BOS token");
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t V = vocab;
    const int64_t lead = opts.bos ? 1 : 0;
    PerplexityResult r;
    r.windows = static_cast<int64_t>(plan.windows.size());
    {
        std::vector<int64_t> docs;
        for (const Window& w : plan.windows) docs.push_back(w.doc);
        docs.erase(std::unique(docs.begin(), docs.end()), docs.end());
        r.documents = static_cast<int64_t>(docs.size());
    }
    size_t next = 0;
    while (next < plan.windows.size()) {
        // A batch of whole windows, about batch_tokens tokens (at least one window).
        model::TokenSequences seqs;
        std::vector<size_t> members;
        int64_t tokens = 0;
        while (next < plan.windows.size()) {
            const Window& w = plan.windows[next];
            const int64_t len = lead + w.end - w.begin;
            if (!members.empty() && tokens + len > opts.batch_tokens) break;
            const auto& doc = plan.docs[static_cast<size_t>(w.doc)];
            std::vector<int32_t> ids;
            ids.reserve(static_cast<size_t>(len));
            if (opts.bos) ids.push_back(bos_id);
            ids.insert(ids.end(), doc.begin() + w.begin, doc.begin() + w.end);
            seqs.push_back(std::move(ids));
            members.push_back(next++);
            tokens += len;
        }
        const std::vector<float> logits = forward(seqs);
        int64_t row0 = 0;
        for (size_t s = 0; s < seqs.size(); ++s) {
            const Window& w = plan.windows[members[s]];
            // Target at window position p is predicted by row p - 1: sequence_nll over the ids
            // from p0 - 1 scores exactly [p0, len).
            const int64_t p0 = lead + w.score_begin - w.begin;
            const std::vector<int32_t> ids(seqs[s].begin() + (p0 - 1), seqs[s].end());
            r.nll += model::sequence_nll(logits.data() + (row0 + p0 - 1) * V, V, ids);
            r.tokens += w.scored();
            row0 += static_cast<int64_t>(seqs[s].size());
        }
        if (on_progress) on_progress(static_cast<int64_t>(next), r.windows);
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace microscale::eval
