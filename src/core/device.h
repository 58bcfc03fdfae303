// Where compute runs: `--device cpu|cuda[:N]|auto` on every subcommand. auto (the default) is
// cuda:0 when this build has the CUDA backend and a GPU is visible, otherwise cpu.
#pragma once

#include <string>

namespace microscale::core {

struct Device {
    enum class Kind { CPU, CUDA } kind = Kind::CPU;
    int index = 0;
    bool is_cuda() const { return kind == Kind::CUDA; }
    std::string describe() const;  // "cpu", "cuda:0 (NVIDIA H200, sm_90, 139 GiB)"
};

// Parses and resolves the flag; for cuda it also selects the GPU for the calling process.
// Throws microscale::Error for a malformed value, or cuda without a usable GPU.
Device resolve_device(const std::string& flag);

}  // namespace microscale::core
