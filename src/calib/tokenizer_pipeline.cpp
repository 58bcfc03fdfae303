#include "calib/tokenizer_pipeline.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "calib/tokenizer_text.h"

namespace microscale::calib {

namespace {

// GPT-2's pre-tokenizer regex (ByteLevel with use_regex).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// {"String": "..."} or {"Regex": "..."} -> a compiled regex (literals are quoted).
std::shared_ptr<Regex> read_pattern(const nlohmann::json& obj, const JsonPath& parent,
                                    bool* is_regex = nullptr, std::string* literal = nullptr) {
    const auto p = parent.child("pattern");
    const auto& pat = require(obj, "pattern", p);
    if (!pat.is_object() || pat.size() != 1) throw p.error("must be {\"String\": ...} or {\"Regex\": ...}");
    if (pat.contains("String") && pat["String"].is_string()) {
        const auto s = pat["String"].get<std::string>();
        if (is_regex) *is_regex = false;
        if (literal) *literal = s;
        return std::make_shared<Regex>(Regex::escape(s), p.child("String").file + ": " + p.path + ".String");
    }
    if (pat.contains("Regex") && pat["Regex"].is_string()) {
        if (is_regex) *is_regex = true;
        return std::make_shared<Regex>(pat["Regex"].get<std::string>(),
                                       p.file + ": " + p.path + ".Regex");
    }
    throw p.error("must be {\"String\": ...} or {\"Regex\": ...}");
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    if (from.empty()) return;
    std::string out;
    size_t pos = 0;
    for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
        out.append(s, pos, hit - pos);
        out += to;
    }
    if (pos == 0) return;
    out.append(s, pos, std::string::npos);
    s.swap(out);
}

// One Unicode scalar as UTF-8 (the Metaspace / Strip "character" fields).
std::string read_char(const nlohmann::json& obj, const char* key, const JsonPath& parent) {
    const auto s = req_string(obj, key, parent);
    size_t i = 0;
    if (s.empty() || utf8_valid_len(s, 0) != s.size() || (utf8_next(s, i), i != s.size()))
        throw parent.child(key).error("must be a single character");
    return s;
}

}  // namespace

// ---- normalizer -------------------------------------------------------------------------------

Normalizer::Normalizer(const nlohmann::json& j, const JsonPath& p) {
    if (!j.is_null()) add(j, p);
}

void Normalizer::add(const nlohmann::json& j, const JsonPath& p) {
    const auto type = type_of(j, p);
    if (type == "Sequence") {
        const auto np = p.child("normalizers");
        const auto& list = require(j, "normalizers", np);
        if (!list.is_array()) throw np.error("must be an array");
        for (size_t i = 0; i < list.size(); ++i) add(list[i], np.index(i));
    } else if (type == "Prepend") {
        steps_.push_back({Kind::Prepend, req_string(j, "prepend", p), {}, nullptr, false, false});
    } else if (type == "Replace") {
        bool is_regex = false;
        std::string literal;
        auto re = read_pattern(j, p, &is_regex, &literal);
        const auto content = req_string(j, "content", p);
        if (is_regex)
            steps_.push_back({Kind::ReplaceRegex, {}, content, re, false, false});
        else
            steps_.push_back({Kind::Replace, literal, content, nullptr, false, false});
    } else if (type == "NFC") {
        steps_.push_back({Kind::Nfc, {}, {}, nullptr, false, false});
    } else if (type == "Strip") {
        Step s{Kind::Strip, {}, {}, nullptr, false, false};
        s.left = opt_bool(j, "strip_left", true, p);
        s.right = opt_bool(j, "strip_right", true, p);
        steps_.push_back(s);
    } else {
        throw p.unsupported_type(type);
    }
}

