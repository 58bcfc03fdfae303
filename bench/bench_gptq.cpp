// GPTQ on one layer, CPU: the whole call (Hessian preparation, column loop, both objectives) and
// its parts, for the blocked path and the plain reference loop. Results go to docs/BENCHMARKS.md.
//   build/bench/microscale_bench --benchmark_filter=Gptq
// Args: out, in. The Hessian is 2/n X^T X of n = 512 random rows (damping makes it definite);
// GPTQ's cost does not depend on its values.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <sys/resource.h>

#include <cmath>
#include <memory>
#include <random>
#include <thread>

#include "algo/gptq.h"
#include "algo/gptq_detail.h"
#include "core/thread_pool.h"

using namespace microscale;

namespace {

struct Layer {
    int64_t out, in;
    std::vector<float> w, h;
    std::vector<uint8_t> codes;
    float wsf2 = 0;
    algo::FixedGrid grid() const { return algo::FixedGrid::nvfp4(codes, wsf2); }
};

const Layer& layer(int64_t out, int64_t in) {
    static std::vector<std::unique_ptr<Layer>> cache;
    for (auto& l : cache)
        if (l->out == out && l->in == in) return *l;
    auto l = std::make_unique<Layer>();
    l->out = out;
    l->in = in;
    std::mt19937 rng(7);
    std::student_t_distribution<float> t(3.0f);
    std::normal_distribution<float> nd;
    l->w.resize(static_cast<size_t>(out * in));
    for (auto& v : l->w) v = 0.02f * t(rng);
    const int64_t n = 512;
    std::vector<float> x(static_cast<size_t>(n * in));
    for (auto& v : x) v = nd(rng);
    algo::HessianAccumulator acc(in);
    acc.add(x.data(), n, in);
    l->h = acc.hessian();
    float a = 0;
    for (float v : l->w) a = std::fmax(a, std::fabs(v));
    const format::Nvfp4Scales s = format::nvfp4_scales(a, false);
    l->wsf2 = s.wsf2;
    l->codes.resize(static_cast<size_t>(out * in / 16));
    for (int64_t r = 0; r < out; ++r)
        for (int64_t b = 0; b < in / 16; ++b) {
            float m = 0;
            for (int j = 0; j < 16; ++j) m = std::fmax(m, std::fabs(l->w[static_cast<size_t>(r * in + b * 16 + j)]));
            l->codes[static_cast<size_t>(r * (in / 16) + b)] = format::nvfp4_code_static(m, s);
        }
    cache.push_back(std::move(l));
    return *cache.back();
}

// CPU seconds of the whole process (all threads, BLAS included): on a shared machine the wall time
// depends on the other jobs, this much less.
double process_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

template <class F>
void timed(benchmark::State& st, F&& f) {
    double cpu = 0;
    for (auto _ : st) {
        const double t0 = process_cpu_seconds();
        f();
        cpu += process_cpu_seconds() - t0;
    }
    st.counters["cpu_all_threads_s"] = cpu / double(st.iterations());
}

unsigned threads() { return std::max(1u, std::thread::hardware_concurrency()); }

void BM_GptqBlocked(benchmark::State& st) {
    const Layer& l = layer(st.range(0), st.range(1));
    core::ThreadPool pool(threads());
    timed(st, [&] { benchmark::DoNotOptimize(algo::gptq(l.w, l.out, l.in, l.h, l.grid(), {}, &pool)); });
}

void BM_GptqReference(benchmark::State& st) {
    const Layer& l = layer(st.range(0), st.range(1));
    openblas_set_num_threads(static_cast<int>(threads()));
    timed(st, [&] { benchmark::DoNotOptimize(algo::gptq_ref(l.w, l.out, l.in, l.h, l.grid(), {})); });
}

// Dead columns, damping and the Cholesky inverse (LAPACK spotrf, spotri, spotrf).
void BM_GptqPrepare(benchmark::State& st) {
    const Layer& l = layer(st.range(0), st.range(1));
    openblas_set_num_threads(static_cast<int>(threads()));
    timed(st, [&] { benchmark::DoNotOptimize(algo::detail::prepare(l.w, l.out, l.in, l.h, l.grid(), {})); });
}

// One of the two objectives GPTQ reports.
void BM_GptqObjective(benchmark::State& st) {
    const Layer& l = layer(st.range(0), st.range(1));
    openblas_set_num_threads(static_cast<int>(threads()));
    std::vector<float> q(l.w.size());
    algo::fake_quantize_fixed(l.w, l.out, l.in, l.grid(), q);
    timed(st, [&] { benchmark::DoNotOptimize(algo::hessian_objective(l.w, q, l.out, l.in, l.h)); });
}

void shapes(benchmark::internal::Benchmark* b) {
    b->Args({1024, 1024})->Args({4096, 4096})->Args({4096, 14336})->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();
}

}  // namespace

BENCHMARK(BM_GptqBlocked)->Apply(shapes);
BENCHMARK(BM_GptqPrepare)->Apply(shapes);
BENCHMARK(BM_GptqObjective)->Apply(shapes);
BENCHMARK(BM_GptqReference)->Args({1024, 1024})->Args({4096, 4096})->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();
