// What AutoQuantize searches over and what each choice costs. A search group is a set of linears
// that must share a format (spec nvfp4-modelopt.md §7 quant_grouping_rules): q/k/v and gate/up
// (the layout's fused groups, which share a global scale), all routed experts of one layer
// (`<...>.experts.<n>.<proj>`, down_proj included), and every other linear on its own.
//
// Costs are bytes as stored, the way `microscale inspect` counts them (spec §8; Nemotron 3 Ultra
// report BPE): the weight, its block scales and its per-tensor scale, so NVFP4 costs 4.5 bits per
// element plus 32 bits per tensor (not ModelOpt's 4.0 for static NVFP4), FP8 8 + 32/numel, and an
// unquantized weight its stored dtype (16 for BF16, 32 for an F32 checkpoint). The budget covers
// the linears inspect calls "linear weights": every linear but embeddings and lm_head.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "microscale/format.h"
#include "model/layout.h"

namespace microscale::search {

struct SearchGroup {
    std::string name;          // "model.layers.0.self_attn.{q,k,v}_proj", or the module name
    std::vector<int> linears;  // indices into ModelLayout::linears
    int layer = -1;            // decoder layer of every member
    uint64_t elements = 0;     // weight elements of the members
};

// Linears that count in the budget: stored weights outside embeddings and lm_head.
bool counts_in_budget(const model::LinearModule& m);

// The groups over all budget linears, in layout order of their first member.
std::vector<SearchGroup> search_groups(const model::ModelLayout& layout);

// Stored weight bytes of linear m in format f (nullopt: unquantized, at stored_dtype).
uint64_t weight_bytes(const model::LinearModule& m, std::optional<Format> f, DType stored_dtype);

// The largest byte total whose effective bits per element, 8 * bytes / elements computed in
// double as inspect does, is <= effective_bits.
uint64_t budget_bytes(double effective_bits, uint64_t elements);

// 8 * bytes / elements (inspect's formula).
double bits_per_element(uint64_t bytes, uint64_t elements);

}  // namespace microscale::search
