#include "search/scores.h"

#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <map>

#include "eval/act_quant.h"
#include "microscale/error.h"
#include "model/forward/ops.h"

namespace microscale::search {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// x as the deployed input quantizer leaves it ([rows, in], stride ld), into scratch.
const float* quantize_input(const LinearVariant& v, const float* x, int64_t rows, int64_t in, int64_t ld,
                            std::vector<float>& scratch) {
    if (v.input_format == Format::BF16) return x;
    scratch.resize(static_cast<size_t>(rows * ld));
    if (v.input_format == Format::NVFP4) eval::fake_quant_nvfp4(x, rows, in, ld, v.input_scale, scratch.data());
    else eval::fake_quant_fp8(x, rows, in, ld, v.input_scale, scratch.data());
    return scratch.data();
}

// The KL pass: fake-quantizes the inputs of the group's linears only.
class GroupInputs final : public model::LayerObserver {
public:
    std::map<int, const LinearVariant*> of_linear;
    const float* transform_linear_input(const model::LinearWeights& l, const float* x, int64_t rows, int64_t ld,
                                        std::vector<float>& scratch) override {
        const auto it = of_linear.find(l.linear);
        return it == of_linear.end() ? x : quantize_input(*it->second, x, rows, l.in, ld, scratch);
    }
};

// The mse proxy during the reference pass: output error of each variant on the layer's inputs.
class OutputError final : public model::LayerObserver {
public:
    explicit OutputError(core::ThreadPool& pool) : pool_(pool) {}
    struct Target {
        size_t candidate;
        const LinearVariant* variant;
        double sum_sq = 0.0;
    };
    std::map<int, std::vector<Target>> targets;  // linear -> variants to measure
    std::map<int, double> seconds;               // linear -> time spent measuring

    void linear_input(const model::LinearWeights& l, const float* x, int64_t rows, int64_t ld) override {
        const auto it = targets.find(l.linear);
        if (it == targets.end()) return;
        const auto t0 = Clock::now();
        std::vector<float> y_ref(static_cast<size_t>(rows * l.out)), y(y_ref.size()), scratch;
        model::linear(x, rows, l.in, ld, l.weight.data(), l.out, nullptr, y_ref.data(), l.out, pool_);
        for (Target& t : it->second) {
            const float* xin = quantize_input(*t.variant, x, rows, l.in, ld, scratch);
            model::linear(xin, rows, l.in, ld, t.variant->weight.data(), l.out, nullptr, y.data(), l.out, pool_);
            // Per-row partial sums, added in row order: independent of the thread count.
            std::vector<double> row_sq(static_cast<size_t>(rows), 0.0);
            pool_.parallel_for(rows, [&](int64_t r) {
                double s = 0.0;
                for (int64_t c = 0; c < l.out; ++c) {
                    const double d = double(y[static_cast<size_t>(r * l.out + c)]) - double(y_ref[static_cast<size_t>(r * l.out + c)]);
                    s += d * d;
                }
                row_sq[static_cast<size_t>(r)] = s;
            });
            for (double s : row_sq) t.sum_sq += s;
        }
        seconds[l.linear] += since(t0);
    }

private:
    core::ThreadPool& pool_;
};

// Row-wise log-softmax of logits [tokens, vocab] in fp64, stored as fp32.
std::vector<float> log_softmax(const std::vector<float>& logits, int64_t tokens, int64_t vocab, core::ThreadPool& pool) {
    std::vector<float> out(logits.size());
    pool.parallel_for(tokens, [&](int64_t t) {
        const float* row = logits.data() + t * vocab;
        double m = row[0];
        for (int64_t j = 1; j < vocab; ++j) m = std::fmax(m, double(row[j]));
        double sum = 0.0;
        for (int64_t j = 0; j < vocab; ++j) sum += std::exp(double(row[j]) - m);
        const double lse = m + std::log(sum);
        for (int64_t j = 0; j < vocab; ++j) out[static_cast<size_t>(t * vocab + j)] = static_cast<float>(double(row[j]) - lse);
    });
    return out;
}

// Mean over tokens of KL(p_ref || p) with p = softmax(logits).
double mean_kl(const std::vector<float>& logp_ref, const std::vector<float>& logits, int64_t tokens, int64_t vocab,
               core::ThreadPool& pool) {
    std::vector<double> per_token(static_cast<size_t>(tokens), 0.0);
    pool.parallel_for(tokens, [&](int64_t t) {
        const float* row = logits.data() + t * vocab;
        const float* ref = logp_ref.data() + t * vocab;
        double m = row[0];
        for (int64_t j = 1; j < vocab; ++j) m = std::fmax(m, double(row[j]));
        double sum = 0.0;
        for (int64_t j = 0; j < vocab; ++j) sum += std::exp(double(row[j]) - m);
        const double lse = m + std::log(sum);
        double kl = 0.0;
        for (int64_t j = 0; j < vocab; ++j) {
            const double lr = ref[j];
            kl += std::exp(lr) * (lr - (double(row[j]) - lse));
        }
        per_token[static_cast<size_t>(t)] = kl;
    });
    double s = 0.0;
    for (double v : per_token) s += v;
    return tokens ? s / double(tokens) : 0.0;
}

}  // namespace

