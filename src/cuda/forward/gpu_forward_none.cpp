// GpuModelForward in a build without the CUDA backend: constructing one is a clear error.
#ifndef MICROSCALE_HAVE_CUDA

#include "cuda/forward/gpu_forward.h"
#include "microscale/error.h"

namespace microscale::cuda {

struct GpuModelForward::Impl {
    GpuForwardReport report;
};

GpuModelForward::GpuModelForward(model::ModelForward&, const GpuForwardOptions&) {
    throw Error("the GPU forward pass needs the CUDA backend, and this microscale was built without it (nvcc was "
                "not found at configure time); rebuild with CUDA 12+ installed, or use --device cpu");
}
GpuModelForward::~GpuModelForward() = default;
std::vector<float> GpuModelForward::forward(const model::TokenSequences&, GpuObserverStats*) { return {}; }
GpuObserverStats GpuModelForward::calibrate(const model::TokenSequences&, int64_t) { return {}; }
const GpuForwardReport& GpuModelForward::report() const { return impl_->report; }

}  // namespace microscale::cuda

#endif
