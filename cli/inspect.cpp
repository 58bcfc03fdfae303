// `microscale inspect DIR [--json] [--tensors] [--verify]`: formats, storage and effective bits
// per element of any checkpoint (original, ModelOpt export, compressed-tensors).
#include <fmt/core.h>

#include <memory>
#include <string>

#include "cli/commands.h"
#include "export/inspect.h"
#include "export/verify.h"

namespace microscale::cli {

void register_inspect(CLI::App& app) {
    struct Options {
        std::string dir;
        bool json = false, tensors = false, verify = false;
    };
    auto opts = std::make_shared<Options>();
    auto* cmd = app.add_subcommand("inspect", "Show a checkpoint's tensors, formats and effective bits per element");
    cmd->add_option("dir", opts->dir, "Checkpoint directory (config.json + safetensors)")->required();
    cmd->add_flag("--json", opts->json, "Print one machine-readable JSON object");
    cmd->add_flag("--tensors", opts->tensors, "List every tensor (name, dtype, shape, bytes)");
    cmd->add_flag("--verify", opts->verify, "Also run the export verifier (quantized checkpoints); fail on problems");
    cmd->final_callback([opts] {
        const auto report = exporter::inspect_checkpoint(opts->dir, opts->tensors);
        std::optional<exporter::VerifyReport> verified;
        if (opts->verify) verified = exporter::verify_export(opts->dir);  // throws listing the problems
        if (opts->json) {
            auto j = exporter::inspect_to_json(report, opts->tensors);
            if (verified) {
                j["verify"] = {{"ok", true},
                               {"quantized_layers", verified->quantized_layers},
                               {"fused_groups_checked", verified->fused_groups_checked},
                               {"warnings", verified->warnings}};
            }
            fmt::print("{}\n", j.dump(2));
            return;
        }
        fmt::print("{}", exporter::format_inspect_text(report, opts->tensors));
        if (verified) {
            fmt::print("\n{}\n", exporter::verify_summary(*verified));
            for (const auto& w : verified->warnings) fmt::print("  warning: {}\n", w);
        }
    });
}

}  // namespace microscale::cli
