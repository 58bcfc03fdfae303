// CPU forward throughput of one Llama decoder layer (TinyLlama-1.1B shape: hidden 2048, ffn 5632,
// 32 query / 4 KV heads of 64) over 512 tokens (one sequence, or 4 of 128), in tokens/s, one
// thread vs all threads. Also the GEMM roofline of the same layer as a FLOP rate.
//   build/bench/microscale_bench --benchmark_filter=Forward
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <thread>

#include "core/thread_pool.h"
#include "model/forward/decoder_layer.h"

using namespace microscale;
using namespace microscale::model;

namespace {

ForwardConfig layer_config() {
    ForwardConfig c;
    c.model_type = "llama";
    c.hidden = 2048;
    c.intermediate = 5632;
    c.layers = 1;
    c.heads = 32;
    c.kv_heads = 4;
    c.head_dim = 64;
    c.rotary_dim = 64;
    c.vocab = 32000;
    c.max_position_embeddings = 2048;
    c.rms_norm_eps = 1e-5f;
    c.sliding_window = {0};
    return c;
}

LinearWeights random_linear(Role role, int64_t out, int64_t in, std::mt19937& rng) {
    LinearWeights l;
    l.name = std::string(role_name(role));
    l.role = role;
    l.out = out;
    l.in = in;
    std::normal_distribution<float> d(0.0f, 0.02f);
    l.weight.resize(static_cast<size_t>(out * in));
    for (float& w : l.weight) w = d(rng);
    return l;
}

const DecoderLayerWeights& layer_weights() {
    static const DecoderLayerWeights w = [] {
        const ForwardConfig c = layer_config();
        std::mt19937 rng(7);
        DecoderLayerWeights w;
        w.layer = 0;
        w.input_norm.assign(static_cast<size_t>(c.hidden), 1.0f);
        w.post_attention_norm.assign(static_cast<size_t>(c.hidden), 1.0f);
        w.linears.push_back(random_linear(Role::ATTN_Q, c.q_dim(), c.hidden, rng));
        w.linears.push_back(random_linear(Role::ATTN_K, c.kv_dim(), c.hidden, rng));
        w.linears.push_back(random_linear(Role::ATTN_V, c.kv_dim(), c.hidden, rng));
        w.linears.push_back(random_linear(Role::ATTN_O, c.hidden, c.q_dim(), rng));
        w.linears.push_back(random_linear(Role::MLP_GATE, c.intermediate, c.hidden, rng));
        w.linears.push_back(random_linear(Role::MLP_UP, c.intermediate, c.hidden, rng));
        w.linears.push_back(random_linear(Role::MLP_DOWN, c.hidden, c.intermediate, rng));
        return w;
    }();
    return w;
}

void BM_ForwardDecoderLayer(benchmark::State& state) {
    const unsigned threads = static_cast<unsigned>(state.range(0));
    const int64_t seqs = state.range(1), tokens = 512;
    const ForwardConfig c = layer_config();
    const DecoderLayerWeights& w = layer_weights();
    core::ThreadPool pool(threads);
    TokenBatch batch;
    for (int64_t s = 0; s < seqs; ++s) batch.add(tokens / seqs);
    std::mt19937 rng(3);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> input(static_cast<size_t>(tokens * c.hidden));
    for (float& x : input) x = d(rng);
    std::vector<float> hidden;
    for (auto _ : state) {
        state.PauseTiming();
        hidden = input;
        state.ResumeTiming();
        run_decoder_layer(c, w, batch, hidden.data(), pool);
        benchmark::DoNotOptimize(hidden.data());
    }
    const double linear_flops = 2.0 * static_cast<double>(tokens) *
                                static_cast<double>(c.hidden * (c.q_dim() + 2 * c.kv_dim()) +
                                                    c.q_dim() * c.hidden + 3 * c.hidden * c.intermediate);
    state.counters["tokens/s"] =
        benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["linear_GFLOP/s"] = benchmark::Counter(linear_flops / 1e9,
                                                          benchmark::Counter::kIsIterationInvariantRate);
    state.counters["threads"] = threads;
}

void args(benchmark::internal::Benchmark* b) {
    const int64_t all = std::max(1u, std::thread::hardware_concurrency());
    for (int64_t seqs : {int64_t{1}, int64_t{4}})
        for (int64_t threads : {int64_t{1}, all}) b->Args({threads, seqs});
    b->ArgNames({"threads", "seqs"});
    b->Unit(benchmark::kMillisecond);
    b->UseRealTime();
}

}  // namespace

BENCHMARK(BM_ForwardDecoderLayer)->Apply(args);
