// OpenBLAS picks its kernels from the CPU it detects at load time, and in some VMs it detects a
// pre-AVX core (e.g. "Prescott") on a CPU with AVX2 / AVX-512: sgemm then runs ~4x slower
// (measured on the dev box: OPENBLAS_CORETYPE=SkylakeX made the CPU forward 4.5x faster). The
// CPU forward warns once when that happens; OpenBLAS reads OPENBLAS_CORETYPE only at load time,
// so the user has to set it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace microscale::core {

// The advice for OpenBLAS core `core` on a CPU with the given features; nullopt when the core
// already uses them, or the CPU lacks AVX2.
std::optional<std::string> blas_core_advice(std::string_view core, bool avx2, bool avx512);

// blas_core_advice for this process's OpenBLAS and CPU (nullopt when OPENBLAS_CORETYPE is set).
std::optional<std::string> blas_core_advice_here();

}  // namespace microscale::core
