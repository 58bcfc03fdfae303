// `--device cpu|cuda[:N]|auto`, the same on every subcommand.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

namespace microscale::cli {

// Adds the option to cmd; the returned string holds the value after parsing ("auto" by default).
inline std::shared_ptr<std::string> add_device_option(CLI::App* cmd) {
    auto device = std::make_shared<std::string>("auto");
    cmd->add_option("--device", *device,
                    "Where compute runs: auto (cuda:0 when this build has CUDA and a GPU is visible, else cpu), "
                    "cpu, cuda or cuda:N")
        ->capture_default_str();
    return device;
}

// --device on every subcommand that does not add its own (quantize does). Those subcommands
// compute on the CPU in this version: an explicit value is still checked (a typo or a missing
// GPU is an error), and autoquant says that its forward pass stays on the CPU.
void add_device_option_everywhere(CLI::App& app);

}  // namespace microscale::cli
