#include "core/device.h"

#include <fmt/core.h>

#include <charconv>

#include "cuda/device.h"
#include "microscale/error.h"

namespace microscale::core {

std::string Device::describe() const {
    if (!is_cuda()) return "cpu";
    const cuda::DeviceInfo d = cuda::device_info(index);
    return fmt::format("cuda:{} ({}, sm_{}{}, {:.0f} GiB)", index, d.name, d.cc_major, d.cc_minor,
                       static_cast<double>(d.total_bytes) / (1024.0 * 1024 * 1024));
}

Device resolve_device(const std::string& flag) {
    Device d;
    if (flag == "cpu") return d;
    if (flag == "auto" || flag.empty()) {
        if (cuda::device_count() == 0) return d;
        d.kind = Device::Kind::CUDA;
        cuda::select_device(0);
        return d;
    }
    if (flag.rfind("cuda", 0) != 0)
        throw Error(fmt::format("--device '{}': expected cpu, cuda, cuda:N or auto", flag));
    d.kind = Device::Kind::CUDA;
    if (flag.size() > 4) {
        const char* b = flag.data() + 5;
        const char* e = flag.data() + flag.size();
        const auto [p, ec] = std::from_chars(b, e, d.index);
        if (flag[4] != ':' || ec != std::errc() || p != e || d.index < 0)
            throw Error(fmt::format("--device '{}': expected cpu, cuda, cuda:N or auto", flag));
    }
    if (!cuda::compiled())
        throw Error(fmt::format("--device {}: this microscale was built without the CUDA backend; use --device cpu",
                                flag));
    if (cuda::device_count() == 0)
        throw Error(fmt::format("--device {}: {}; use --device cpu", flag, cuda::unavailable_reason()));
    cuda::select_device(d.index);
    return d;
}

}  // namespace microscale::core
