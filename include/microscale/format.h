// The weight formats microscale writes, one row each in a single table (src/format/format_table.cpp).
// CLI help, size estimates, the plan printer and the test loops iterate this table.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace microscale {

enum class Format : uint8_t { BF16, NVFP4, W4A16_NVFP4, FP8, MXFP4, MXFP8, COUNT };

enum class ScaleType : uint8_t { NONE, E4M3, E8M0, F32 };

struct FormatInfo {
    Format id;
    std::string_view name;        // CLI / JSON name: "nvfp4", "w4a16_nvfp4", "fp8", ...
    std::string_view quant_algo;  // hf_quant_config.json "quant_algo" (spec §4.2); "" for bf16
    int block_elems;              // elements sharing one block scale; 0 = per-tensor scale only
    int elem_bits;                // bits of one stored element
    ScaleType block_scale;        // type of the per-block scale (NONE for per-tensor formats)
    bool per_tensor_scale;        // an fp32 per-tensor scale (weight_scale_2 / weight_scale)
    bool quantizes_activations;   // W4A4 / W8A8: the input quantizer is enabled too
    int bytes_per_block;          // packed elements + block scale bytes (per element if no blocks)
    double effective_bits;        // storage bits per element as spec §8 counts them
    std::string_view summary;     // one line for --help and `microscale formats`
};

std::span<const FormatInfo> format_table();
const FormatInfo& format_info(Format f);
std::optional<Format> format_from_name(std::string_view name);

// Bytes a [rows, cols] weight takes in format f (elements + block scales + per-tensor scale).
// cols must be a multiple of block_elems for block formats.
uint64_t format_storage_bytes(Format f, uint64_t rows, uint64_t cols);

}  // namespace microscale
