// libFuzzer target for the safetensors header parser. Any exception other than microscale::Error,
// any sanitizer report, and any broken invariant on an accepted header is a finding (abort).
//   make fuzz && build-fuzz/tests/fuzz/fuzz_safetensors_header -dict=tests/fuzz/safetensors.dict \
//       -max_total_time=300 tests/fuzz/corpus
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace {

using microscale::io::SafetensorsHeader;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "invariant broken on an accepted header: %s\n", what);
        std::abort();
    }
}

void check_invariants(const SafetensorsHeader& h, size_t size) {
    check(8 + h.header_bytes + h.data_bytes == size, "sizes add up to the file size");
    uint64_t expected = 0;
    for (const auto& t : h.tensors) {
        check(t.begin == expected, "tensors tile the data section");
        check(t.end >= t.begin && t.end <= h.data_bytes, "offsets inside the data section");
        check(t.nbytes() == t.numel() * microscale::dtype_size(t.dtype), "bytes == numel x dtype");
        expected = t.end;
    }
    check(expected == h.data_bytes, "tensors cover the data section");
}

// What the writer produces from an accepted header must parse back to the same header.
void check_round_trip(const SafetensorsHeader& h) {
    std::vector<microscale::io::TensorDecl> decls;
    for (const auto& t : h.tensors) {
        if (t.name.empty()) return;  // the writer refuses empty names; the reader accepts them
        decls.push_back({t.name, t.dtype, t.shape});
    }
    const std::string header = microscale::io::build_safetensors_header(decls, h.metadata, "fuzz");
    std::vector<uint8_t> file(8 + header.size() + h.data_bytes, 0);
    for (int i = 0; i < 8; ++i) file[i] = static_cast<uint8_t>(header.size() >> (8 * i));
    std::copy(header.begin(), header.end(), file.begin() + 8);
    const SafetensorsHeader again =
        microscale::io::parse_safetensors_header(file.data(), file.size(), "fuzz-rewritten");
    check(again.metadata == h.metadata, "metadata round-trips");
    check(again.tensors.size() == h.tensors.size(), "tensor count round-trips");
    for (size_t i = 0; i < h.tensors.size(); ++i) {
        const auto &a = h.tensors[i], &b = again.tensors[i];
        check(a.name == b.name && a.dtype == b.dtype && a.shape == b.shape && a.begin == b.begin &&
                  a.end == b.end,
              "tensor round-trips");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    SafetensorsHeader h;
    try {
        h = microscale::io::parse_safetensors_header(data, size, "fuzz.safetensors");
    } catch (const microscale::Error&) {
        return 0;  // rejected cleanly: the expected outcome for most inputs
    }
    check_invariants(h, size);
    check_round_trip(h);  // an Error here escapes: an accepted header the writer cannot reproduce
    return 0;
}
