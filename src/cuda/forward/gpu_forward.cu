// GpuModelForward: device memory under a budget, decoder-layer slots (resident or streamed
// through a two-slot ring from pinned host buffers on a copy stream), the per-layer op sequence of
// model::run_decoder_layer with cuBLAS GEMMs, and the observers' amax buffer on the device.
// No fmt here: its headers do not compile in nvcc's C++20 host pass.
#include <cublas_v2.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <thread>

#include "cuda/check.cuh"
#include "cuda/cublas_check.cuh"
#include "cuda/device.h"
#include "cuda/forward/flash_attention.cuh"
#include "cuda/forward/forward_kernels.cuh"
#include "cuda/forward/gpu_forward.h"
#include "format/codec/bf16.h"
#include "model/forward/ops.h"


namespace microscale::cuda {
namespace {

using model::Role;
constexpr uint64_t kAlign = 256;
constexpr uint64_t kCublasWorkspaceBytes = 32ull << 20;
uint64_t align_up(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
std::string mib(uint64_t b) { return std::to_string((b + (1 << 19)) >> 20) + " MiB"; }

// memcpy of a large tensor (mmap'd checkpoint -> pinned staging) on a few threads: one thread's
// copy bandwidth is below what the PCIe copy of the next layer can take.
void parallel_memcpy(void* dst, const void* src, uint64_t n) {
    constexpr uint64_t kChunk = 8ull << 20;
    const unsigned max_threads = std::clamp(std::thread::hardware_concurrency() / 2, 1u, 8u);
    const unsigned parts = static_cast<unsigned>(std::clamp<uint64_t>((n + kChunk - 1) / kChunk, 1, max_threads));
    const uint64_t per = (n + parts - 1) / parts;
    const auto copy_part = [=](unsigned i) {
        const uint64_t b = i * per, e = std::min(n, b + per);
        if (b < e) std::memcpy(static_cast<char*>(dst) + b, static_cast<const char*>(src) + b, e - b);
    };
    std::vector<std::thread> threads;
    for (unsigned i = 1; i < parts; ++i) threads.emplace_back(copy_part, i);
    copy_part(0);
    for (std::thread& t : threads) t.join();
}

// Device bytes counted against the budget.
struct Arena {
    uint64_t limit = 0, used = 0, peak = 0;
};

class DevMem {
public:
    DevMem() = default;
    DevMem(const DevMem&) = delete;
    DevMem& operator=(const DevMem&) = delete;
    ~DevMem() { release(); }
    void alloc(Arena& arena, uint64_t bytes, const char* what) {
        release();
        if (bytes == 0) return;
        bytes = align_up(bytes);
        if (arena.used + bytes > arena.limit)
            throw Error(std::string("GPU memory budget exceeded allocating ") + what + " (" + mib(bytes) + "): " +
                        mib(arena.used) + " of " + mib(arena.limit) + " already in use; raise --gpu-mem-budget");
        MICROSCALE_CUDA_CHECK(cudaMalloc(&ptr_, bytes));
        bytes_ = bytes;
        arena_ = &arena;
        arena.used += bytes;
        arena.peak = std::max(arena.peak, arena.used);
    }
    void release() {
        if (ptr_) {
            cudaFree(ptr_);  // may run during unwinding or at exit: nothing useful to report
            arena_->used -= bytes_;
        }
        ptr_ = nullptr;
        bytes_ = 0;
    }
    template <class T>
    T* as() const { return static_cast<T*>(ptr_); }
    uint64_t bytes() const { return bytes_; }

private:
    void* ptr_ = nullptr;
    uint64_t bytes_ = 0;
    Arena* arena_ = nullptr;
};

// Where one linear of a decoder layer lives in the layer's device blob.
struct LinearSlot {
    int linear = -1;  // index into ModelLayout::linears
    Role role = Role::LINEAR_OTHER;
    int64_t out = 0, in = 0;
    uint64_t weight = 0;  // byte offset of [out, in] in the GEMM dtype
    int64_t bias = -1;    // byte offset of fp32 [out], or -1
};

struct LayerPlan {
    std::vector<LinearSlot> linears;
    uint64_t input_norm = 0, post_norm = 0;  // fp32 [H]
    int64_t q_norm = -1, k_norm = -1;        // fp32 [head_dim] (qwen3)
    std::string input_norm_name, post_norm_name, q_norm_name, k_norm_name;
    uint64_t bytes = 0;

    const LinearSlot* find(Role r) const {
        for (const LinearSlot& l : linears)
            if (l.role == r) return &l;
        return nullptr;
    }
};

struct Slot {
    DevMem mem;
    int layer = -1;  // the layer whose weights the slot holds (after its `loaded` event)
    cudaEvent_t loaded = nullptr, freed = nullptr;
    ~Slot() {
        if (loaded) cudaEventDestroy(loaded);
        if (freed) cudaEventDestroy(freed);
    }
};

// A batch's layout on the device: sequence offsets and per-row RoPE cos/sin.
struct DeviceBatch {
    int64_t tokens = 0, seqs = 0, max_len = 0;
    DevMem offsets, cos, sin;
};

// Activation scratch of one run_layer call, sized for `tokens` rows. Which buffers exist depends
// on the path (WorkSizes): the BF16 path writes GEMM inputs straight to x16 and attention reads
// the bf16 q|k|v copy, the FP32 path keeps fp32 normed / attention / SwiGLU activations.
struct Work {
    int64_t tokens = 0;
    DevMem h, x16, qkv, qkv16, attn, gu, act;
};

struct WorkSizes {
    uint64_t h = 0, x16 = 0, qkv = 0, qkv16 = 0, attn = 0, gu = 0, act = 0;
    uint64_t total() const {
        uint64_t t = 0;
        for (uint64_t b : {h, x16, qkv, qkv16, attn, gu, act}) t += align_up(b);
        return t;
    }
};

}  // namespace

struct GpuModelForward::Impl {
    model::ModelForward& host;
    const model::ForwardConfig& c;
    const model::ModelLayout& layout;
    GpuForwardOptions opts;
    GpuForwardReport report;
    int device = 0;
    bool bf16 = true;
    uint64_t esize = 2;  // GEMM element bytes
    Arena arena;
    cudaStream_t compute = nullptr, copy = nullptr;
    cublasHandle_t cublas = nullptr;
    DevMem cublas_ws, amax;  // amax: [linears | k,v per layer | head]
    std::vector<LayerPlan> plans;
    uint64_t slot_bytes = 0;
    std::vector<std::unique_ptr<Slot>> slots;
    int64_t resident = 0;
    uint8_t* pinned[2] = {nullptr, nullptr};
    cudaEvent_t pinned_done[2] = {nullptr, nullptr};
    int next_pinned = 0;
    std::future<void> prefetch;
    int prefetch_layer = -1;
    DevMem head_w, final_norm_w;  // cached once built
    DevMem embed_w;               // the bf16 embedding table, when cached (ensure_embedding)
    bool gu_fp32 = true;          // gate|up GEMM output in fp32 (FP32 mode, or a gate/up bias)

