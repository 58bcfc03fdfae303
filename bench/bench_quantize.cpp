// Weight-quantization throughput in GB/s of bf16 input: scalar reference vs SIMD, one thread vs
// all threads, for every search. Results go to docs/BENCHMARKS.md (machine, command, date).
//   build/bench/microscale_bench --benchmark_filter=Quantize
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <thread>

#include "core/thread_pool.h"
#include "format/codec/bf16.h"
#include "format/quantize.h"

using namespace microscale;
using namespace microscale::format;

namespace {

struct BenchWeight {
    std::vector<uint16_t> data;
    int64_t rows, cols;
    WeightView view() const { return {data.data(), DType::BF16, rows, cols, "bench"}; }
};

// Heavy-tailed bf16 weights, generated once per shape.
const BenchWeight& weight(int64_t rows, int64_t cols) {
    static std::vector<std::unique_ptr<BenchWeight>> cache;
    for (auto& w : cache)
        if (w->rows == rows && w->cols == cols) return *w;
    auto w = std::make_unique<BenchWeight>();
    w->rows = rows;
    w->cols = cols;
    w->data.resize(static_cast<size_t>(rows * cols));
    std::mt19937 rng(42);
    std::student_t_distribution<float> t(3.0f);
    for (auto& v : w->data) v = codec::bf16_from_float(0.02f * t(rng));
    cache.push_back(std::move(w));
    return *cache.back();
}

enum Mode { NVFP4_MAX, NVFP4_MSE, NVFP4_FP8_SWEEP, NVFP4_4O6, FP8, MXFP4 };

WeightQuantSpec spec_of(Mode m) {
    WeightQuantSpec s;
    switch (m) {
        case NVFP4_MAX: break;
        case NVFP4_MSE: s.nvfp4.search = Nvfp4Search::MSE; break;
        case NVFP4_FP8_SWEEP: s.nvfp4.search = Nvfp4Search::FP8_SWEEP; break;
        case NVFP4_4O6: s.nvfp4 = Nvfp4Config::four_over_six_preset(); break;
        case FP8: s.format = Format::FP8; break;
        case MXFP4: s.format = Format::MXFP4; break;
    }
    return s;
}

// args: mode, backend (0 ref, 1 simd), threads (0 = all cores), rows, cols
void BM_Quantize(benchmark::State& state) {
    const Mode mode = static_cast<Mode>(state.range(0));
    const Backend backend = state.range(1) ? Backend::SIMD : Backend::REF;
    const unsigned threads = state.range(2) ? static_cast<unsigned>(state.range(2)) : std::thread::hardware_concurrency();
    const BenchWeight& w = weight(state.range(3), state.range(4));
    core::ThreadPool pool(threads);
    const WeightQuantSpec spec = spec_of(mode);
    for (auto _ : state) {
        auto q = quantize_weight(w.view(), spec, backend, threads > 1 ? &pool : nullptr);
        benchmark::DoNotOptimize(q.data.data());
    }
    state.SetBytesProcessed(state.iterations() * w.rows * w.cols * 2);
    state.counters["threads"] = threads;
}

void args(benchmark::internal::Benchmark* b) {
    const int64_t all = 0;
    for (int64_t mode : {NVFP4_MAX, NVFP4_4O6, FP8, MXFP4, NVFP4_MSE, NVFP4_FP8_SWEEP}) {
        // The searches are 10-100x slower: smaller tensors keep a run short.
        const int64_t rows = mode == NVFP4_FP8_SWEEP ? 256 : (mode == NVFP4_MSE ? 1024 : 4096);
        for (int64_t simd : {0, 1})
            for (int64_t threads : {int64_t{1}, int64_t{2}, all}) b->Args({mode, simd, threads, rows, 4096});
    }
    b->ArgNames({"mode", "simd", "threads", "rows", "cols"});
    b->Unit(benchmark::kMillisecond);
    b->UseRealTime();
    b->MinTime(1.0);
}

}  // namespace

BENCHMARK(BM_Quantize)->Apply(args);
BENCHMARK_MAIN();
