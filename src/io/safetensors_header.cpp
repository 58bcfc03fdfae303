// safetensors header: parse + validate (hostile input) and build (writer side).
// Kept free of I/O so the fuzzer can link it alone (tests/fuzz/CMakeLists.txt).
#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"

namespace microscale::io {
namespace {

using nlohmann::json;

// Names come from hostile files: keep messages bounded.
std::string quote_name(std::string_view s) {
    constexpr size_t kMax = 200;
    if (s.size() <= kMax) return "'" + std::string(s) + "'";
    return "'" + std::string(s.substr(0, kMax)) + "...' (" + std::to_string(s.size()) + " bytes)";
}

[[noreturn]] void fail_file(const std::string& file, const std::string& msg) {
    throw Error(file + ": " + msg);
}

[[noreturn]] void fail_tensor(const std::string& file, std::string_view tensor, const std::string& msg) {
    throw Error(file + ": tensor " + quote_name(tensor) + ": " + msg);
}

// Bytes for dtype x shape. Every partial product of the non-zero dims must fit in int64, so code
// downstream may multiply any subset of dims without overflow; a zero dim makes the tensor empty.
// Returns false on overflow.
bool checked_nbytes(DType dtype, const std::vector<int64_t>& shape, uint64_t* out) {
    constexpr uint64_t kLimit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    uint64_t prod = dtype_size(dtype);
    bool empty = false;
    for (int64_t d : shape) {
        if (d < 0) return false;
        if (d == 0) {
            empty = true;
            continue;
        }
        if (__builtin_mul_overflow(prod, static_cast<uint64_t>(d), &prod) || prod > kLimit)
            return false;
    }
    *out = empty ? 0 : prod;
    return true;
}

// Tracks keys during parsing: nlohmann keeps the last of duplicate keys silently, and a
// duplicated tensor or field is exactly how a crafted file smuggles in a second meaning.
struct KeyTracker {
    const std::string& file;
    std::unordered_map<std::string, size_t> top_order;  // top-level key -> position in the text
    std::unordered_set<std::string> entry_keys;         // keys of the entry being parsed
    std::string current;                                // the top-level key being parsed