    Impl(model::ModelForward& h, const GpuForwardOptions& o)
        : host(h), c(h.config()), layout(h.layout()), opts(o) {
        if (device_count() == 0) throw Error("GPU forward: no usable GPU: " + unavailable_reason());
        device = selected_device();
        MICROSCALE_CUDA_CHECK(cudaSetDevice(device));
        bf16 = opts.precision == GemmPrecision::BF16;
        esize = bf16 ? 2 : 4;
        if (c.head_dim > 256) throw Error("GPU forward: head_dim " + std::to_string(c.head_dim) + " > 256");
        size_t free_b = 0, total_b = 0;
        MICROSCALE_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
        arena.limit = opts.mem_budget_bytes ? opts.mem_budget_bytes
                                            : (free_b > (1ull << 30) ? free_b - (1ull << 30) : free_b / 2);
        report.budget_bytes = arena.limit;
        MICROSCALE_CUDA_CHECK(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking));
        MICROSCALE_CUDA_CHECK(cudaStreamCreateWithFlags(&copy, cudaStreamNonBlocking));
        MICROSCALE_CUBLAS_CHECK(cublasCreate(&cublas));
        MICROSCALE_CUBLAS_CHECK(cublasSetStream(cublas, compute));
        MICROSCALE_CUBLAS_CHECK(cublasSetMathMode(cublas, CUBLAS_DEFAULT_MATH));  // no TF32
        cublas_ws.alloc(arena, kCublasWorkspaceBytes, "the cuBLAS workspace");
        MICROSCALE_CUBLAS_CHECK(cublasSetWorkspace(cublas, cublas_ws.as<void>(), cublas_ws.bytes()));
        const size_t n_amax = layout.linears.size() + 2 * static_cast<size_t>(c.layers) + 1;
        amax.alloc(arena, n_amax * sizeof(float), "the observer amax buffer");
        for (int l = 0; l < c.layers; ++l) {
            plans.push_back(plan_layer(l));
            slot_bytes = std::max(slot_bytes, plans.back().bytes);
        }
        report.layer_bytes = slot_bytes;
        gu_fp32 = !bf16;
        for (const model::LinearModule& m : layout.linears)
            if ((m.role == Role::MLP_GATE_UP || m.role == Role::MLP_GATE || m.role == Role::MLP_UP) && !m.bias.empty())
                gu_fp32 = true;
        for (int i = 0; i < 2; ++i) {
            if (slot_bytes) MICROSCALE_CUDA_CHECK(cudaHostAlloc(&pinned[i], slot_bytes, cudaHostAllocDefault));
            MICROSCALE_CUDA_CHECK(cudaEventCreateWithFlags(&pinned_done[i], cudaEventDisableTiming));
        }
    }

    ~Impl() {
        drain();
        slots.clear();
        for (int i = 0; i < 2; ++i) {
            if (pinned[i]) cudaFreeHost(pinned[i]);
            if (pinned_done[i]) cudaEventDestroy(pinned_done[i]);
        }
        if (cublas) cublasDestroy(cublas);
        if (compute) cudaStreamDestroy(compute);
        if (copy) cudaStreamDestroy(copy);
    }

    // No staging thread running and both streams idle (errors are dropped: used on unwinding).
    void drain() noexcept {
        if (prefetch.valid()) {
            try {
                prefetch.get();
            } catch (...) {
            }
        }
        prefetch_layer = -1;
        if (copy) cudaStreamSynchronize(copy);
        if (compute) cudaStreamSynchronize(compute);
    }

    std::string where(int l) const { return "GPU forward: decoder layer " + std::to_string(l); }

    LayerPlan plan_layer(int l) const {
        LayerPlan p;
        uint64_t off = 0;
        for (size_t i = 0; i < layout.linears.size(); ++i) {
            const model::LinearModule& m = layout.linears[i];
            if (m.layer != l) continue;
            LinearSlot s;
            s.linear = static_cast<int>(i);
            s.role = m.role;
            s.out = m.out_features;
            s.in = m.in_features;
            s.weight = off;
            off = align_up(off + static_cast<uint64_t>(s.out * s.in) * esize);
            if (!m.bias.empty()) {
                s.bias = static_cast<int64_t>(off);
                off = align_up(off + static_cast<uint64_t>(s.out) * 4);
            }
            p.linears.push_back(s);
        }
        bool has_in = false, has_post = false;
        for (const model::NormTensor& n : layout.norms) {
            if (n.layer != l) continue;
            const int64_t want = n.role == model::NormRole::ATTN_Q || n.role == model::NormRole::ATTN_K ? c.head_dim
                                                                                                      : c.hidden;
            if (n.dim != want)
                throw Error(where(l) + ": " + n.tensor + " has " + std::to_string(n.dim) + " elements, expected " +
                            std::to_string(want));
            const uint64_t at = off;
            off = align_up(off + static_cast<uint64_t>(n.dim) * 4);
            switch (n.role) {
                case model::NormRole::INPUT: p.input_norm = at, p.input_norm_name = n.tensor, has_in = true; break;
                case model::NormRole::POST_ATTENTION:
                    p.post_norm = at, p.post_norm_name = n.tensor, has_post = true;
                    break;
                case model::NormRole::ATTN_Q: p.q_norm = static_cast<int64_t>(at), p.q_norm_name = n.tensor; break;
                case model::NormRole::ATTN_K: p.k_norm = static_cast<int64_t>(at), p.k_norm_name = n.tensor; break;
                case model::NormRole::FINAL: break;
            }
        }
        if (!has_in || !has_post) throw Error(where(l) + ": input_layernorm or post_attention_layernorm missing");
        if (c.qk_norm && (p.q_norm < 0 || p.k_norm < 0)) throw Error(where(l) + ": q_norm/k_norm missing");
        const int64_t H = c.hidden, qd = c.q_dim(), kvd = c.kv_dim(), I = c.intermediate;
        const auto need = [&](Role r, int64_t out, int64_t in) {
            const LinearSlot* s = p.find(r);
            if (!s)
                throw Error(where(l) + ": no " + std::string(model::role_name(r)) + " linear");
            if (s->out != out || s->in != in)
                throw Error(where(l) + ": " + layout.linears[static_cast<size_t>(s->linear)].name + " is [" +
                            std::to_string(s->out) + ", " + std::to_string(s->in) + "], the forward pass expects [" +
                            std::to_string(out) + ", " + std::to_string(in) + "]");
        };
        if (c.fused_projections) {
            need(Role::ATTN_QKV, qd + 2 * kvd, H);
            need(Role::MLP_GATE_UP, 2 * I, H);
        } else {
            need(Role::ATTN_Q, qd, H);
            need(Role::ATTN_K, kvd, H);
            need(Role::ATTN_V, kvd, H);
            need(Role::MLP_GATE, I, H);
            need(Role::MLP_UP, I, H);
        }
        need(Role::ATTN_O, H, qd);
        need(Role::MLP_DOWN, H, I);
        p.bytes = off;
        return p;
    }

