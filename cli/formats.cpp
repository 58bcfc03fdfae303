// `microscale formats`: the format table, the same rows CLI help and size estimates use.
#include <fmt/core.h>

#include "cli/commands.h"
#include "microscale/format.h"

namespace microscale::cli {

void register_formats(CLI::App& app) {
    auto* cmd = app.add_subcommand("formats", "List the weight formats and their storage cost");
    cmd->final_callback([] {
        fmt::print("{:<12} {:>6} {:>5} {:>6} {:>9}  {}\n", "format", "block", "bits", "scale", "bits/elem",
                   "description");
        for (const FormatInfo& f : format_table()) {
            const char* scale = f.block_scale == ScaleType::E4M3   ? "e4m3"
                                : f.block_scale == ScaleType::E8M0 ? "e8m0"
                                : f.per_tensor_scale               ? "fp32"
                                                                   : "-";
            fmt::print("{:<12} {:>6} {:>5} {:>6} {:>9.2f}  {}\n", f.name,
                       f.block_elems ? std::to_string(f.block_elems) : std::string("tensor"), f.elem_bits,
                       scale, f.effective_bits, f.summary);
        }
    });
}

}  // namespace microscale::cli