std::string Normalizer::apply(std::string s) const {
    std::vector<std::pair<size_t, size_t>> m;
    for (const auto& st : steps_) {
        switch (st.kind) {
            case Kind::Prepend:
                if (!s.empty()) s.insert(0, st.a);
                break;
            case Kind::Replace:
                replace_all(s, st.a, st.b);
                break;
            case Kind::ReplaceRegex: {
                st.re->find_all(s, m);
                if (m.empty()) break;
                std::string out;
                size_t pos = 0;
                for (auto [b, e] : m) {
                    out.append(s, pos, b - pos);
                    out += st.b;
                    pos = e;
                }
                out.append(s, pos, std::string::npos);
                s.swap(out);
                break;
            }
            case Kind::Nfc:
                s = nfc(s);
                break;
            case Kind::Strip: {
                size_t b = 0, e = s.size();
                if (st.left) {
                    for (size_t i = 0; i < s.size();) {
                        if (!is_unicode_whitespace(utf8_next(s, i))) break;
                        b = i;
                    }
                }
                if (st.right) {
                    // Walk forward remembering where the trailing whitespace run starts.
                    size_t run = s.size();
                    bool in_run = false;
                    for (size_t i = b; i < s.size();) {
                        const size_t at = i;
                        const bool ws = is_unicode_whitespace(utf8_next(s, i));
                        if (ws && !in_run) run = at;
                        in_run = ws;
                    }
                    e = in_run ? run : s.size();
                }
                s = s.substr(b, e - b);
                break;
            }
        }
    }
    return s;
}

// ---- pre-tokenizer ----------------------------------------------------------------------------

PreTokenizer::PreTokenizer(const nlohmann::json& j, const JsonPath& p) {
    if (!j.is_null()) add(j, p);
}

void PreTokenizer::add(const nlohmann::json& j, const JsonPath& p) {
    const auto type = type_of(j, p);
    if (type == "Sequence") {
        const auto sp = p.child("pretokenizers");
        const auto& list = require(j, "pretokenizers", sp);
        if (!list.is_array()) throw sp.error("must be an array");
        for (size_t i = 0; i < list.size(); ++i) add(list[i], sp.index(i));
    } else if (type == "Split") {
        Step s;
        s.kind = Kind::Split;
        s.re = read_pattern(j, p);
        const auto b = req_string(j, "behavior", p);
        if (b == "Removed") s.behavior = Behavior::Removed;
        else if (b == "Isolated") s.behavior = Behavior::Isolated;
        else if (b == "MergedWithPrevious") s.behavior = Behavior::MergedWithPrevious;
        else if (b == "MergedWithNext") s.behavior = Behavior::MergedWithNext;
        else if (b == "Contiguous") s.behavior = Behavior::Contiguous;
        else throw p.child("behavior").error("'" + b + "' is not a split behavior");
        s.invert = opt_bool(j, "invert", false, p);
        steps_.push_back(std::move(s));
    } else if (type == "ByteLevel") {
        Step s;
        s.kind = Kind::ByteLevel;
        s.add_prefix_space = opt_bool(j, "add_prefix_space", true, p);
        s.use_regex = opt_bool(j, "use_regex", true, p);
        if (s.use_regex) s.re = std::make_shared<Regex>(kGpt2Pattern, p.file + ": " + p.path);
        steps_.push_back(std::move(s));
        byte_level_ = true;
    } else if (type == "Metaspace") {
        Step s;
        s.kind = Kind::Metaspace;
        s.replacement = read_char(j, "replacement", p);
        if (j.contains("prepend_scheme") && !j["prepend_scheme"].is_null()) {
            const auto ps = req_string(j, "prepend_scheme", p);
            if (ps == "always") s.prepend = Prepend::Always;
            else if (ps == "first") s.prepend = Prepend::First;
            else if (ps == "never") s.prepend = Prepend::Never;
            else throw p.child("prepend_scheme").error("'" + ps + "' is not always/first/never");
        } else {  // tokenizers < 0.19
            s.prepend = opt_bool(j, "add_prefix_space", true, p) ? Prepend::Always : Prepend::Never;
        }
        s.split = opt_bool(j, "split", true, p);
        if (s.split) s.re = std::make_shared<Regex>(Regex::escape(s.replacement), p.file + ": " + p.path);
        steps_.push_back(std::move(s));
    } else if (type == "Digits") {
        Step s;
        s.kind = Kind::Split;
        s.re = std::make_shared<Regex>(opt_bool(j, "individual_digits", false, p) ? R"(\p{N})" : R"(\p{N}+)",
                                       p.file + ": " + p.path);
        steps_.push_back(std::move(s));
    } else if (type == "WhitespaceSplit") {
        Step s;
        s.kind = Kind::Split;
        s.re = std::make_shared<Regex>(R"(\s+)", p.file + ": " + p.path);
        s.behavior = Behavior::Removed;
        steps_.push_back(std::move(s));
    } else {
        throw p.unsupported_type(type);
    }
}

