#include "calib/runner.h"

#include <fmt/core.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>

#include "cuda/forward/gpu_forward.h"
#include "microscale/error.h"

namespace microscale::calib {
namespace {

// fp32 activations [tokens, hidden]: anonymous memory within the budget, else a mapping of an
// unlinked temporary file, which the kernel pages out to disk under memory pressure.
class ActivationStore {
public:
    ActivationStore(uint64_t floats, uint64_t budget) : bytes_(floats * sizeof(float)) {
        if (bytes_ <= budget) {
            mem_.resize(floats);
            data_ = mem_.data();
            return;
        }
        char tmpl[] = "/tmp/microscale-activations-XXXXXX";
        fd_ = mkstemp(tmpl);
        if (fd_ < 0) throw Error(fmt::format("calibration: cannot create a spill file for {} bytes", bytes_));
        unlink(tmpl);
        if (ftruncate(fd_, static_cast<off_t>(bytes_)) != 0)
            throw Error(fmt::format("calibration: cannot size the spill file to {} bytes (disk full?)", bytes_));
        void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
        if (p == MAP_FAILED) throw Error("calibration: cannot map the activation spill file");
        data_ = static_cast<float*>(p);
    }
    ~ActivationStore() {
        if (fd_ >= 0) {
            munmap(data_, bytes_);
            close(fd_);
        }
    }
    ActivationStore(const ActivationStore&) = delete;
    ActivationStore& operator=(const ActivationStore&) = delete;
    float* data() { return data_; }
    bool spilled() const { return fd_ >= 0; }

private:
    uint64_t bytes_;
    std::vector<float> mem_;
    float* data_ = nullptr;
    int fd_ = -1;
};

float max_abs(const float* x, int64_t rows, int64_t cols, int64_t ld) {
    float m = 0.0f;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) m = std::fmax(m, std::fabs(x[r * ld + c]));
    return m;
}

class AmaxObserver : public model::LayerObserver {
public:
    AmaxObserver(CalibStats& stats, const model::ModelLayout& layout) : stats_(stats), layout_(layout) {}
    void linear_input(const model::LinearWeights& linear, const float* x, int64_t rows, int64_t ld) override {
        float& a = stats_.input_amax[linear.name];
        a = std::fmax(a, max_abs(x, rows, linear.in, ld));
    }
    void key_values(int layer, const float* k, const float* v, int64_t rows, int64_t cols, int64_t ld) override {
        for (const model::AttentionModule& att : layout_.attentions) {
            if (att.layer != layer) continue;
            float& ka = stats_.k_amax[att.name];
            float& va = stats_.v_amax[att.name];
            ka = std::fmax(ka, max_abs(k, rows, cols, ld));
            va = std::fmax(va, max_abs(v, rows, cols, ld));
        }
    }

private:
    CalibStats& stats_;
    const model::ModelLayout& layout_;
};

// Sends every callback to two observers.
class FanoutObserver : public model::LayerObserver {
public:
    FanoutObserver(model::LayerObserver& a, model::LayerObserver* b) : a_(a), b_(b) {}
    void linear_input(const model::LinearWeights& l, const float* x, int64_t rows, int64_t ld) override {
        a_.linear_input(l, x, rows, ld);
        if (b_) b_->linear_input(l, x, rows, ld);
    }
    void key_values(int layer, const float* k, const float* v, int64_t rows, int64_t cols, int64_t ld) override {
        a_.key_values(layer, k, v, rows, cols, ld);
        if (b_) b_->key_values(layer, k, v, rows, cols, ld);
    }
    // Only b_ may quantize what the GEMMs read (the amax observer a_ never does).
    const float* transform_linear_input(const model::LinearWeights& l, const float* x, int64_t rows, int64_t ld,
                                        std::vector<float>& scratch) override {
        return b_ ? b_->transform_linear_input(l, x, rows, ld, scratch) : x;
    }
    void transform_key_values(int layer, float* k, float* v, int64_t rows, int64_t cols, int64_t ld) override {
        if (b_) b_->transform_key_values(layer, k, v, rows, cols, ld);
    }

private:
    model::LayerObserver& a_;
    model::LayerObserver* b_;
};

// The rerun of a changed layer: no statistics, only the observer's quantizers (a W4A4 layer's
// outputs are then what the deployed model computes).
class TransformOnlyObserver : public model::LayerObserver {
public:
    explicit TransformOnlyObserver(model::LayerObserver& b) : b_(b) {}
    const float* transform_linear_input(const model::LinearWeights& l, const float* x, int64_t rows, int64_t ld,
                                        std::vector<float>& scratch) override {
        return b_.transform_linear_input(l, x, rows, ld, scratch);
    }
    void transform_key_values(int layer, float* k, float* v, int64_t rows, int64_t cols, int64_t ld) override {
        b_.transform_key_values(layer, k, v, rows, cols, ld);
    }

private:
    model::LayerObserver& b_;
};

}  // namespace