    // Drops a checkpoint tensor's mmap'd pages from this process once it is on its way to the
    // device, so host RSS stays flat however many layers are uploaded.
    void release_pages(const std::string& tensor) const {
        if (const io::TensorRef* t = host.checkpoint().find(tensor)) t->file->release(*t->info);
    }

    // Host side of a layer load: the layer's tensors in slot layout at dst (pinned). A bf16
    // checkpoint tensor is copied as is for the bf16 GEMMs; anything else goes through the CPU
    // loader's fp32 values (F16/F32/F64, quantized exports decoded) and is rounded (RNE).
    // `staged(begin, end)` is called as each byte range of the blob is complete (one per linear,
    // then the norms), so its copy to the device overlaps the staging of the next tensor.
    void stage_layer(int l, uint8_t* dst, const std::function<void(uint64_t, uint64_t)>& staged) {
        const io::Checkpoint& ckpt = host.checkpoint();
        const LayerPlan& p = plans[static_cast<size_t>(l)];
        uint64_t sent = 0;
        for (const LinearSlot& s : p.linears) {
            const model::LinearModule& m = layout.linears[static_cast<size_t>(s.linear)];
            const uint64_t n = static_cast<uint64_t>(s.out * s.in);
            const io::TensorRef* ref = m.quant ? nullptr : ckpt.find(m.weight);
            if (bf16 && ref && ref->info->dtype == DType::BF16 && ref->info->numel() == n) {
                // Pages released after an earlier upload fault back in inside the copy, on all
                // of its threads at once (a single-threaded MADV_POPULATE_READ was slower).
                parallel_memcpy(dst + s.weight, ckpt.bytes(*ref).data(), n * 2);
            } else {
                const std::vector<float> w = model::load_linear_weight(ckpt, m);
                if (bf16) {
                    uint16_t* o = reinterpret_cast<uint16_t*>(dst + s.weight);
                    for (uint64_t i = 0; i < n; ++i) o[i] = codec::bf16_from_float(w[i]);
                } else {
                    std::memcpy(dst + s.weight, w.data(), n * 4);
                }
            }
            if (s.bias >= 0) {
                const std::vector<float> b = model::load_tensor_f32(ckpt, m.bias, static_cast<uint64_t>(s.out));
                std::memcpy(dst + s.bias, b.data(), b.size() * 4);
            }
            // A resident layer is read once: drop its pages. A streamed one is read again on every
            // call: keep its clean file pages mapped (no page faults on the re-read; the kernel may
            // still reclaim them).
            if (l < resident) release_pages(m.weight);
            const uint64_t end = s.bias >= 0 ? static_cast<uint64_t>(s.bias + s.out * 4) : s.weight + n * esize;
            staged(sent, end);
            sent = end;
        }
        const auto norm = [&](const std::string& name, int64_t at, int64_t dim) {
            const std::vector<float> v = model::load_tensor_f32(ckpt, name, static_cast<uint64_t>(dim));
            std::memcpy(dst + at, v.data(), v.size() * 4);
        };
        norm(p.input_norm_name, static_cast<int64_t>(p.input_norm), c.hidden);
        norm(p.post_norm_name, static_cast<int64_t>(p.post_norm), c.hidden);
        if (p.q_norm >= 0) norm(p.q_norm_name, p.q_norm, c.head_dim);
        if (p.k_norm >= 0) norm(p.k_norm_name, p.k_norm, c.head_dim);
        if (sent < p.bytes) staged(sent, p.bytes);
    }

    // --- layer slots ---
    Slot& slot_of(int l) {
        const int64_t i = l < resident ? l : resident + (l - resident) % 2;
        return *slots[static_cast<size_t>(i)];
    }

    // Decides how many layers stay resident next to `fixed` bytes of per-call memory and
    // (re)allocates the slots when that changes. Keeps the cached layers otherwise.
    void configure_slots(uint64_t fixed) {
        const int64_t L = c.layers;
        const uint64_t S = align_up(slot_bytes);
        const uint64_t have = static_cast<uint64_t>(slots.size()) * S;
        const uint64_t others = arena.used - have;  // persistent buffers besides the slots
        const uint64_t avail = arena.limit > others + fixed ? arena.limit - others - fixed : 0;
        int64_t fit = S ? static_cast<int64_t>(avail / S) : L;
        int64_t want_resident = L, want_slots = L;
        const bool capped = opts.max_resident_layers >= 0 && opts.max_resident_layers < L;
        if (fit < L || capped) {
            if (L > 1 && fit < 2)
                throw Error("GPU memory budget " + mib(arena.limit) + " is too small: activations and workspaces need " +
                            mib(fixed + others) + " and streaming needs two layer slots of " + mib(S) +
                            "; raise --gpu-mem-budget or calibrate fewer sequences per batch");
            want_resident = std::min<int64_t>(fit - 2, capped ? opts.max_resident_layers : L);
            want_resident = std::max<int64_t>(want_resident, 0);
            want_slots = L > 1 ? want_resident + 2 : 1;
            if (want_slots >= L) want_resident = want_slots = L;
        }
        report.resident_layers = want_resident;
        report.streaming = want_resident < L;
        if (want_resident == resident && want_slots == static_cast<int64_t>(slots.size())) return;
        drain();
        slots.clear();
        resident = want_resident;
        for (int64_t i = 0; i < want_slots; ++i) {
            auto s = std::make_unique<Slot>();
            s->mem.alloc(arena, S, "a decoder layer slot");
            MICROSCALE_CUDA_CHECK(cudaEventCreateWithFlags(&s->loaded, cudaEventDisableTiming));
            MICROSCALE_CUDA_CHECK(cudaEventCreateWithFlags(&s->freed, cudaEventDisableTiming));
            slots.push_back(std::move(s));
        }
    }

    // Starts loading layer l into its slot: a host thread stages it into a pinned buffer, then
    // queues the copy on the copy stream after the compute stream released the slot.
    void issue_load(int l) {
        Slot& s = slot_of(l);
        s.layer = -1;
        MICROSCALE_CUDA_CHECK(cudaStreamWaitEvent(copy, s.freed, 0));
        const int pi = next_pinned;
        next_pinned ^= 1;
        Slot* sp = &s;
        prefetch = std::async(std::launch::async, [this, l, pi, sp] {
            MICROSCALE_CUDA_CHECK(cudaSetDevice(device));
            MICROSCALE_CUDA_CHECK(cudaEventSynchronize(pinned_done[pi]));  // its previous copy is done
            stage_layer(l, pinned[pi], [&](uint64_t b, uint64_t e) {
                MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(sp->mem.as<uint8_t>() + b, pinned[pi] + b, e - b,
                                                      cudaMemcpyHostToDevice, copy));
            });
            MICROSCALE_CUDA_CHECK(cudaEventRecord(pinned_done[pi], copy));
            MICROSCALE_CUDA_CHECK(cudaEventRecord(sp->loaded, copy));
        });
        prefetch_layer = l;
    }

