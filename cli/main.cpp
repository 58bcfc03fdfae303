// microscale command line: one file per subcommand, registered here. Only cli/ exits.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "cli/device_option.h"
#include "microscale/error.h"

int main(int argc, char** argv) {
    CLI::App app{"microscale: quantize Hugging Face checkpoints to NVFP4 / FP8 / MX formats"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string(MICROSCALE_VERSION));
    microscale::cli::register_formats(app);
    microscale::cli::register_recipes(app);
    microscale::cli::register_inspect(app);
    microscale::cli::register_synth(app);
    microscale::cli::register_quantize(app);
    microscale::cli::register_eval(app);
    microscale::cli::register_autoquant(app);
    microscale::cli::add_device_option_everywhere(app);
    try {
        app.parse(argc, argv);  // subcommands run from final_callback, i.e. inside parse()
        microscale::cli::run_selected(app);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const microscale::Error& e) {
        std::fprintf(stderr, "microscale: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "microscale: internal error: %s\n", e.what());
        return 2;
    }
    return 0;
}
