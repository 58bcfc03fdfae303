// `microscale recipes [NAME|FILE]`: list the built-in presets, or print a recipe's resolved rule list
// (imports spliced, legacy form normalised) and, with --resolve, what given quantizers resolve to.
#include <fmt/core.h>

#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "microscale/error.h"
#include "microscale/format.h"
#include "recipe/recipe.h"

namespace microscale::cli {
namespace {

struct RecipesArgs {
    std::string recipe;
    std::vector<std::string> resolve;
    std::string module_class = "nn.Linear";
};

void list_presets() {
    size_t width = 0;
    for (const recipe::PresetInfo& p : recipe::presets()) width = std::max(width, p.name.size());
    for (const recipe::PresetInfo& p : recipe::presets())
        fmt::print("{:<{}}  {}\n", p.name, width, p.description);
    fmt::print("\n`microscale recipes NAME|FILE` prints a recipe's rules; join a KV unit with '+' "
               "(NVFP4_DEFAULT_CFG+FP8_KV_CFG).\n");
}

std::string format_label(const recipe::QuantizerAttributes& q, const std::string& name) {
    try {
        const bool weight = name.size() >= 16 && name.ends_with("weight_quantizer");
        const auto f = weight ? recipe::weight_format_of(q, name) : recipe::activation_format_of(q, name);
        return f ? std::string(format_info(*f).name) : std::string("bf16 (off)");
    } catch (const Error&) {
        return "not a microscale format";
    }
}

void show_recipe(const RecipesArgs& args) {
    const recipe::Recipe r = recipe::load_recipe(args.recipe);
    fmt::print("recipe       {}\n", r.name);
    fmt::print("source       {}\n", r.source);
    if (!r.description.empty()) fmt::print("description  {}\n", r.description);
    std::string algos;
    for (const recipe::Algorithm& a : r.algorithms) algos += (algos.empty() ? "" : ", ") + recipe::describe(a);
    fmt::print("algorithm    {}\n", algos.empty() ? "null (no calibration)" : algos);
    fmt::print("eff. bits    {} (AutoQuantize cost, spec §8)\n", recipe::autoquant_effective_bits(r));
    fmt::print("rules        {} (in order, later rules win)\n", r.rules.size());
    for (size_t i = 0; i < r.rules.size(); ++i)
        fmt::print("  {:>3}  {:<60}  {}\n", i, recipe::describe(r.rules[i]), r.rules[i].where.str());
    for (const std::string& w : r.warnings) fmt::print("warning: {}\n", w);
    for (const std::string& name : args.resolve) {
        const recipe::Resolution res = recipe::resolve_traced(r, name, args.module_class);
        fmt::print("{}\n  -> {}  [{}]  (last rule {}, attributes from {})\n", name, recipe::describe(res.attrs),
                   format_label(res.attrs, name), res.last_rule < 0 ? std::string("none") : std::to_string(res.last_rule),
                   res.cfg_rule < 0 ? std::string("ModelOpt defaults") : "rule " + std::to_string(res.cfg_rule));
    }
}

}  // namespace

void register_recipes(CLI::App& app) {
    auto args = std::make_shared<RecipesArgs>();
    auto* cmd = app.add_subcommand("recipes", "List built-in recipes, or show a recipe's resolved rules");
    cmd->add_option("recipe", args->recipe, "Preset name (NVFP4_DEFAULT_CFG, A+B) or YAML recipe file");
    cmd->add_option("--resolve", args->resolve, "Quantizer names to resolve, e.g. model.layers.0.mlp.up_proj.weight_quantizer");
    cmd->add_option("--module-class", args->module_class, "Module kind for parent_class rules (default nn.Linear)");
    cmd->final_callback([args] {
        if (args->recipe.empty()) list_presets();
        else show_recipe(*args);
    });
}

}  // namespace microscale::cli
