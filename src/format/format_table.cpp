// THE format table: one row per format (spec/style.md house rule 1).
#include <array>

#include "microscale/error.h"
#include "microscale/format.h"

namespace microscale {
namespace {

constexpr std::array<FormatInfo, static_cast<size_t>(Format::COUNT)> kFormats = {{
    {Format::BF16, "bf16", "", 0, 16, ScaleType::NONE, false, false, 2, 16.0,
     "unquantized bfloat16"},
    {Format::NVFP4, "nvfp4", "NVFP4", 16, 4, ScaleType::E4M3, true, true, 16 * 4 / 8 + 1, 4.5,
     "NVFP4 W4A4: E2M1 weights and activations, E4M3 scale per 16, fp32 global scale"},
    {Format::W4A16_NVFP4, "w4a16_nvfp4", "W4A16_NVFP4", 16, 4, ScaleType::E4M3, true, false,
     16 * 4 / 8 + 1, 4.5, "NVFP4 weight-only: E2M1 weights, E4M3 scale per 16, bf16 activations"},
    {Format::FP8, "fp8", "FP8", 0, 8, ScaleType::NONE, true, true, 1, 8.0,
     "FP8 E4M3 W8A8 with per-tensor fp32 scales"},
    {Format::MXFP4, "mxfp4", "mxfp4", 32, 4, ScaleType::E8M0, false, false, 32 * 4 / 8 + 1, 4.25,
     "OCP MXFP4: E2M1 elements, E8M0 power-of-two scale per 32"},
    {Format::MXFP8, "mxfp8", "MXFP8", 32, 8, ScaleType::E8M0, false, false, 32 + 1, 8.25,
     "OCP MXFP8: E4M3 elements, E8M0 power-of-two scale per 32"},
}};

constexpr bool rows_consistent() {
    for (size_t i = 0; i < kFormats.size(); ++i) {
        const FormatInfo& f = kFormats[i];
        if (static_cast<size_t>(f.id) != i) return false;
        const int scale_bits = f.block_scale == ScaleType::NONE ? 0 : 8;
        if (f.block_elems > 0) {
            if (f.bytes_per_block * 8 != f.block_elems * f.elem_bits + scale_bits) return false;
            if (f.effective_bits != f.elem_bits + double(scale_bits) / f.block_elems) return false;
        } else if (f.effective_bits != f.elem_bits) {
            return false;
        }
    }
    return true;
}
static_assert(rows_consistent(), "format rows: order, bytes per block and effective bits must agree");

}  // namespace

std::span<const FormatInfo> format_table() { return kFormats; }

const FormatInfo& format_info(Format f) {
    if (f >= Format::COUNT) throw Error("format_info: invalid format id");
    return kFormats[static_cast<size_t>(f)];
}

std::optional<Format> format_from_name(std::string_view name) {
    for (const auto& f : kFormats)
        if (f.name == name) return f.id;
    return std::nullopt;
}

uint64_t format_storage_bytes(Format f, uint64_t rows, uint64_t cols) {
    const FormatInfo& info = format_info(f);
    const uint64_t elems = rows * cols;
    uint64_t bytes;
    if (info.block_elems > 0) {
        if (cols % static_cast<uint64_t>(info.block_elems) != 0)
            throw Error("format_storage_bytes: " + std::string(info.name) + " needs columns divisible by " +
                        std::to_string(info.block_elems) + ", got " + std::to_string(cols));
        bytes = elems / static_cast<uint64_t>(info.block_elems) * static_cast<uint64_t>(info.bytes_per_block);
    } else {
        bytes = elems * static_cast<uint64_t>(info.elem_bits) / 8;
    }
    return bytes + (info.per_tensor_scale ? 4 : 0);
}

}  // namespace microscale
