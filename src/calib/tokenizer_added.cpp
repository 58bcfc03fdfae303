#include "calib/tokenizer_added.h"

#include "calib/tokenizer_text.h"

namespace microscale::calib {

namespace {

bool is_word_char(char32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    return !is_unicode_whitespace(c);  // approximation of \w outside ASCII
}

// Code point ending just before byte `i` (i > 0), and its start.
char32_t prev_char(std::string_view s, size_t i, size_t& start) {
    start = i - 1;
    while (start > 0 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    size_t k = start;
    return utf8_next(s, k);
}

}  // namespace

void AddedMatcher::add(std::string_view pattern, const AddedToken& tok) {
    if (pattern.empty()) return;
    int32_t node = 0;
    for (char ch : pattern) {
        const auto c = static_cast<uint8_t>(ch);
        int32_t nx = child(node, c);
        if (nx < 0) {
            nx = static_cast<int32_t>(nodes_.size());
            nodes_[node].next.emplace_back(c, nx);
            nodes_.emplace_back();
        }
        node = nx;
    }
    if (nodes_[node].token >= 0) return;  // duplicate content: the first one wins
    nodes_[node].token = static_cast<int32_t>(tokens_.size());
    tokens_.push_back(tok);
    first_[static_cast<uint8_t>(pattern[0])] = true;
}

int32_t AddedMatcher::child(int32_t node, uint8_t c) const {
    for (auto [k, v] : nodes_[node].next)
        if (k == c) return v;
    return -1;
}

void AddedMatcher::split(std::string_view text, std::vector<Segment>& out) const {
    out.clear();
    size_t prev_end = 0, pos = 0;
    const size_t n = text.size();
    while (pos < n) {
        if (!first_[static_cast<uint8_t>(text[pos])]) {
            ++pos;
            continue;
        }
        int32_t node = 0, best = -1;
        size_t best_len = 0;
        for (size_t k = pos; k < n; ++k) {
            node = child(node, static_cast<uint8_t>(text[k]));
            if (node < 0) break;
            if (nodes_[node].token >= 0) {
                best = nodes_[node].token;
                best_len = k + 1 - pos;
            }
        }
        if (best < 0) {
            ++pos;
            continue;
        }
        const AddedToken& t = tokens_[best];
        size_t b = pos, e = pos + best_len;
        if (t.single_word) {
            size_t ps = 0, q = e;
            const bool left_ok = b == 0 || !is_word_char(prev_char(text, b, ps));
            const bool right_ok = e == n || !is_word_char(utf8_next(text, q));
            if (!left_ok || !right_ok) {  // consumed without splitting, as Aho-Corasick does
                pos = e;
                continue;
            }
        }
        if (t.lstrip) {
            size_t ps = 0;
            while (b > prev_end && is_unicode_whitespace(prev_char(text, b, ps)) && ps >= prev_end) b = ps;
        }
        if (t.rstrip) {
            for (size_t q = e; q < n;) {
                if (!is_unicode_whitespace(utf8_next(text, q))) break;
                e = q;
            }
        }
        if (b > prev_end) out.push_back({prev_end, b, -1});
        out.push_back({b, e, t.id});
        prev_end = pos = e;
    }
    if (n > prev_end) out.push_back({prev_end, n, -1});
}

}  // namespace microscale::calib
