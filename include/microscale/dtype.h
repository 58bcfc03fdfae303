// Element types as safetensors spells them. One table (dtype.cpp) maps names, sizes and kinds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace microscale {

enum class DType : uint8_t {
    BOOL, U8, I8, U16, I16, U32, I32, U64, I64,
    F16, BF16, F32, F64,
    F8_E4M3, F8_E5M2, F8_E8M0,
    COUNT
};

// Bytes per element ("BOOL" is one byte in safetensors).
size_t dtype_size(DType t);
// The safetensors name, e.g. "BF16", "F8_E4M3".
std::string_view dtype_name(DType t);
// Parse a safetensors dtype name; nullopt for unknown names.
std::optional<DType> dtype_from_name(std::string_view name);
// F16, BF16, F32, F64: the types a weight to be quantized may come in.
bool dtype_is_float(DType t);

}  // namespace microscale