    bool operator()(int depth, json::parse_event_t event, json& parsed) {
        using E = json::parse_event_t;
        // top object = 0, entry = 1, shape / data_offsets = 2, their numbers = 3. Anything
        // opening deeper is invalid; rejecting it here bounds nesting and memory.
        if ((event == E::object_start || event == E::array_start) && depth >= 3)
            fail_tensor(file, current, "unexpected nested JSON value (too deep)");
        if (event == E::key && depth == 1) {
            const auto& key = parsed.get_ref<const std::string&>();
            if (!top_order.emplace(key, top_order.size()).second)
                fail_tensor(file, key, "duplicate key in header");
            current = key;
        } else if (event == E::object_start && depth == 1) {
            entry_keys.clear();
        } else if (event == E::key && depth == 2) {
            const auto& key = parsed.get_ref<const std::string&>();
            if (!entry_keys.insert(key).second)
                fail_tensor(file, current, "duplicate field " + quote_name(key));
        }
        return true;
    }
};

uint64_t read_u64(const json& v, const std::string& file, std::string_view tensor, const char* what) {
    if (!v.is_number_unsigned())
        fail_tensor(file, tensor, std::string(what) + " must be non-negative integers, got " +
                                      quote_name(v.dump()));
    return v.get<uint64_t>();
}

TensorInfo parse_entry(const std::string& file, const std::string& name, const json& entry,
                       uint64_t data_bytes) {
    if (!entry.is_object()) fail_tensor(file, name, "entry must be a JSON object");
    for (const auto& [key, _] : entry.items())
        if (key != "dtype" && key != "shape" && key != "data_offsets")
            fail_tensor(file, name, "unknown field " + quote_name(key));
    for (const char* key : {"dtype", "shape", "data_offsets"})
        if (!entry.contains(key)) fail_tensor(file, name, std::string("missing field '") + key + "'");

    TensorInfo t;
    t.name = name;
    const json& dt = entry["dtype"];
    if (!dt.is_string()) fail_tensor(file, name, "dtype must be a string");
    auto dtype = dtype_from_name(dt.get_ref<const std::string&>());
    if (!dtype) fail_tensor(file, name, "unknown dtype " + quote_name(dt.get_ref<const std::string&>()));
    t.dtype = *dtype;

    const json& shape = entry["shape"];
    if (!shape.is_array()) fail_tensor(file, name, "shape must be an array");
    t.shape.reserve(shape.size());
    for (const json& d : shape) {
        uint64_t v = read_u64(d, file, name, "shape dims");
        if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
            fail_tensor(file, name, "shape dim " + std::to_string(v) + " does not fit in int64");
        t.shape.push_back(static_cast<int64_t>(v));
    }

    const json& offs = entry["data_offsets"];
    if (!offs.is_array() || offs.size() != 2)
        fail_tensor(file, name, "data_offsets must be [begin, end]");
    t.begin = read_u64(offs[0], file, name, "data_offsets");
    t.end = read_u64(offs[1], file, name, "data_offsets");
    const std::string where = describe_shape(t.shape) + " " + std::string(dtype_name(t.dtype)) +
                              ", data_offsets [" + std::to_string(t.begin) + ", " +
                              std::to_string(t.end) + "]";
    if (t.begin > t.end) fail_tensor(file, name, where + ": begin > end");
    if (t.end > data_bytes)
        fail_tensor(file, name, where + ": end is past the data section (" +
                                    std::to_string(data_bytes) + " bytes)");
    uint64_t expect = 0;
    if (!checked_nbytes(t.dtype, t.shape, &expect))
        fail_tensor(file, name, where + ": element count x dtype size overflows");
    if (expect != t.nbytes())
        fail_tensor(file, name, where + ": holds " + std::to_string(t.nbytes()) +
                                    " bytes but dtype x shape needs " + std::to_string(expect));
    return t;
}

std::string dump_string(const std::string& s, const std::string& context, std::string_view tensor) {
    try {
        return json(s).dump();
    } catch (const json::exception&) {
        fail_tensor(context, tensor, "name or metadata is not valid UTF-8");
    }
}

}  // namespace

uint64_t TensorInfo::numel() const {
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);  // validated on parse: cannot overflow
    return n;
}

std::string describe_shape(const std::vector<int64_t>& shape) {
    std::string s = "shape [";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t file_size,
                                           const std::string& filename) {
    if (file_size < 8)
        fail_file(filename, "file is " + std::to_string(file_size) +
                                " bytes, too short for the 8-byte header length");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];  // little-endian, any host
    if (n > kMaxHeaderBytes)
        fail_file(filename, "header length " + std::to_string(n) + " exceeds the " +
                                std::to_string(kMaxHeaderBytes) + "-byte cap");
    if (n > file_size - 8)
        fail_file(filename, "header length " + std::to_string(n) + " runs past the end of the " +
                                std::to_string(file_size) + "-byte file");

    SafetensorsHeader h;
    h.header_bytes = n;
    h.data_bytes = file_size - 8 - n;

    const char* text = reinterpret_cast<const char*>(data + 8);
    // nlohmann's lexer stops at a NUL as if the input ended, which would let arbitrary bytes
    // follow the JSON unseen. Valid JSON never holds a raw NUL.
    if (const void* nul = std::memchr(text, 0, n))
        fail_file(filename, "header holds a NUL byte at offset " +
                                std::to_string(static_cast<const char*>(nul) - text + 8));
    KeyTracker keys{filename, {}, {}, {}};
    json root;
    try {
        root = json::parse(text, text + n, std::ref(keys));
    } catch (const json::exception& e) {
        fail_file(filename, std::string("header is not valid JSON: ") + e.what());
    }
    if (!root.is_object()) fail_file(filename, "header must be a JSON object");

    for (const auto& [name, entry] : root.items()) {
        if (name == "__metadata__") {
            if (!entry.is_object()) fail_file(filename, "__metadata__ must be a JSON object");
            for (const auto& [k, v] : entry.items()) {
                if (!v.is_string())
                    fail_file(filename, "__metadata__ value of " + quote_name(k) + " must be a string");
                h.metadata.emplace(k, v.get<std::string>());
            }
            continue;
        }
        h.tensors.push_back(parse_entry(filename, name, entry, h.data_bytes));
    }

    // Data order; ties (zero-size tensors) keep their order in the header text.
    std::sort(h.tensors.begin(), h.tensors.end(), [&](const TensorInfo& a, const TensorInfo& b) {
        if (a.begin != b.begin) return a.begin < b.begin;
        if (a.end != b.end) return a.end < b.end;
        return keys.top_order.at(a.name) < keys.top_order.at(b.name);
    });
    // Like the reference implementation: tensors tile the data section exactly.
    uint64_t expected = 0;
    const TensorInfo* prev = nullptr;
    for (const TensorInfo& t : h.tensors) {
        if (t.begin < expected)
            fail_tensor(filename, t.name, "data_offsets [" + std::to_string(t.begin) + ", " +
                                              std::to_string(t.end) + "] overlap tensor " +
                                              quote_name(prev->name));
        if (t.begin > expected)
            fail_tensor(filename, t.name, "hole in the data section: bytes [" +
                                              std::to_string(expected) + ", " +
                                              std::to_string(t.begin) + ") belong to no tensor");
        expected = t.end;
        prev = &t;
    }
    if (expected != h.data_bytes)
        fail_file(filename, "data section is " + std::to_string(h.data_bytes) +
                                " bytes but the tensors cover only " + std::to_string(expected));
    return h;
}