    // The device blob of layer l, once the compute stream may read it.
    const uint8_t* acquire(int l) {
        Slot& s = slot_of(l);
        if (s.layer != l) {
            if (prefetch_layer != l) {
                if (prefetch.valid()) prefetch.get();
                issue_load(l);
            }
            const auto t0 = std::chrono::steady_clock::now();
            prefetch_layer = -1;
            prefetch.get();  // rethrows a staging error
            report.seconds_waiting_for_weights +=
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            report.weight_bytes_copied += plans[static_cast<size_t>(l)].bytes;
            s.layer = l;
        }
        MICROSCALE_CUDA_CHECK(cudaStreamWaitEvent(compute, s.loaded, 0));
        return s.mem.as<uint8_t>();
    }

    void prefetch_after(int l) {
        const int next = l + 1;
        if (next >= c.layers || slot_of(next).layer == next) return;
        issue_load(next);
    }

    void release_layer(int l) { MICROSCALE_CUDA_CHECK(cudaEventRecord(slot_of(l).freed, compute)); }

    // --- per-call memory ---
    // The tensor-core attention (bf16 q/k/v) runs in BF16 mode for the head sizes it has.
    bool flash() const { return bf16 && fwd::flash_attention_supported(c.head_dim); }

    WorkSizes work_sizes(int64_t T) const {
        const uint64_t t = static_cast<uint64_t>(T);
        const uint64_t H = c.hidden, qd = c.q_dim(), kvd = c.kv_dim(), I = c.intermediate;
        WorkSizes w;
        w.h = bf16 ? 0 : t * H * 4;
        w.x16 = bf16 ? t * std::max({H, qd, I}) * 2 : 0;
        w.qkv = t * (qd + 2 * kvd) * 4;
        w.qkv16 = flash() ? t * (qd + 2 * kvd) * 2 : 0;
        w.attn = flash() ? 0 : t * qd * 4;
        w.gu = t * 2 * I * (gu_fp32 ? 4 : 2);
        w.act = bf16 ? 0 : t * I * 4;
        return w;
    }
    uint64_t work_bytes(int64_t T) const { return work_sizes(T).total(); }
    uint64_t batch_bytes(int64_t T, int64_t seqs) const {
        return align_up(static_cast<uint64_t>(seqs + 1) * 8) + 2 * align_up(static_cast<uint64_t>(T * c.rotary_dim / 2) * 4);
    }

    void alloc_work(Work& w, int64_t T) {
        const WorkSizes z = work_sizes(T);
        w.tokens = T;
        w.h.alloc(arena, z.h, "activations");
        w.x16.alloc(arena, z.x16, "bf16 GEMM inputs");
        w.qkv.alloc(arena, z.qkv, "q|k|v");
        w.qkv16.alloc(arena, z.qkv16, "bf16 q|k|v");
        w.attn.alloc(arena, z.attn, "attention output");
        w.gu.alloc(arena, z.gu, "gate|up");
        w.act.alloc(arena, z.act, "SwiGLU output");
    }

