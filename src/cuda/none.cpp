// The CUDA entry points of a build without the CUDA backend: no devices, and a clear error for
// anyone who asks for GPU work.
#ifndef MICROSCALE_HAVE_CUDA

#include "cuda/device.h"
#include "cuda/gptq_cuda.h"
#include "cuda/quantize_cuda.h"
#include "microscale/error.h"

namespace microscale::cuda {
namespace {
[[noreturn]] void no_backend() {
    throw Error("this microscale was built without the CUDA backend (nvcc was not found at configure time); "
                "rebuild with CUDA 12+ installed, or use --device cpu");
}
}  // namespace

bool compiled() { return false; }
int device_count() { return 0; }
std::string unavailable_reason() { return "this build has no CUDA backend"; }
DeviceInfo device_info(int) { no_backend(); }
void select_device(int) { no_backend(); }
int selected_device() { return 0; }

format::QuantizedWeight quantize_weight(const format::WeightView&, const format::WeightQuantSpec&, core::ThreadPool*,
                                        const format::WeightView*) {
    no_backend();
}
std::vector<float> dequantize_weight(const format::QuantizedWeight&) { no_backend(); }
void wait_prefetch() noexcept {}

algo::GptqResult gptq(std::span<const float>, int64_t, int64_t, std::span<const float>, const algo::FixedGrid&,
                      const algo::GptqOptions&) {
    no_backend();
}
algo::GptqResult gptq_device(const float*, float*, int64_t, int64_t, const float*, const uint8_t*,
                             algo::FixedGrid::Kind, float, const algo::GptqOptions&, bool, void*) {
    no_backend();
}

}  // namespace microscale::cuda

#endif
