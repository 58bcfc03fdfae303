// Subcommand registry: each cli/<name>.cpp adds its subcommand and a callback.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace microscale::cli {

// Each register_* adds a subcommand whose callback runs when it is selected.
void register_formats(CLI::App& app);
void register_recipes(CLI::App& app);
void register_inspect(CLI::App& app);
void register_synth(CLI::App& app);
void register_quantize(CLI::App& app);
void register_eval(CLI::App& app);
void register_autoquant(CLI::App& app);

// Run the callback of the selected subcommand (callbacks are attached with final_callback).
inline void run_selected(CLI::App&) {}

}  // namespace microscale::cli
