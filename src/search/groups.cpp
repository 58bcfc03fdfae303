#include "search/groups.h"

#include <fmt/core.h>

#include <cmath>
#include <map>

#include "microscale/error.h"

namespace microscale::search {
namespace {

// "<prefix>.experts" when name is "<prefix>.experts.<digits>.<anything>", else "".
std::string experts_key(const std::string& name) {
    for (size_t at = name.find(".experts."); at != std::string::npos; at = name.find(".experts.", at + 1)) {
        size_t i = at + 9, j = i;
        while (j < name.size() && std::isdigit(static_cast<unsigned char>(name[j]))) ++j;
        if (j > i && j < name.size() && name[j] == '.') return name.substr(0, at + 8);
    }
    return {};
}

std::string fused_name(const model::ModelLayout& layout, const model::FusedGroup& g) {
    // "<parent>.{q,k,v}_proj" from the members' common parent and leaf names.
    const std::string& first = layout.linears[static_cast<size_t>(g.members[0])].name;
    const size_t dot = first.rfind('.');
    std::string leaves;
    for (int m : g.members) {
        const std::string& n = layout.linears[static_cast<size_t>(m)].name;
        if (!leaves.empty()) leaves += ',';
        leaves += n.substr(n.rfind('.') + 1);
    }
    return (dot == std::string::npos ? std::string() : first.substr(0, dot + 1)) + "{" + leaves + "}";
}

}  // namespace

bool counts_in_budget(const model::LinearModule& m) {
    return m.role != model::Role::EMBED && m.role != model::Role::LM_HEAD && m.module_class != "nn.Embedding" &&
           !m.weight.empty();
}

std::vector<SearchGroup> search_groups(const model::ModelLayout& layout) {
    std::vector<SearchGroup> out;
    std::map<int, size_t> of_fused;          // fused group -> out index
    std::map<std::string, size_t> of_experts;  // experts key -> out index
    for (size_t i = 0; i < layout.linears.size(); ++i) {
        const model::LinearModule& m = layout.linears[i];
        if (!counts_in_budget(m)) continue;
        size_t slot;
        const std::string ek = experts_key(m.name);
        if (!ek.empty()) {
            auto [it, fresh] = of_experts.try_emplace(ek, out.size());
            if (fresh) out.push_back({ek + ".*", {}, m.layer, 0});
            slot = it->second;
        } else if (m.group >= 0) {
            auto [it, fresh] = of_fused.try_emplace(m.group, out.size());
            if (fresh) out.push_back({fused_name(layout, layout.groups[static_cast<size_t>(m.group)]), {}, m.layer, 0});
            slot = it->second;
        } else {
            slot = out.size();
            out.push_back({m.name, {}, m.layer, 0});
        }
        SearchGroup& g = out[slot];
        if (g.layer != m.layer)
            throw Error(fmt::format("autoquant: group {} spans decoder layers {} and {} ({}); its members must share "
                                    "one layer", g.name, g.layer, m.layer, m.name));
        g.linears.push_back(static_cast<int>(i));
        g.elements += static_cast<uint64_t>(m.out_features) * static_cast<uint64_t>(m.in_features);
    }
    return out;
}

uint64_t weight_bytes(const model::LinearModule& m, std::optional<Format> f, DType stored_dtype) {
    const uint64_t rows = static_cast<uint64_t>(m.out_features), cols = static_cast<uint64_t>(m.in_features);
    if (f) return format_storage_bytes(*f, rows, cols);
    return rows * cols * dtype_size(stored_dtype);
}

double bits_per_element(uint64_t bytes, uint64_t elements) {
    return elements ? 8.0 * double(bytes) / double(elements) : 0.0;
}

uint64_t budget_bytes(double effective_bits, uint64_t elements) {
    if (!(effective_bits > 0.0) || !std::isfinite(effective_bits))
        throw Error(fmt::format("--effective-bits {}: expected a positive number of bits per element", effective_bits));
    const long double guess = std::floor(static_cast<long double>(effective_bits) * elements / 8.0L);
    uint64_t c = guess > 1.8e19L ? UINT64_MAX / 2 : static_cast<uint64_t>(guess);
    // Settle on inspect's own double arithmetic at the boundary.
    while (c > 0 && !(bits_per_element(c, elements) <= effective_bits)) --c;
    while (bits_per_element(c + 1, elements) <= effective_bits) ++c;
    return c;
}

}  // namespace microscale::search
