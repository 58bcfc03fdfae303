// The architecture registry: config.json model_type -> the file that knows its tensors. An
// explicit table, not self-registering statics (those are dropped when linking a static library).
#include <algorithm>
#include <array>

#include "model/arch.h"

namespace microscale::model {

namespace {

constexpr std::array<ArchEntry, 5> kArchs{{
    {"llama", "llama", &build_llama},
    {"mistral", "mistral", &build_mistral},
    {"phi3", "phi3", &build_phi3},
    {"qwen2", "qwen2", &build_qwen2},
    {"qwen3", "qwen3", &build_qwen3},
}};

}  // namespace

std::span<const ArchEntry> arch_registry() { return kArchs; }

const ArchEntry* find_arch(std::string_view model_type) {
    for (const ArchEntry& e : kArchs)
        if (e.model_type == model_type) return &e;
    return nullptr;
}

std::vector<std::string> supported_model_types() {
    std::vector<std::string> out;
    for (const ArchEntry& e : kArchs) out.emplace_back(e.model_type);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace microscale::model
