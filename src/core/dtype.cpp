#include "microscale/dtype.h"

#include <array>

namespace microscale {
namespace {

struct DTypeRow {
    DType type;
    std::string_view name;
    size_t size;
    bool is_float;
};

constexpr std::array<DTypeRow, static_cast<size_t>(DType::COUNT)> kDTypes = {{
    {DType::BOOL, "BOOL", 1, false},
    {DType::U8, "U8", 1, false},
    {DType::I8, "I8", 1, false},
    {DType::U16, "U16", 2, false},
    {DType::I16, "I16", 2, false},
    {DType::U32, "U32", 4, false},
    {DType::I32, "I32", 4, false},
    {DType::U64, "U64", 8, false},
    {DType::I64, "I64", 8, false},
    {DType::F16, "F16", 2, true},
    {DType::BF16, "BF16", 2, true},
    {DType::F32, "F32", 4, true},
    {DType::F64, "F64", 8, true},
    {DType::F8_E4M3, "F8_E4M3", 1, false},
    {DType::F8_E5M2, "F8_E5M2", 1, false},
    {DType::F8_E8M0, "F8_E8M0", 1, false},
}};

constexpr bool table_in_enum_order() {
    for (size_t i = 0; i < kDTypes.size(); ++i)
        if (static_cast<size_t>(kDTypes[i].type) != i) return false;
    return true;
}
static_assert(table_in_enum_order(), "kDTypes rows must follow the DType enum order");

}  // namespace

size_t dtype_size(DType t) { return kDTypes[static_cast<size_t>(t)].size; }
std::string_view dtype_name(DType t) { return kDTypes[static_cast<size_t>(t)].name; }
bool dtype_is_float(DType t) { return kDTypes[static_cast<size_t>(t)].is_float; }

std::optional<DType> dtype_from_name(std::string_view name) {
    for (const auto& row : kDTypes)
        if (row.name == name) return row.type;
    return std::nullopt;
}

}  // namespace microscale