CalibStats calibrate_max(model::ModelForward& model, const CalibSet& set, const RunnerOptions& opts,
                         RunnerReport* report, const std::function<void(int, int)>& progress) {
    const auto t0 = std::chrono::steady_clock::now();
    if (set.samples.empty()) throw Error("calibration: no samples");
    if (opts.gpu && !opts.quantize_layer && !opts.extra_observer && !opts.after_layer) {
        cuda::GpuForwardOptions g;
        g.mem_budget_bytes = opts.gpu_mem_budget_bytes;
        cuda::GpuForwardReport gr;
        CalibStats s = cuda::calibrate_max_gpu(model, set, opts.batch_sequences, g, &gr);
        if (report) {
            report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            report->gpu = true;
            report->gpu_streamed = gr.streaming;
            report->peak_layer_bytes = gr.layer_bytes;
        }
        return s;
    }
    const int64_t hidden = model.config().hidden;
    const int64_t n_seq = static_cast<int64_t>(set.samples.size());
    const int64_t len = static_cast<int64_t>(set.samples[0].size());
    for (const auto& s : set.samples)
        if (static_cast<int64_t>(s.size()) != len) throw Error("calibration: samples must have equal length");
    const uint64_t floats = static_cast<uint64_t>(n_seq * len * hidden);
    ActivationStore store(floats, opts.activation_budget_bytes);
    const int64_t bs = std::max<int64_t>(1, opts.batch_sequences);
    // Embeddings, batch by batch, into the store.
    for (int64_t s0 = 0; s0 < n_seq; s0 += bs) {
        const int64_t s1 = std::min(n_seq, s0 + bs);
        const model::TokenSequences chunk(set.samples.begin() + s0, set.samples.begin() + s1);
        const std::vector<float> e = model.embed(chunk);
        std::memcpy(store.data() + s0 * len * hidden, e.data(), e.size() * sizeof(float));
    }
    CalibStats stats;
    AmaxObserver amax_observer(stats, model.layout());
    FanoutObserver observer(amax_observer, opts.extra_observer);
    std::optional<TransformOnlyObserver> rerun_observer;
    if (opts.extra_observer) rerun_observer.emplace(*opts.extra_observer);
    const int n_layers = static_cast<int>(model.config().layers);
    uint64_t peak_layer = 0;
    std::vector<float> buf;
    for (int l = 0; l < n_layers; ++l) {
        model::DecoderLayerWeights w = model.load_layer(l);
        // The fp32 copy is all the layer needs now: drop the mapped checkpoint pages so resident
        // memory stays at one layer, whatever the model size.
        for (const model::LinearModule& m : model.layout().linears)
            if (m.layer == l && !m.weight.empty())
                if (const io::TensorRef* t = model.checkpoint().find(m.weight)) t->file->release(*t->info);
        if (opts.quantize_layer) opts.quantize_layer(w);
        peak_layer = std::max(peak_layer, w.bytes());
        // Pass 1 with the loaded weights, observed. With an after_layer hook (which may change the
        // weights) pass 1 keeps the layer's inputs and pass 2 reruns the changed layer to make the
        // outputs the next layer sees.
        const bool keep_inputs = opts.after_layer && opts.rerun_after_layer;
        for (int pass = 0; pass < 2; ++pass) {
            for (int64_t s0 = 0; s0 < n_seq; s0 += bs) {
                const int64_t s1 = std::min(n_seq, s0 + bs);
                const model::TokenSequences chunk(set.samples.begin() + s0, set.samples.begin() + s1);
                const model::TokenBatch batch = model.batch_of(chunk);
                float* at = store.data() + s0 * len * hidden;
                buf.assign(at, at + (s1 - s0) * len * hidden);
                model.run_layer(w, batch, buf,
                                pass == 0 ? static_cast<model::LayerObserver*>(&observer)
                                          : (rerun_observer ? &*rerun_observer : nullptr));
                if (pass == 1 || !keep_inputs) std::memcpy(at, buf.data(), buf.size() * sizeof(float));
            }
            if (!keep_inputs) {
                if (opts.after_layer) opts.after_layer(w);
                break;
            }
            if (pass == 1) break;
            opts.after_layer(w);
        }
        if (progress) progress(l + 1, n_layers);
    }
    // lm_head sees the final-norm output.
    float head = 0.0f;
    for (int64_t s0 = 0; s0 < n_seq; s0 += bs) {
        const int64_t s1 = std::min(n_seq, s0 + bs);
        float* at = store.data() + s0 * len * hidden;
        buf.assign(at, at + (s1 - s0) * len * hidden);
        model.final_norm(buf);
        head = std::fmax(head, max_abs(buf.data(), (s1 - s0) * len, hidden, hidden));
    }
    for (const model::LinearModule& m : model.layout().linears)
        if (m.role == model::Role::LM_HEAD) stats.input_amax[m.name] = head;
    StatsProvenance& p = stats.provenance;
    p.tool_version = MICROSCALE_VERSION;
    p.model_type = model.layout().model_type;
    p.dataset = set.source;
    p.dataset_hash = set.content_hash;
    p.dataset_format = set.format;
    p.samples = n_seq;
    p.seq_len = len;
    p.tokens = n_seq * len;
    p.seed = set.seed;
    p.sequential_quantized = static_cast<bool>(opts.quantize_layer) || (opts.after_layer && opts.rerun_after_layer);
    if (report) {
        report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        report->spilled = store.spilled();
        report->activation_bytes = floats * sizeof(float);
        report->peak_layer_bytes = peak_layer;
    }
    return stats;
}

}  // namespace microscale::calib
