#include "calib/dataset.h"

#include <fmt/core.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "microscale/error.h"

namespace microscale::calib {
namespace {

constexpr uint64_t kMaxCalibBytes = 8ull << 30;

__extension__ typedef unsigned __int128 U128;  // GCC/Clang extension, for the 64x64->128 multiply

// splitmix64: a small, fully specified generator, so the shuffle is the same everywhere.
struct SplitMix64 {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, n): Lemire's multiply-shift (the tiny bias is irrelevant here, and fixed).
    uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<U128>(next()) * n) >> 64); }
};

std::string read_file(const std::filesystem::path& p) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(p, ec);
    if (ec) throw Error(fmt::format("--calib {}: cannot read: {}", p.string(), ec.message()));
    if (size > kMaxCalibBytes) throw Error(fmt::format("--calib {}: {} bytes is over the 8 GiB limit", p.string(), size));
    std::ifstream f(p, std::ios::binary);
    std::string s(size, '\0');
    if (!f.read(s.data(), static_cast<std::streamsize>(size))) throw Error(fmt::format("--calib {}: read failed", p.string()));
    return s;
}

uint64_t fnv1a(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string render_messages(const nlohmann::json& msgs, const std::string& where) {
    if (!msgs.is_array()) throw Error(where + ": \"messages\" must be a list");
    std::string out;
    for (const auto& m : msgs) {
        if (!m.is_object() || !m.contains("content") || !m["content"].is_string())
            throw Error(where + ": each message needs a string \"content\"");
        const std::string role = m.contains("role") && m["role"].is_string() ? m["role"].get<std::string>() : "user";
        out += role + ": " + m["content"].get<std::string>() + "\n";
    }
    return out;
}

}  // namespace

std::vector<std::string> split_documents(std::string_view text) {
    std::vector<std::string> docs;
    std::string cur;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = text.substr(pos, nl - pos);
        const bool blank = line.find_first_not_of(" \t\r\f\v") == std::string_view::npos;
        if (blank) {
            if (!cur.empty()) docs.push_back(std::move(cur));
            cur.clear();
        } else {
            if (!cur.empty()) cur += '\n';
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            cur += line;
        }
        pos = nl + 1;
    }
    if (!cur.empty()) docs.push_back(std::move(cur));
    return docs;
}

std::string CalibSet::summary() const {
    return fmt::format("calibration: {} samples x {} tokens from {} ({}, {} documents, {} tokens, seed {})",
                       samples.size(), seq_len, source, format, documents, tokens, seed);
}

CalibSet load_calibration(const CalibOptions& opts, const std::function<std::vector<int32_t>(std::string_view)>& encode,
                          int64_t vocab_size, int32_t bos_id) {
    if (opts.num_samples <= 0) throw Error(fmt::format("--calib-size must be positive, got {}", opts.num_samples));
    if (opts.seq_len <= 1) throw Error(fmt::format("--calib-seq-len must be at least 2, got {}", opts.seq_len));
    const std::string name = opts.file.string();
    const std::string data = read_file(opts.file);
    CalibSet set;
    set.source = opts.file.filename().string();
    set.seq_len = opts.seq_len;
    set.seed = opts.seed;
    set.content_hash = fnv1a(data);
    CalibFormat fmt_ = opts.format;
    if (fmt_ == CalibFormat::AUTO)
        fmt_ = ends_with(name, ".jsonl") ? CalibFormat::JSONL
               : (ends_with(name, ".ids") || ends_with(name, ".ids.txt")) ? CalibFormat::IDS
                                                                           : CalibFormat::TEXT;
    // Documents as token ids, in file order.
    std::vector<std::vector<int32_t>> docs;
    if (fmt_ == CalibFormat::IDS) {
        set.format = "ids";
        std::istringstream in(data);
        std::string line;
        int64_t lineno = 0;
        while (std::getline(in, line)) {
            ++lineno;
            std::istringstream ls(line);
            std::vector<int32_t> ids;
            std::string tok;
            while (ls >> tok) {
                char* end = nullptr;
                const long long v = std::strtoll(tok.c_str(), &end, 10);
                if (*end != '\0' || v < 0 || v > INT32_MAX || (vocab_size > 0 && v >= vocab_size))
                    throw Error(fmt::format("--calib {}:{}: '{}' is not a token id{}", name, lineno, tok,
                                            vocab_size > 0 ? fmt::format(" below the vocabulary size {}", vocab_size) : ""));
                ids.push_back(static_cast<int32_t>(v));
            }
            if (ids.empty()) continue;
            if (bos_id >= 0 && ids.front() != bos_id) ids.insert(ids.begin(), bos_id);
            docs.push_back(std::move(ids));
        }
    } else {
        std::vector<std::string> texts;
        if (fmt_ == CalibFormat::JSONL) {
            set.format = "jsonl";
            std::istringstream in(data);
            std::string line;
            int64_t lineno = 0;
            while (std::getline(in, line)) {
                ++lineno;
                if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
                const std::string where = fmt::format("--calib {}:{}", name, lineno);
                nlohmann::json j;
                try {
                    j = nlohmann::json::parse(line);
                } catch (const nlohmann::json::exception& e) {
                    throw Error(where + ": invalid JSON: " + e.what());
                }
                if (j.is_object() && j.contains("text") && j["text"].is_string()) texts.push_back(j["text"].get<std::string>());
                else if (j.is_object() && j.contains("messages")) texts.push_back(render_messages(j["messages"], where));
                else throw Error(where + ": a line needs a string \"text\" or a \"messages\" list");
            }
        } else {
            set.format = "text";
            texts = split_documents(data);
        }
        for (const std::string& t : texts) {
            std::vector<int32_t> ids = encode(t);
            if (!ids.empty()) docs.push_back(std::move(ids));
        }
    }
    set.documents = static_cast<int64_t>(docs.size());
    if (docs.empty()) throw Error(fmt::format("--calib {}: no documents found (empty file?)", name));
    // Seeded Fisher-Yates over documents, then pack and cut windows.
    SplitMix64 rng{opts.seed};
    for (size_t i = docs.size(); i > 1; --i) std::swap(docs[i - 1], docs[rng.below(i)]);
    std::vector<int32_t> stream;
    const size_t want = static_cast<size_t>(opts.num_samples * opts.seq_len);
    for (const auto& d : docs) {
        stream.insert(stream.end(), d.begin(), d.end());
        if (stream.size() >= want) break;
    }
    set.tokens = static_cast<int64_t>(stream.size());
    if (stream.size() < static_cast<size_t>(opts.seq_len))
        throw Error(fmt::format("--calib {}: only {} tokens, fewer than one sample of --calib-seq-len {}", name,
                                stream.size(), opts.seq_len));
    const int64_t n = std::min<int64_t>(opts.num_samples, static_cast<int64_t>(stream.size()) / opts.seq_len);
    for (int64_t i = 0; i < n; ++i)
        set.samples.emplace_back(stream.begin() + i * opts.seq_len, stream.begin() + (i + 1) * opts.seq_len);
    if (n < opts.num_samples)
        set.warnings.push_back(fmt::format("--calib {}: {} tokens give only {} of the {} requested samples of {} tokens",
                                           name, stream.size(), n, opts.num_samples, opts.seq_len));
    return set;
}

}  // namespace microscale::calib