ScoreReport score_groups(model::ModelForward& model, const model::TokenSequences& samples,
                         const std::vector<SearchGroup>& groups, const std::vector<std::vector<bool>>& scored,
                         ScoreMethod method, const VariantFn& variant, const std::function<void(const std::string&)>& log) {
    if (scored.size() != groups.size()) throw Error("score_groups: one row of candidates per group expected");
    if (samples.empty()) throw Error("autoquant scores: no calibration samples");
    const int n_layers = static_cast<int>(model.config().layers);
    for (const SearchGroup& g : groups)
        if (g.layer < 0 || g.layer >= n_layers)
            throw Error(fmt::format("autoquant scores: {} is outside the decoder layers; the forward pass cannot "
                                    "score it", g.name));
    ScoreReport rep;
    rep.groups.resize(groups.size());
    for (size_t g = 0; g < groups.size(); ++g) rep.groups[g].score.assign(scored[g].size(), 0.0);
    core::ThreadPool& pool = model.pool();
    const model::TokenBatch batch = model.batch_of(samples);
    rep.tokens = batch.tokens();
    const int64_t V = model.config().vocab;

    // Variants, made once per (linear, candidate) and kept for the pass that needs them.
    std::map<std::pair<int, size_t>, LinearVariant> variants;
    const auto variant_of = [&](int linear, size_t c) -> const LinearVariant& {
        auto it = variants.find({linear, c});
        if (it == variants.end()) it = variants.emplace(std::make_pair(linear, c), variant(linear, c)).first;
        return it->second;
    };

    // Reference pass: every layer's input is cached (the KL passes resume from it); the mse
    // observer measures each layer's variants as the layer runs.
    const auto t_ref = Clock::now();
    std::vector<model::DecoderLayerWeights> layers;
    std::vector<std::vector<float>> layer_input;
    std::vector<float> hidden = model.embed(samples);
    OutputError mse(pool);
    for (int l = 0; l < n_layers; ++l) {
        layers.push_back(model.load_layer(l));
        if (method == ScoreMethod::KL) {
            layer_input.push_back(hidden);
            model.run_layer(layers.back(), batch, hidden, nullptr);
            continue;
        }
        mse.targets.clear();
        for (size_t g = 0; g < groups.size(); ++g) {
            if (groups[g].layer != l) continue;
            const auto t0 = Clock::now();
            for (int li : groups[g].linears)
                for (size_t c = 0; c < scored[g].size(); ++c)
                    if (scored[g][c]) mse.targets[li].push_back({c, &variant_of(li, c), 0.0});
            rep.groups[g].seconds += since(t0);
        }
        model.run_layer(layers.back(), batch, hidden, &mse);
        for (size_t g = 0; g < groups.size(); ++g) {
            if (groups[g].layer != l) continue;
            for (int li : groups[g].linears) {
                for (const OutputError::Target& t : mse.targets[li])
                    rep.groups[g].score[t.candidate] += t.sum_sq / double(rep.tokens);
                rep.groups[g].seconds += mse.seconds[li];
            }
        }
        variants.clear();  // this layer's variants are done
        if (log) log(fmt::format("autoquant mse scores: layer {}/{}", l + 1, n_layers));
    }
    if (method == ScoreMethod::MSE) {
        rep.reference_seconds = since(t_ref);
        return rep;
    }
    model.final_norm(hidden);
    const std::vector<float> logp_ref = log_softmax(model.lm_head(hidden, rep.tokens), rep.tokens, V, pool);
    hidden.clear();
    rep.reference_seconds = since(t_ref);

    for (size_t g = 0; g < groups.size(); ++g) {
        const SearchGroup& grp = groups[g];
        const auto t0 = Clock::now();
        for (size_t c = 0; c < scored[g].size(); ++c) {
            if (!scored[g][c]) continue;
            model::DecoderLayerWeights w = layers[static_cast<size_t>(grp.layer)];
            GroupInputs inputs;
            for (int li : grp.linears) {
                const LinearVariant& v = variant_of(li, c);
                bool found = false;
                for (model::LinearWeights& lw : w.linears)
                    if (lw.linear == li) {
                        if (v.weight.size() != lw.weight.size())
                            throw Error(fmt::format("autoquant scores: variant of {} has {} values, expected {}", lw.name,
                                                    v.weight.size(), lw.weight.size()));
                        lw.weight = v.weight;
                        found = true;
                    }
                if (!found) throw Error(fmt::format("autoquant scores: linear {} is not in decoder layer {}", li, grp.layer));
                inputs.of_linear[li] = &v;
            }
            std::vector<float> h = layer_input[static_cast<size_t>(grp.layer)];
            model.run_layer(w, batch, h, &inputs);
            for (int l = grp.layer + 1; l < n_layers; ++l) model.run_layer(layers[static_cast<size_t>(l)], batch, h, nullptr);
            model.final_norm(h);
            rep.groups[g].score[c] = mean_kl(logp_ref, model.lm_head(h, rep.tokens), rep.tokens, V, pool);
            for (int li : grp.linears) variants.erase({li, c});
        }
        rep.groups[g].seconds = since(t0);
        if (log) log(fmt::format("autoquant kl scores: group {}/{} {} ({:.2f} s)", g + 1, groups.size(), grp.name,
                                 rep.groups[g].seconds));
    }
    return rep;
}

}  // namespace microscale::search