uint64_t tensor_nbytes(const TensorDecl& decl, const std::string& context) {
    uint64_t n = 0;
    if (!checked_nbytes(decl.dtype, decl.shape, &n))
        fail_tensor(context, decl.name, describe_shape(decl.shape) + " " +
                                            std::string(dtype_name(decl.dtype)) +
                                            ": negative dim or size overflow");
    return n;
}

std::string build_safetensors_header(const std::vector<TensorDecl>& tensors,
                                     const Metadata& metadata, const std::string& context) {
    std::unordered_set<std::string_view> seen;
    std::string out = "{";
    if (!metadata.empty()) {
        out += "\"__metadata__\":{";
        bool first = true;
        for (const auto& [k, v] : metadata) {
            if (!first) out += ',';
            first = false;
            out += dump_string(k, context, "__metadata__");
            out += ':';
            out += dump_string(v, context, "__metadata__");
        }
        out += '}';
    }
    uint64_t offset = 0;
    for (const TensorDecl& t : tensors) {
        if (t.name.empty()) fail_file(context, "tensor with an empty name");
        if (t.name == "__metadata__") fail_tensor(context, t.name, "reserved name");
        if (!seen.insert(t.name).second) fail_tensor(context, t.name, "declared twice");
        const uint64_t n = tensor_nbytes(t, context);
        if (__builtin_add_overflow(offset, n, &offset))
            fail_tensor(context, t.name, "total data size overflows");
        if (out.size() > 1) out += ',';
        out += dump_string(t.name, context, t.name);
        out += ":{\"dtype\":\"";
        out += dtype_name(t.dtype);
        out += "\",\"shape\":[";
        for (size_t i = 0; i < t.shape.size(); ++i) {
            if (i) out += ',';
            out += std::to_string(t.shape[i]);
        }
        out += "],\"data_offsets\":[" + std::to_string(offset - n) + "," + std::to_string(offset) + "]}";
    }
    out += '}';
    // Pad so the data section starts 8-aligned (readers may then map typed views in place).
    out.append((8 - (8 + out.size()) % 8) % 8, ' ');
    if (out.size() > kMaxHeaderBytes)
        fail_file(context, "header would be " + std::to_string(out.size()) +
                               " bytes, over the " + std::to_string(kMaxHeaderBytes) + "-byte cap");
    return out;
}

}  // namespace microscale::io
