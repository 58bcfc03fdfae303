// GPU discovery and selection, with no CUDA headers so every translation unit can include it.
// Without the CUDA backend compiled in (or without a driver / GPU) device_count() is 0.
#pragma once

#include <cstdint>
#include <string>

namespace microscale::cuda {

struct DeviceInfo {
    int index = 0;
    std::string name;
    int cc_major = 0, cc_minor = 0;
    int sm_count = 0;
    uint64_t total_bytes = 0;
};

bool compiled();                // this build has the CUDA backend
int device_count();             // usable GPUs; 0 when none, never throws
std::string unavailable_reason();  // why device_count() is 0 (for error messages)
DeviceInfo device_info(int index);

// The GPU later calls run on (every host thread sets it before touching the GPU).
void select_device(int index);  // throws microscale::Error for an index that does not exist
int selected_device();

}  // namespace microscale::cuda
