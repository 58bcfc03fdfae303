// Calibration-forward throughput on the GPU: tokens/s of GpuModelForward::calibrate (every
// decoder layer, observers on, final norm; no lm_head, as calibration) on a synthetic ~1B Llama
// (Llama-3.2-1B shapes), with every layer resident vs every layer streamed from pinned host
// buffers. Compare with tools/bench_hf_forward.py (transformers bf16 sdpa on the same checkpoint
// and batch). One line per mode.
//
//   microscale_gpu_bench_forward [--model DIR] [--workdir DIR] [--seqs N] [--seq-len T]
//                                [--batch B] [--budget BYTES] [--fp32] [--attention-only]
//
// Last line: the tensor-core attention kernel alone (batch x seq-len, the model's heads, causal),
// median of CUDA-event timings, as TFLOP/s of the causal products; compare with
// `tools/bench_hf_forward.py --attention-only` (torch sdpa on the same shapes).
//
// Without --model the checkpoint is written to --workdir (default /tmp/microscale-bench-1b) once
// and reused. --budget: the streamed run's --gpu-mem-budget instead of "no resident layers".
// No fmt here: its headers do not compile in nvcc's C++20 host pass.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <random>
#include <string>

#include <algorithm>
#include <vector>

#include "cuda/check.cuh"
#include "cuda/device.h"
#include "cuda/forward/flash_attention.cuh"
#include "cuda/forward/gpu_forward.h"
#include "model/forward/model_forward.h"
#include "model/synthetic.h"

namespace {

using namespace microscale;
namespace fs = std::filesystem;

struct Args {
    std::string model, workdir = "/tmp/microscale-bench-1b";
    int64_t seqs = 16, seq_len = 2048, batch = 8;
    uint64_t budget = 0;
    int64_t head_dim = 0;  // --attention-only: override the model's head size
    bool fp32 = false, attention_only = false;
};

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        const auto val = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", k.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (k == "--model") a.model = val();
        else if (k == "--workdir") a.workdir = val();
        else if (k == "--seqs") a.seqs = std::stoll(val());
        else if (k == "--seq-len") a.seq_len = std::stoll(val());
        else if (k == "--batch") a.batch = std::stoll(val());
        else if (k == "--budget") {
            // Bytes, as a number ("2.4e9" or "2400000000"); anything else is an error.
            const std::string v = val();
            size_t used = 0;
            const double b = std::stod(v, &used);
            if (used != v.size() || !(b > 0)) {
                std::fprintf(stderr, "--budget wants a byte count, got '%s'\n", v.c_str());
                std::exit(2);
            }
            a.budget = static_cast<uint64_t>(b);
        }
        else if (k == "--fp32") a.fp32 = true;
        else if (k == "--attention-only") a.attention_only = true;
        else if (k == "--head-dim") a.head_dim = std::stoll(val());
        else {
            std::fprintf(stderr, "unknown option %s\n", k.c_str());
            std::exit(2);
        }
    }
    return a;
}

fs::path ensure_model(const Args& a) {
    if (!a.model.empty()) return a.model;
    const fs::path dir = a.workdir;
    if (fs::exists(dir / "config.json")) return dir;
    model::SyntheticSpec s;  // Llama-3.2-1B shapes
    s.hidden = 2048;
    s.layers = 16;
    s.heads = 32;
    s.kv_heads = 8;
    s.head_dim = 64;
    s.ffn = 8192;
    s.vocab = 128256;
    s.tied = true;
    s.seed = 1;
    std::fprintf(stderr, "writing a synthetic 1B llama to %s ...\n", dir.c_str());
    model::write_synthetic_llama(dir, s);
    return dir;
}