    std::unique_ptr<DeviceBatch> make_batch(const model::TokenBatch& b) {
        auto d = std::make_unique<DeviceBatch>();
        d->tokens = b.tokens();
        d->seqs = b.sequences();
        d->max_len = b.max_length();
        const int64_t half = c.rotary_dim / 2;
        std::vector<float> cs(static_cast<size_t>(d->tokens * half)), sn(cs.size());
        const bool per_length = c.rope.type == model::RopeType::DYNAMIC;  // as run_decoder_layer
        model::RopeTable shared;
        if (!per_length && d->max_len > 0)
            shared = model::rope_table(
                model::rope_frequencies(c.rope, c.rotary_dim, c.max_position_embeddings, d->max_len), d->max_len);
        for (int64_t s = 0; s < d->seqs; ++s) {
            const int64_t r0 = b.offsets[static_cast<size_t>(s)], len = b.offsets[static_cast<size_t>(s) + 1] - r0;
            if (len <= 0) continue;
            model::RopeTable own;
            if (per_length)
                own = model::rope_table(model::rope_frequencies(c.rope, c.rotary_dim, c.max_position_embeddings, len),
                                        len);
            const model::RopeTable& t = per_length ? own : shared;
            std::memcpy(cs.data() + r0 * half, t.cos.data(), static_cast<size_t>(len * half) * 4);
            std::memcpy(sn.data() + r0 * half, t.sin.data(), static_cast<size_t>(len * half) * 4);
        }
        d->offsets.alloc(arena, b.offsets.size() * 8, "batch offsets");
        d->cos.alloc(arena, cs.size() * 4, "RoPE tables");
        d->sin.alloc(arena, sn.size() * 4, "RoPE tables");
        MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(d->offsets.as<void>(), b.offsets.data(), b.offsets.size() * 8,
                                              cudaMemcpyHostToDevice, compute));
        if (!cs.empty()) {
            MICROSCALE_CUDA_CHECK(
                cudaMemcpyAsync(d->cos.as<void>(), cs.data(), cs.size() * 4, cudaMemcpyHostToDevice, compute));
            MICROSCALE_CUDA_CHECK(
                cudaMemcpyAsync(d->sin.as<void>(), sn.data(), sn.size() * 4, cudaMemcpyHostToDevice, compute));
        }
        // The host vectors die here: wait for the (pageable, so staged) copies to finish.
        MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(compute));
        return d;
    }

    // --- one decoder layer ---
    // y[rows, out] (stride ldy) = x · Wᵀ (+ y when accumulate); fp32 output and accumulation.
    // y_bf16: y is bf16 (rounded from the fp32 accumulator), else fp32.
    void gemm(const void* x, int64_t rows, int64_t in, int64_t ldx, const void* w, int64_t out, void* y, int64_t ldy,
              bool accumulate, bool y_bf16 = false) {
        const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
        const cudaDataType_t t = bf16 ? CUDA_R_16BF : CUDA_R_32F;
        const cublasComputeType_t ct = bf16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_PEDANTIC;
        MICROSCALE_CUBLAS_CHECK(cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out),
                                             static_cast<int>(rows), static_cast<int>(in), &alpha, w, t,
                                             static_cast<int>(in), x, t, static_cast<int>(ldx), &beta, y, y_bf16 ? CUDA_R_16BF : CUDA_R_32F,
                                             static_cast<int>(ldy), ct, CUBLAS_GEMM_DEFAULT));
    }

    struct GemmInput {
        const void* ptr;
        int64_t ld;
    };
    // What the GEMMs read for the fp32 activation x: x itself, or its bf16 copy in work.x16.
    GemmInput gemm_input(Work& w, const float* x, int64_t rows, int64_t cols, int64_t ld) {
        if (!bf16) return {x, ld};
        fwd::launch_to_bf16(x, rows, cols, ld, w.x16.as<uint16_t>(), compute);
        return {w.x16.as<void>(), cols};
    }

    float* amax_at(size_t i) { return amax.as<float>() + i; }
    // amax buffer: [linears | k, v of each layer | lm_head input]; DevMem rounds its size up.
    size_t head_index() const { return layout.linears.size() + 2 * static_cast<size_t>(c.layers); }
    float* linear_amax(const LinearSlot* s) { return s ? amax_at(static_cast<size_t>(s->linear)) : nullptr; }

    // y_bf16 only for a linear without bias.
    void linear(const uint8_t* blob, const LinearSlot& s, GemmInput x, int64_t T, void* y, int64_t ldy,
                bool accumulate, bool y_bf16 = false) {
        gemm(x.ptr, T, s.in, x.ld, blob + s.weight, s.out, y, ldy, accumulate, y_bf16);
        if (s.bias >= 0)
            fwd::launch_add_bias(static_cast<float*>(y), T, s.out, ldy, reinterpret_cast<const float*>(blob + s.bias),
                                 compute);
    }

    // The GEMM input RMSNorm(x) · nw for rows [0, T) of x, its max |.| to the observers a0..a2
    // (null: none). BF16: one fused kernel writes the bf16 input; FP32: norm into work.h.
    GemmInput normed(Work& w, const float* x, int64_t T, const float* nw, float* a0, float* a1, float* a2) {
        const int64_t H = c.hidden;
        if (bf16) {
            fwd::launch_rms_norm_bf16(x, T, H, H, nw, c.rms_norm_eps, w.x16.as<uint16_t>(), H, a0, a1, a2, compute);
            return {w.x16.as<void>(), H};
        }
        float* h = w.h.as<float>();
        fwd::launch_rms_norm(x, T, H, H, nw, c.rms_norm_eps, h, H, compute);
        if (a0 || a1 || a2) fwd::launch_amax(h, T, H, H, a0, a1, a2, compute);
        return {h, H};
    }

    // RoPE and causal attention of q|k|v (fp32, after the projections and qk-norm): the o_proj
    // input, with the K/V observers (after RoPE) and o_proj's observer fed on the way.
    GemmInput attention(int l, const DeviceBatch& b, float* qkv, Work& w, float* k_amax, float* v_amax,
                        float* o_amax) {
        const int64_t T = b.tokens, qd = c.q_dim(), kvd = c.kv_dim(), ld_qkv = qd + 2 * kvd, half = c.rotary_dim / 2;
        const int64_t window = c.sliding_window.at(static_cast<size_t>(l));
        const float scaling = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
        if (flash()) {
            uint16_t* q16 = w.qkv16.as<uint16_t>();
            fwd::launch_rope_qkv_bf16(qkv, T, qd, kvd, c.head_dim, b.cos.as<float>(), b.sin.as<float>(), half, q16,
                                      k_amax, v_amax, compute);
            uint16_t* out = w.x16.as<uint16_t>();  // the q|k|v GEMM that read x16 has run
            fwd::launch_flash_attention(q16, ld_qkv, q16 + qd, q16 + qd + kvd, ld_qkv, b.offsets.as<int64_t>(), b.seqs,
                                        b.max_len, c.heads, c.kv_heads, c.head_dim, window, scaling, out, qd, o_amax,
                                        compute);
            return {out, qd};
        }
        float* q = qkv;
        float* k = q + qd;
        float* v = k + kvd;
        fwd::launch_rope(q, T, c.heads, c.head_dim, ld_qkv, b.cos.as<float>(), b.sin.as<float>(), half, compute);
        fwd::launch_rope(k, T, c.kv_heads, c.head_dim, ld_qkv, b.cos.as<float>(), b.sin.as<float>(), half, compute);
        if (k_amax) fwd::launch_amax(k, T, kvd, ld_qkv, k_amax, nullptr, nullptr, compute);
        if (v_amax) fwd::launch_amax(v, T, kvd, ld_qkv, v_amax, nullptr, nullptr, compute);
        float* attn = w.attn.as<float>();
        fwd::launch_causal_attention(q, ld_qkv, k, v, ld_qkv, b.offsets.as<int64_t>(), b.seqs, b.max_len, c.heads,
                                     c.kv_heads, c.head_dim, window, scaling, attn, qd, compute);
        if (o_amax) fwd::launch_amax(attn, T, qd, qd, o_amax, nullptr, nullptr, compute);
        return gemm_input(w, attn, T, qd, qd);
    }

    // silu(gate) · up of gu [T, 2I] (fp32, or bf16 when gu_bf16): the down_proj input, its
    // observer fed.
    GemmInput swiglu(Work& w, const void* gu, bool gu_bf16, int64_t T, float* amax) {
        const int64_t I = c.intermediate;
        if (bf16) {
            fwd::launch_swiglu_bf16(gu, gu_bf16, T, I, w.x16.as<uint16_t>(), amax, compute);
            return {w.x16.as<void>(), I};
        }
        float* act = w.act.as<float>();
        fwd::launch_swiglu(static_cast<const float*>(gu), T, I, act, compute);
        if (amax) fwd::launch_amax(act, T, I, I, amax, nullptr, nullptr, compute);
        return {act, I};
    }

    // hidden [T, H] is replaced by the layer's output (model::run_decoder_layer's op order).
    void run_layer(int l, const uint8_t* blob, const DeviceBatch& b, float* hidden, Work& w, bool observe) {
        const LayerPlan& p = plans[static_cast<size_t>(l)];
        const int64_t T = b.tokens;
        if (T <= 0) return;
        const int64_t H = c.hidden, qd = c.q_dim(), kvd = c.kv_dim(), I = c.intermediate, ld_qkv = qd + 2 * kvd;
        const auto f32 = [&](uint64_t off) { return reinterpret_cast<const float*>(blob + off); };
        const auto obs = [&](const LinearSlot* s) { return observe ? linear_amax(s) : nullptr; };
        float* qkv = w.qkv.as<float>();

        // --- attention block ---
        if (c.fused_projections) {
            const LinearSlot& s = *p.find(Role::ATTN_QKV);
            linear(blob, s, normed(w, hidden, T, f32(p.input_norm), obs(&s), nullptr, nullptr), T, qkv, ld_qkv, false);
        } else {
            const LinearSlot *sq = p.find(Role::ATTN_Q), *sk = p.find(Role::ATTN_K), *sv = p.find(Role::ATTN_V);
            const GemmInput x = normed(w, hidden, T, f32(p.input_norm), obs(sq), obs(sk), obs(sv));
            linear(blob, *sq, x, T, qkv, ld_qkv, false);
            linear(blob, *sk, x, T, qkv + qd, ld_qkv, false);
            linear(blob, *sv, x, T, qkv + qd + kvd, ld_qkv, false);
        }
        if (c.qk_norm) {
            fwd::launch_head_rms_norm(qkv, T, c.heads, c.head_dim, ld_qkv, f32(static_cast<uint64_t>(p.q_norm)),
                                      c.rms_norm_eps, compute);
            fwd::launch_head_rms_norm(qkv + qd, T, c.kv_heads, c.head_dim, ld_qkv,
                                      f32(static_cast<uint64_t>(p.k_norm)), c.rms_norm_eps, compute);
        }
        {
            const size_t kv0 = layout.linears.size() + 2 * static_cast<size_t>(l);
            const LinearSlot& o = *p.find(Role::ATTN_O);
            const GemmInput x = attention(l, b, qkv, w, observe ? amax_at(kv0) : nullptr,
                                          observe ? amax_at(kv0 + 1) : nullptr, obs(&o));
            linear(blob, o, x, T, hidden, H, /*accumulate=*/true);  // x += o_proj
        }

        // --- MLP block ---
        // BF16 mode keeps gate|up in bf16 (as torch's bf16 model does), unless a bias is added.
        void* gu = w.gu.as<void>();
        bool gu16 = bf16;
        if (c.fused_projections) {
            const LinearSlot& s = *p.find(Role::MLP_GATE_UP);
            gu16 = gu16 && s.bias < 0;
            linear(blob, s, normed(w, hidden, T, f32(p.post_norm), obs(&s), nullptr, nullptr), T, gu, 2 * I, false, gu16);
        } else {
            const LinearSlot *g = p.find(Role::MLP_GATE), *u = p.find(Role::MLP_UP);
            gu16 = gu16 && g->bias < 0 && u->bias < 0;
            const GemmInput x = normed(w, hidden, T, f32(p.post_norm), obs(g), obs(u), nullptr);
            linear(blob, *g, x, T, gu, 2 * I, false, gu16);
            linear(blob, *u, x, T, static_cast<uint8_t*>(gu) + I * (gu16 ? 2 : 4), 2 * I, false, gu16);
        }
        const LinearSlot& down = *p.find(Role::MLP_DOWN);
        linear(blob, down, swiglu(w, gu, gu16, T, obs(&down)), T, hidden, H, /*accumulate=*/true);  // x += down
    }

    void run_layers(const std::vector<std::pair<int64_t, const DeviceBatch*>>& batches, float* hidden, Work& w,
                    bool observe) {
        for (int l = 0; l < c.layers; ++l) {
            const uint8_t* blob = acquire(l);
            prefetch_after(l);  // the copy of layer l+1 overlaps the compute of layer l
            for (const auto& [row0, b] : batches) run_layer(l, blob, *b, hidden + row0 * c.hidden, w, observe);
            release_layer(l);
        }
    }

    GpuObserverStats download_stats() {
        const size_t nl = layout.linears.size(), L = static_cast<size_t>(c.layers);
        std::vector<float> a(nl + 2 * L + 1);
        MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(a.data(), amax.as<void>(), a.size() * 4, cudaMemcpyDeviceToHost, compute));
        MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(compute));
        GpuObserverStats s;
        s.input_amax.assign(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(nl));
        for (size_t l = 0; l < L; ++l) {
            s.k_amax.push_back(a[nl + 2 * l]);
            s.v_amax.push_back(a[nl + 2 * l + 1]);
        }
        s.head_amax = a[head_index()];
        return s;
    }

    const model::LinearModule& linear_with_role(Role r) const {
        for (const model::LinearModule& m : layout.linears)
            if (m.role == r) return m;
        throw Error("GPU forward: the model has no " + std::string(model::role_name(r)));
    }

    uint64_t head_bytes() const {
        return align_up(static_cast<uint64_t>(c.vocab * c.hidden) * esize) + align_up(static_cast<uint64_t>(c.hidden) * 4);
    }

    // Final norm and lm_head weights on the device (cached): the tied embedding when lm_head.weight
    // is absent, a quantized lm_head decoded, as ModelForward::lm_head.
    void ensure_head() {
        if (head_w.bytes()) return;
        const io::Checkpoint& ckpt = host.checkpoint();
        const int64_t H = c.hidden, V = c.vocab;
        std::string final_name;
        for (const model::NormTensor& n : layout.norms)
            if (n.role == model::NormRole::FINAL) final_name = n.tensor;
        if (final_name.empty()) throw Error("GPU forward: the model has no final norm");
        const std::vector<float> fn = model::load_tensor_f32(ckpt, final_name, static_cast<uint64_t>(H));
        final_norm_w.alloc(arena, fn.size() * 4, "the final norm");
        MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(final_norm_w.as<void>(), fn.data(), fn.size() * 4, cudaMemcpyHostToDevice, compute));
        const model::LinearModule& head = linear_with_role(Role::LM_HEAD);
        const std::string weight = head.weight.empty() ? linear_with_role(Role::EMBED).weight : head.weight;
        head_w.alloc(arena, static_cast<uint64_t>(V * H) * esize, "lm_head");
        const int64_t slab_rows = 4096;
        std::vector<float> slab;
        std::vector<uint16_t> slab16;
        const std::vector<float> whole = head.quant ? model::load_linear_weight(ckpt, head) : std::vector<float>{};
        for (int64_t v0 = 0; v0 < V; v0 += slab_rows) {
            const int64_t rows = std::min(slab_rows, V - v0);
            const float* src;
            if (head.quant) {
                src = whole.data() + v0 * H;
            } else {
                slab.resize(static_cast<size_t>(rows * H));
                model::load_rows_f32(ckpt, weight, v0, rows, H, slab.data());
                src = slab.data();
            }
            uint8_t* dst = head_w.as<uint8_t>() + static_cast<uint64_t>(v0 * H) * esize;
            if (bf16) {
                slab16.resize(static_cast<size_t>(rows * H));
                for (size_t i = 0; i < slab16.size(); ++i) slab16[i] = codec::bf16_from_float(src[i]);
                MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(dst, slab16.data(), slab16.size() * 2, cudaMemcpyHostToDevice, compute));
            } else {
                MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(rows * H) * 4, cudaMemcpyHostToDevice, compute));
            }
            MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(compute));  // the slab is reused next
        }
        MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(compute));
        release_pages(weight);
    }

    // Caches the embedding table on the device so that embeddings are gathered there, when the
    // checkpoint stores it as bf16 and it fits next to `fixed` bytes and every layer (it never
    // takes a layer's place). Otherwise the CPU looks the rows up (host.embed).
    bool ensure_embedding(uint64_t fixed) {
        if (embed_w.bytes()) return true;
        const model::LinearModule& e = linear_with_role(Role::EMBED);
        if (e.quant) return false;  // host.embed names the problem
        const io::TensorRef* ref = host.checkpoint().find(e.weight);
        const uint64_t n = static_cast<uint64_t>(c.vocab * c.hidden);
        if (!ref || ref->info->dtype != DType::BF16 || ref->info->numel() != n) return false;
        const uint64_t S = align_up(slot_bytes);
        const uint64_t layers = static_cast<uint64_t>(c.layers) * S;
        const uint64_t slots_now = static_cast<uint64_t>(slots.size()) * S;
        if (arena.used - slots_now + layers + fixed + align_up(n * 2) > arena.limit) return false;
        embed_w.alloc(arena, n * 2, "the embedding table");
        MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(embed_w.as<void>(), host.checkpoint().bytes(*ref).data(), n * 2,
                                              cudaMemcpyHostToDevice, compute));
        MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(compute));
        release_pages(e.weight);
        return true;
    }

    // n bytes of pageable host memory to the device, through the first pinned staging buffer when
    // no layer load holds it (a pageable copy of a 268 MB embedding batch ran at a few GB/s).
    // Returns once the copy is done.
    void upload_staged(void* dst, const void* src, uint64_t n) {
        if (prefetch.valid() || !pinned[0] || slot_bytes == 0) {
            MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, compute));
            MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(compute));
            return;
        }
        MICROSCALE_CUDA_CHECK(cudaEventSynchronize(pinned_done[0]));  // its last layer copy is done
        for (uint64_t off = 0; off < n; off += slot_bytes) {
            const uint64_t len = std::min<uint64_t>(slot_bytes, n - off);
            parallel_memcpy(pinned[0], static_cast<const uint8_t*>(src) + off, len);
            MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(static_cast<uint8_t*>(dst) + off, pinned[0], len,
                                                  cudaMemcpyHostToDevice, compute));
            MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(compute));  // pinned[0] is refilled next
        }
    }

    // Embeddings when the table is not on the device but streams through layer slots: the bf16
    // rows of the tokens are gathered on a few host threads into the first pinned buffer, copied
    // into the last streaming slot (as a table of those rows) and widened there by the embedding
    // kernel, a slot's worth of rows at a time. Half the bytes of host.embed's fp32 rows and no
    // single-threaded conversion. Returns false when that does not apply.
    bool embed_through_slot(const model::TokenSequences& seqs, float* dst) {
        const model::LinearModule& e = linear_with_role(Role::EMBED);
        const io::TensorRef* ref = e.quant ? nullptr : host.checkpoint().find(e.weight);
        const uint64_t H = static_cast<uint64_t>(c.hidden);
        if (!ref || ref->info->dtype != DType::BF16 || ref->info->numel() != static_cast<uint64_t>(c.vocab) * H)
            return false;
        if (static_cast<int64_t>(slots.size()) <= resident || prefetch.valid() || !pinned[0]) return false;
        const uint64_t row_bytes = H * 2, per_chunk = std::min<uint64_t>(slot_bytes / row_bytes, 1u << 20);
        if (per_chunk == 0) return false;
        host.check_token_ids(seqs);
        std::vector<int32_t> ids;
        for (const auto& sq : seqs) ids.insert(ids.end(), sq.begin(), sq.end());
        if (ids.empty()) return true;
        Slot& scratch = *slots.back();
        scratch.layer = -1;  // its layer is reloaded when next needed
        const uint64_t n_ids = std::min<uint64_t>(per_chunk, ids.size());
        std::vector<int32_t> iota(n_ids);
        for (uint64_t i = 0; i < n_ids; ++i) iota[i] = static_cast<int32_t>(i);
        DevMem d_iota;
        d_iota.alloc(arena, n_ids * 4, "token ids");
        MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(d_iota.as<void>(), iota.data(), n_ids * 4, cudaMemcpyHostToDevice, compute));
        MICROSCALE_CUDA_CHECK(cudaEventSynchronize(pinned_done[0]));  // its last layer copy is done
        const uint8_t* table = host.checkpoint().bytes(*ref).data();
        const unsigned threads = std::clamp(std::thread::hardware_concurrency() / 2, 1u, 8u);
        for (uint64_t r0 = 0; r0 < ids.size(); r0 += per_chunk) {
            const uint64_t rows = std::min<uint64_t>(per_chunk, ids.size() - r0);
            const auto gather = [&](unsigned part) {
                for (uint64_t r = part; r < rows; r += threads)
                    std::memcpy(pinned[0] + r * row_bytes, table + static_cast<uint64_t>(ids[r0 + r]) * row_bytes, row_bytes);
            };
            std::vector<std::thread> pool;
            for (unsigned t = 1; t < std::min<uint64_t>(threads, rows); ++t) pool.emplace_back(gather, t);
            gather(0);
            for (std::thread& t : pool) t.join();
            MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(scratch.mem.as<void>(), pinned[0], rows * row_bytes,
                                                  cudaMemcpyHostToDevice, compute));
            fwd::launch_embed_bf16(scratch.mem.as<uint16_t>(), d_iota.as<int32_t>(), static_cast<int64_t>(rows),
                                   c.hidden, dst + r0 * H, compute);
            MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(compute));  // pinned[0] and the slot are refilled next
        }
        release_pages(e.weight);
        return true;
    }

    // The embeddings of seqs into dst [tokens, H] (device): gathered from the cached table, from
    // rows staged through a layer slot, or looked up by the CPU and copied.
    void embed_into(const model::TokenSequences& seqs, float* dst, bool on_device) {
        if (!on_device) {
            if (embed_through_slot(seqs, dst)) {
                report.embeddings = "slot";
                return;
            }
            report.embeddings = "host";
            const std::vector<float> e = host.embed(seqs);
            upload_staged(dst, e.data(), e.size() * 4);
            return;
        }
        report.embeddings = "device";
        host.check_token_ids(seqs);
        std::vector<int32_t> ids;
        for (const auto& sq : seqs) ids.insert(ids.end(), sq.begin(), sq.end());
        if (ids.empty()) return;
        DevMem d_ids;
        d_ids.alloc(arena, ids.size() * 4, "token ids");
        MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(d_ids.as<void>(), ids.data(), ids.size() * 4, cudaMemcpyHostToDevice, compute));
        fwd::launch_embed_bf16(embed_w.as<uint16_t>(), d_ids.as<int32_t>(), static_cast<int64_t>(ids.size()), c.hidden,
                               dst, compute);
        MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(compute));  // ids and d_ids die here
    }

    std::vector<float> forward(const model::TokenSequences& seqs, GpuObserverStats* stats) {
        const model::TokenBatch tb = host.batch_of(seqs);
        const int64_t T = tb.tokens(), H = c.hidden, V = c.vocab;
        if (T <= 0) return {};
        const uint64_t fixed = align_up(static_cast<uint64_t>(T * H) * 4) + work_bytes(T) +
                               batch_bytes(T, tb.sequences()) + align_up(static_cast<uint64_t>(T * V) * 4) +
                               (head_w.bytes() ? 0 : head_bytes()) + align_up(static_cast<uint64_t>(T) * 4);
        const bool gather = ensure_embedding(fixed);
        configure_slots(fixed);
        ensure_head();
        DevMem hidden, logits;
        hidden.alloc(arena, static_cast<uint64_t>(T * H) * 4, "the residual stream");
        embed_into(seqs, hidden.as<float>(), gather);
        Work w;
        alloc_work(w, T);
        const std::unique_ptr<DeviceBatch> db = make_batch(tb);
        MICROSCALE_CUDA_CHECK(cudaMemsetAsync(amax.as<void>(), 0, amax.bytes(), compute));
        try {
            run_layers({{0, db.get()}}, hidden.as<float>(), w, stats != nullptr);
            const GemmInput x = normed(w, hidden.as<float>(), T, final_norm_w.as<float>(),
                                       stats ? amax_at(head_index()) : nullptr, nullptr, nullptr);
            logits.alloc(arena, static_cast<uint64_t>(T * V) * 4, "logits");
            gemm(x.ptr, T, H, x.ld, head_w.as<void>(), V, logits.as<float>(), V, false);
            std::vector<float> out(static_cast<size_t>(T * V));
            MICROSCALE_CUDA_CHECK(
                cudaMemcpyAsync(out.data(), logits.as<void>(), out.size() * 4, cudaMemcpyDeviceToHost, compute));
            MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(compute));
            if (stats) *stats = download_stats();
            report.peak_device_bytes = arena.peak;
            return out;
        } catch (...) {
            drain();  // no kernel or copy may still use the buffers freed on the way out
            throw;
        }
    }

    GpuObserverStats calibrate(const model::TokenSequences& seqs, int64_t batch_sequences) {
        const int64_t n = static_cast<int64_t>(seqs.size()), H = c.hidden;
        const int64_t bs = std::max<int64_t>(1, batch_sequences);
        std::vector<model::TokenBatch> layouts;
        std::vector<int64_t> row0s;
        int64_t T_all = 0, T_max = 0;
        for (int64_t s0 = 0; s0 < n; s0 += bs) {
            const int64_t s1 = std::min(n, s0 + bs);
            layouts.push_back(host.batch_of(model::TokenSequences(seqs.begin() + s0, seqs.begin() + s1)));
            row0s.push_back(T_all);
            T_all += layouts.back().tokens();
            T_max = std::max(T_max, layouts.back().tokens());
        }
        // Distinct batch layouts (equal-length samples: one, plus a shorter last batch).
        std::map<std::vector<int64_t>, size_t> distinct;
        for (const model::TokenBatch& b : layouts) distinct.emplace(b.offsets, distinct.size());
        uint64_t fixed = align_up(static_cast<uint64_t>(T_all * H) * 4) + work_bytes(T_max) +
                         align_up(static_cast<uint64_t>(H) * 4) +  // + the final norm
                         align_up(static_cast<uint64_t>(T_max) * 4);  // + one batch's token ids
        for (const auto& [offs, i] : distinct) {
            (void)i;
            fixed += batch_bytes(offs.back(), static_cast<int64_t>(offs.size()) - 1);
        }
        const bool gather = ensure_embedding(fixed);
        configure_slots(fixed);
        DevMem hidden;
        hidden.alloc(arena, static_cast<uint64_t>(T_all * H) * 4, "the calibration activations");
        for (size_t i = 0; i < layouts.size(); ++i) {
            const int64_t s0 = static_cast<int64_t>(i) * bs, s1 = std::min(n, s0 + bs);
            embed_into(model::TokenSequences(seqs.begin() + s0, seqs.begin() + s1), hidden.as<float>() + row0s[i] * H,
                       gather);
        }
        Work w;
        alloc_work(w, T_max);
        std::vector<std::unique_ptr<DeviceBatch>> dbs(distinct.size());
        for (const model::TokenBatch& b : layouts) {
            std::unique_ptr<DeviceBatch>& d = dbs[distinct.at(b.offsets)];
            if (!d) d = make_batch(b);
        }
        std::vector<std::pair<int64_t, const DeviceBatch*>> batches;
        for (size_t i = 0; i < layouts.size(); ++i) batches.emplace_back(row0s[i], dbs[distinct.at(layouts[i].offsets)].get());
        MICROSCALE_CUDA_CHECK(cudaMemsetAsync(amax.as<void>(), 0, amax.bytes(), compute));
        try {
            run_layers(batches, hidden.as<float>(), w, true);
            // lm_head's input: the final-norm output.
            std::string final_name;
            for (const model::NormTensor& nt : layout.norms)
                if (nt.role == model::NormRole::FINAL) final_name = nt.tensor;
            if (final_name.empty()) throw Error("GPU forward: the model has no final norm");
            const std::vector<float> fn = model::load_tensor_f32(host.checkpoint(), final_name, static_cast<uint64_t>(H));
            DevMem fnw;
            fnw.alloc(arena, fn.size() * 4, "the final norm");
            MICROSCALE_CUDA_CHECK(cudaMemcpyAsync(fnw.as<void>(), fn.data(), fn.size() * 4, cudaMemcpyHostToDevice, compute));
            MICROSCALE_CUDA_CHECK(cudaStreamSynchronize(compute));
            float* head_amax = amax_at(head_index());
            for (const auto& [row0, b] : batches) {
                normed(w, hidden.as<float>() + row0 * H, b->tokens, fnw.as<float>(), head_amax, nullptr, nullptr);
            }
            GpuObserverStats s = download_stats();
            report.peak_device_bytes = arena.peak;
            return s;
        } catch (...) {
            drain();
            throw;
        }
    }
};

GpuModelForward::GpuModelForward(model::ModelForward& host, const GpuForwardOptions& options)
    : impl_(std::make_unique<Impl>(host, options)) {}

GpuModelForward::~GpuModelForward() = default;

std::vector<float> GpuModelForward::forward(const model::TokenSequences& seqs, GpuObserverStats* stats) {
    MICROSCALE_CUDA_CHECK(cudaSetDevice(impl_->device));
    return impl_->forward(seqs, stats);
}

GpuObserverStats GpuModelForward::calibrate(const model::TokenSequences& seqs, int64_t batch_sequences) {
    MICROSCALE_CUDA_CHECK(cudaSetDevice(impl_->device));
    return impl_->calibrate(seqs, batch_sequences);
}

const GpuForwardReport& GpuModelForward::report() const { return impl_->report; }

}  // namespace microscale::cuda
