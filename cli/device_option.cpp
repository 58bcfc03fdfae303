#include "cli/device_option.h"

#include <fmt/core.h>

#include "core/device.h"

namespace microscale::cli {

void add_device_option_everywhere(CLI::App& app) {
    for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
        if (sub->get_option_no_throw("--device") != nullptr) continue;
        auto device = add_device_option(sub);
        sub->parse_complete_callback([sub, device] {
            if (sub->count("--device") == 0) return;  // the default: nothing here needs a GPU
            const core::Device d = core::resolve_device(*device);
            const std::string name = sub->get_name();
            if (d.is_cuda() && name == "autoquant")
                fmt::print(stderr, "note: {} runs its forward pass on the CPU in this version (the GPU forward, "
                                   "docs/GPU_FORWARD.md, is not wired into it yet)\n", name);
        });
    }
}

}  // namespace microscale::cli