void PreTokenizer::split(const Piece& in, const std::vector<std::pair<size_t, size_t>>& matches,
                         Behavior behavior, bool invert, std::vector<Piece>& out) {
    // The text as alternating runs [begin, end, is_match], then tokenizers' fold per behavior.
    struct Run {
        size_t b, e;
        bool match;
    };
    std::vector<Run> runs;
    size_t pos = 0;
    for (auto [b, e] : matches) {
        if (b > pos) runs.push_back({pos, b, invert});
        runs.push_back({b, e, !invert});
        pos = e;
    }
    if (pos < in.text.size()) runs.push_back({pos, in.text.size(), invert});

    std::vector<Run> merged;
    switch (behavior) {
        case Behavior::Isolated:
            merged = runs;
            break;
        case Behavior::Removed:
            for (const auto& r : runs)
                if (!r.match) merged.push_back(r);
            break;
        case Behavior::MergedWithPrevious: {
            bool prev_match = false;
            for (const auto& r : runs) {
                if (r.match && !prev_match && !merged.empty()) merged.back().e = r.e;
                else merged.push_back(r);
                prev_match = r.match;
            }
            break;
        }
        case Behavior::MergedWithNext: {
            bool prev_match = false;
            for (size_t k = runs.size(); k-- > 0;) {
                const auto& r = runs[k];
                if (r.match && !prev_match && !merged.empty()) merged.back().b = r.b;
                else merged.push_back(r);
                prev_match = r.match;
            }
            std::reverse(merged.begin(), merged.end());
            break;
        }
        case Behavior::Contiguous: {
            bool prev_match = false;
            for (const auto& r : runs) {
                if (r.match && prev_match && !merged.empty()) merged.back().e = r.e;
                else merged.push_back(r);
                prev_match = r.match;
            }
            break;
        }
    }
    for (const auto& r : merged)
        if (r.e > r.b) out.push_back({in.text.substr(r.b, r.e - r.b), in.at_start && r.b == 0});
}

void PreTokenizer::apply(std::vector<Piece>& pieces) const {
    std::vector<Piece> next;
    std::vector<std::pair<size_t, size_t>> m;
    const auto& bl = ByteLevelMap::get();
    for (const auto& st : steps_) {
        next.clear();
        for (auto& pc : pieces) {
            switch (st.kind) {
                case Kind::Split:
                    st.re->find_all(pc.text, m);
                    split(pc, m, st.behavior, st.invert, next);
                    break;
                case Kind::ByteLevel: {
                    if (st.add_prefix_space && (pc.text.empty() || pc.text[0] != ' ')) pc.text.insert(0, " ");
                    const size_t first = next.size();
                    if (st.use_regex) {
                        st.re->find_all(pc.text, m);
                        split(pc, m, Behavior::Isolated, false, next);
                    } else {
                        next.push_back(std::move(pc));
                    }
                    for (size_t k = first; k < next.size(); ++k) {
                        std::string mapped;
                        mapped.reserve(next[k].text.size() * 2);
                        for (char c : next[k].text) mapped += bl.utf8(static_cast<uint8_t>(c));
                        next[k].text.swap(mapped);
                    }
                    break;
                }
                case Kind::Metaspace: {
                    replace_all(pc.text, " ", st.replacement);
                    const bool starts = pc.text.compare(0, st.replacement.size(), st.replacement) == 0;
                    if (!starts && (st.prepend == Prepend::Always ||
                                    (st.prepend == Prepend::First && pc.at_start)))
                        pc.text.insert(0, st.replacement);
                    if (st.split) {
                        st.re->find_all(pc.text, m);
                        split(pc, m, Behavior::MergedWithNext, false, next);
                    } else if (!pc.text.empty()) {
                        next.push_back(std::move(pc));
                    }
                    break;
                }
            }
        }
        pieces.swap(next);
    }
}

// ---- decoder ----------------------------------------------------------------------------------

Decoder::Decoder(const nlohmann::json& j, const JsonPath& p) {
    if (!j.is_null()) {
        add(j, p);
        present_ = true;
    }
}