double run(cuda::GpuModelForward& gpu, const model::TokenSequences& seqs, int64_t batch) {
    const auto t0 = std::chrono::steady_clock::now();
    gpu.calibrate(seqs, batch);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The flash kernel on random bf16 q|k|v of `batch` sequences of seq_len tokens.
void bench_attention(const model::ForwardConfig& c, int64_t batch, int64_t seq_len) {
    const int64_t T = batch * seq_len, qd = c.heads * c.head_dim, kvd = c.kv_heads * c.head_dim, ld = qd + 2 * kvd;
    std::vector<uint16_t> qkv(static_cast<size_t>(T * ld));
    std::mt19937 rng(9);
    for (auto& x : qkv) x = static_cast<uint16_t>(0x3c00 + (rng() & 0x3ff) - (rng() & 1) * 0x8000);  // ±[0.0078, 0.0156)
    std::vector<int64_t> offsets;
    for (int64_t s = 0; s <= batch; ++s) offsets.push_back(s * seq_len);
    uint16_t *dq = nullptr, *dout = nullptr;
    int64_t* doff = nullptr;
    MICROSCALE_CUDA_CHECK(cudaMalloc(&dq, qkv.size() * 2));
    MICROSCALE_CUDA_CHECK(cudaMalloc(&dout, static_cast<size_t>(T * qd) * 2));
    MICROSCALE_CUDA_CHECK(cudaMalloc(&doff, offsets.size() * 8));
    MICROSCALE_CUDA_CHECK(cudaMemcpy(dq, qkv.data(), qkv.size() * 2, cudaMemcpyHostToDevice));
    MICROSCALE_CUDA_CHECK(cudaMemcpy(doff, offsets.data(), offsets.size() * 8, cudaMemcpyHostToDevice));
    cudaEvent_t e0, e1;
    MICROSCALE_CUDA_CHECK(cudaEventCreate(&e0));
    MICROSCALE_CUDA_CHECK(cudaEventCreate(&e1));
    const float scaling = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    std::vector<float> ms;
    for (int it = 0; it < 13; ++it) {
        MICROSCALE_CUDA_CHECK(cudaEventRecord(e0));
        cuda::fwd::launch_flash_attention(dq, ld, dq + qd, dq + qd + kvd, ld, doff, batch, seq_len, c.heads,
                                          c.kv_heads, c.head_dim, 0, scaling, dout, qd, nullptr, nullptr);
        MICROSCALE_CUDA_CHECK(cudaEventRecord(e1));
        MICROSCALE_CUDA_CHECK(cudaEventSynchronize(e1));
        float t = 0.0f;
        MICROSCALE_CUDA_CHECK(cudaEventElapsedTime(&t, e0, e1));
        if (it >= 3) ms.push_back(t);  // 3 warm-up launches
    }
    std::sort(ms.begin(), ms.end());
    const double med = ms[ms.size() / 2];
    const double flops = 4.0 * static_cast<double>(batch * c.heads * c.head_dim) * static_cast<double>(seq_len) *
                         static_cast<double>(seq_len + 1) / 2.0;
    std::printf("flash_attention: batch=%lldx%lld heads=%lld/%lld head_dim=%lld ms=%.3f causal_tflops=%.1f\n",
                static_cast<long long>(batch), static_cast<long long>(seq_len), static_cast<long long>(c.heads),
                static_cast<long long>(c.kv_heads), static_cast<long long>(c.head_dim), med, flops / med * 1e-9);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaFree(dq);
    cudaFree(dout);
    cudaFree(doff);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Args a = parse(argc, argv);
        if (cuda::device_count() == 0) {
            std::printf("bench_forward: skipped (no GPU: %s)\n", cuda::unavailable_reason().c_str());
            return 0;
        }
        const fs::path dir = ensure_model(a);
        uint64_t model_bytes = 0;  // the checkpoint's tensor files, to compare budgets with
        for (const auto& f : fs::directory_iterator(dir))
            if (f.path().extension() == ".safetensors") model_bytes += f.file_size();
        std::printf("model: %s, %.0f MiB of safetensors\n", dir.c_str(), static_cast<double>(model_bytes) / 1048576.0);
        model::ModelForward host(dir, 0);
        std::mt19937 rng(5);
        model::TokenSequences seqs(static_cast<size_t>(a.seqs));
        for (auto& s : seqs) {
            s.resize(static_cast<size_t>(a.seq_len));
            for (auto& id : s) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(host.config().vocab));
        }
        if (a.attention_only) {
            if (!cuda::fwd::flash_attention_supported(host.config().head_dim)) {
                std::printf("flash_attention: head_dim %lld has no tensor-core kernel\n",
                            static_cast<long long>(host.config().head_dim));
                return 0;
            }
            model::ForwardConfig c = host.config();
            if (a.head_dim) c.head_dim = a.head_dim;
            if (!cuda::fwd::flash_attention_supported(c.head_dim)) {
                std::printf("flash_attention: head_dim %lld has no tensor-core kernel\n", static_cast<long long>(c.head_dim));
                return 0;
            }
            bench_attention(c, a.batch, a.seq_len);
            return 0;
        }
        const double tokens = static_cast<double>(a.seqs * a.seq_len);
        cuda::GpuForwardOptions base;
        base.precision = a.fp32 ? cuda::GemmPrecision::FP32 : cuda::GemmPrecision::BF16;

        double resident_tps = 0.0;
        {
            cuda::GpuModelForward gpu(host, base);
            run(gpu, seqs, a.batch);  // warm-up: loads every layer once
            const double s = run(gpu, seqs, a.batch);
            resident_tps = tokens / s;
            const cuda::GpuForwardReport& r = gpu.report();
            std::printf("gpu_forward resident: model=%s tokens=%.0f batch=%lldx%lld seconds=%.4f tokens_per_s=%.0f "
                        "resident_layers=%lld peak_mib=%.0f\n",
                        dir.c_str(), tokens, static_cast<long long>(a.batch), static_cast<long long>(a.seq_len), s,
                        resident_tps, static_cast<long long>(r.resident_layers),
                        static_cast<double>(r.peak_device_bytes) / 1048576.0);
        }
        {
            cuda::GpuForwardOptions o = base;
            if (a.budget) o.mem_budget_bytes = a.budget;
            else o.max_resident_layers = 0;
            cuda::GpuModelForward gpu(host, o);
            run(gpu, seqs, a.batch);  // warm-up (page cache, pinned buffers)
            const double s = run(gpu, seqs, a.batch);
            const cuda::GpuForwardReport& r = gpu.report();
            std::printf("gpu_forward streamed: tokens=%.0f seconds=%.4f tokens_per_s=%.0f ratio_to_resident=%.3f "
                        "resident_layers=%lld budget_mib=%.0f peak_mib=%.0f host_wait_s_both_calls=%.3f embeddings=%s\n",
                        tokens, s, tokens / s, tokens / s / resident_tps, static_cast<long long>(r.resident_layers),
                        static_cast<double>(r.budget_bytes) / 1048576.0,
                        static_cast<double>(r.peak_device_bytes) / 1048576.0, r.seconds_waiting_for_weights,
                        r.embeddings);
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_forward: %s\n", e.what());
        return 1;
    }
}
