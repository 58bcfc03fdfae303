#include "core/blas_check.h"

#include <cblas.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>

namespace microscale::core {

std::optional<std::string> blas_core_advice(std::string_view core, bool avx2, bool avx512) {
    std::string name(core);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    // OpenBLAS x86 targets without AVX2 kernels.
    constexpr std::array<std::string_view, 14> kPreAvx2 = {
        "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn",
        "dunnington", "nehalem", "opteron", "barcelona", "sandybridge", "unknown"};
    if (!avx2 || std::find(kPreAvx2.begin(), kPreAvx2.end(), name) == kPreAvx2.end()) return std::nullopt;
    const char* want = avx512 ? "SkylakeX" : "Haswell";
    return "OpenBLAS detected this CPU as '" + std::string(core) + "' although it has " +
           (avx512 ? "AVX-512" : "AVX2") + ": its sgemm is several times slower than it could be (common in " +
           "VMs). Set OPENBLAS_CORETYPE=" + want + " in the environment for a faster CPU forward pass.";
}

std::optional<std::string> blas_core_advice_here() {
    if (std::getenv("OPENBLAS_CORETYPE")) return std::nullopt;
#if defined(__x86_64__) || defined(__i386__)
    const char* core = openblas_get_corename();
    return blas_core_advice(core ? core : "unknown", __builtin_cpu_supports("avx2"),
                            __builtin_cpu_supports("avx512f"));
#else
    return std::nullopt;
#endif
}

}  // namespace microscale::core