void Decoder::add(const nlohmann::json& j, const JsonPath& p) {
    const auto type = type_of(j, p);
    if (type == "Sequence") {
        const auto dp = p.child("decoders");
        const auto& list = require(j, "decoders", dp);
        if (!list.is_array()) throw dp.error("must be an array");
        for (size_t i = 0; i < list.size(); ++i) add(list[i], dp.index(i));
    } else if (type == "ByteLevel") {
        steps_.push_back(Step{Kind::ByteLevel, {}, {}, 0, 0, true});
    } else if (type == "ByteFallback") {
        steps_.push_back(Step{Kind::ByteFallback, {}, {}, 0, 0, true});
    } else if (type == "Fuse") {
        steps_.push_back(Step{Kind::Fuse, {}, {}, 0, 0, true});
    } else if (type == "Replace") {
        bool is_regex = false;
        std::string literal;
        read_pattern(j, p, &is_regex, &literal);
        if (is_regex) throw p.child("pattern").unsupported("a Regex pattern in a Replace decoder");
        steps_.push_back(Step{Kind::Replace, literal, req_string(j, "content", p), 0, 0, true});
    } else if (type == "Strip") {
        Step s{Kind::Strip, read_char(j, "content", p), {}, 0, 0, true};
        s.start = static_cast<size_t>(opt_int(j, "start", 0, 0, 1 << 20, p));
        s.stop = static_cast<size_t>(opt_int(j, "stop", 0, 0, 1 << 20, p));
        steps_.push_back(s);
    } else if (type == "Metaspace") {
        Step s{Kind::Metaspace, read_char(j, "replacement", p), {}, 0, 0, true};
        if (j.contains("prepend_scheme") && !j["prepend_scheme"].is_null())
            s.prepend = req_string(j, "prepend_scheme", p) != "never";
        else
            s.prepend = opt_bool(j, "add_prefix_space", true, p);
        steps_.push_back(s);
    } else {
        throw p.unsupported_type(type);
    }
}

namespace {

// "<0xNN>" -> the byte, else -1.
int byte_token(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    const auto hex = [](char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
               : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    };
    const int hi = hex(t[3]), lo = hex(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

std::string Decoder::decode(std::vector<std::string> tokens) const {
    if (!present_) {
        std::string out;
        for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
        return out;
    }
    const auto& bl = ByteLevelMap::get();
    for (const auto& st : steps_) {
        switch (st.kind) {
            case Kind::ByteLevel: {
                // Every char back to its byte; a token with a char outside the map keeps its
                // UTF-8 bytes. Invalid UTF-8 in the result becomes U+FFFD.
                std::string bytes;
                for (const auto& t : tokens) {
                    const size_t mark = bytes.size();
                    bool ok = true;
                    for (size_t i = 0; i < t.size() && ok;) {
                        const int b = bl.byte_of(utf8_next(t, i));
                        if (b < 0) ok = false;
                        else bytes += static_cast<char>(b);
                    }
                    if (!ok) {
                        bytes.resize(mark);
                        bytes += t;
                    }
                }
                tokens.assign(1, utf8_lossy(bytes));
                break;
            }
            case Kind::Replace:
                for (auto& t : tokens) replace_all(t, st.a, st.b);
                break;
            case Kind::ByteFallback: {
                std::vector<std::string> out;
                std::string bytes;
                size_t n_bytes = 0;
                const auto flush = [&] {
                    if (n_bytes == 0) return;
                    if (utf8_find_invalid(bytes) == std::string::npos) {
                        out.push_back(bytes);
                    } else {
                        for (size_t k = 0; k < n_bytes; ++k) out.emplace_back("\xEF\xBF\xBD");
                    }
                    bytes.clear();
                    n_bytes = 0;
                };
                for (auto& t : tokens) {
                    if (const int b = byte_token(t); b >= 0) {
                        bytes += static_cast<char>(b);
                        ++n_bytes;
                    } else {
                        flush();
                        out.push_back(std::move(t));
                    }
                }
                flush();
                tokens.swap(out);
                break;
            }
            case Kind::Fuse: {
                std::string all;
                for (const auto& t : tokens) all += t;
                tokens.assign(1, std::move(all));
                break;
            }
            case Kind::Strip:
                for (auto& t : tokens) {
                    size_t b = 0, e = t.size();
                    for (size_t k = 0; k < st.start && t.compare(b, st.a.size(), st.a) == 0 && b < e; ++k)
                        b += st.a.size();
                    for (size_t k = 0; k < st.stop && e >= b + st.a.size() &&
                                       t.compare(e - st.a.size(), st.a.size(), st.a) == 0; ++k)
                        e -= st.a.size();
                    t = t.substr(b, e - b);
                }
                break;
            case Kind::Metaspace:
                for (size_t i = 0; i < tokens.size(); ++i)
                    replace_all(tokens[i], st.a, i == 0 && st.prepend ? "" : " ");
                break;
        }
    }
    std::string out;
    for (const auto& t : tokens) out += t;
    return out;
}

}  // namespace microscale::calib
