// calibrate_max on the GPU: GpuModelForward::calibrate's device statistics turned into the
// CalibStats that calib::calibrate_max writes (same keys, same provenance fields).
#include <stdexcept>

#include "cuda/forward/gpu_forward.h"
#include "microscale/error.h"

namespace microscale::cuda {

calib::CalibStats calibrate_max_gpu(model::ModelForward& model, const calib::CalibSet& set, int64_t batch_sequences,
                                    const GpuForwardOptions& options, GpuForwardReport* report) {
    if (set.samples.empty()) throw Error("calibration: no samples");
    const size_t len = set.samples[0].size();
    for (const auto& s : set.samples)
        if (s.size() != len) throw Error("calibration: samples must have equal length");
    GpuModelForward gpu(model, options);
    const GpuObserverStats g = gpu.calibrate(set.samples, batch_sequences);
    const model::ModelLayout& layout = model.layout();
    calib::CalibStats stats;
    for (size_t i = 0; i < layout.linears.size(); ++i) {
        const model::LinearModule& m = layout.linears[i];
        if (m.role == model::Role::LM_HEAD) stats.input_amax[m.name] = g.head_amax;
        else if (m.layer >= 0) stats.input_amax[m.name] = g.input_amax.at(i);
    }
    for (const model::AttentionModule& att : layout.attentions) {
        if (att.layer < 0 || att.layer >= static_cast<int>(g.k_amax.size())) continue;
        stats.k_amax[att.name] = g.k_amax[static_cast<size_t>(att.layer)];
        stats.v_amax[att.name] = g.v_amax[static_cast<size_t>(att.layer)];
    }
    calib::StatsProvenance& p = stats.provenance;
    p.tool_version = MICROSCALE_VERSION;
    p.model_type = layout.model_type;
    p.dataset = set.source;
    p.dataset_hash = set.content_hash;
    p.dataset_format = set.format;
    p.samples = static_cast<int64_t>(set.samples.size());
    p.seq_len = static_cast<int64_t>(len);
    p.tokens = p.samples * p.seq_len;
    p.seed = set.seed;
    if (report) *report = gpu.report();
    return stats;
}

}  // namespace microscale::cuda
