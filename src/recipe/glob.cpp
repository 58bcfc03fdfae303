// fnmatchcase-compatible glob matcher (see glob.h for the exact dialect).
#include "recipe/glob.h"

#include <cstddef>
#include <vector>

namespace microscale::recipe {
namespace {

// One parsed character class: items are single bytes or inclusive ranges.
struct CharClass {
    bool negated = false;
    std::vector<std::pair<unsigned char, unsigned char>> ranges;

    bool contains(unsigned char c) const {
        bool hit = false;
        for (const auto& [lo, hi] : ranges)
            if (lo <= c && c <= hi) hit = true;
        return hit != negated;
    }
};

// Parses the class starting just after '[' at `i`. Returns false (pattern '[' is then a literal)
// when no closing ']' exists; Python treats a ']' right after '[' or '[!' as a member.
bool parse_class(std::string_view pat, size_t i, CharClass& out, size_t& end) {
    size_t j = i;
    if (j < pat.size() && pat[j] == '!') ++j;
    if (j < pat.size() && pat[j] == ']') ++j;
    while (j < pat.size() && pat[j] != ']') ++j;
    if (j >= pat.size()) return false;
    size_t k = i;
    out = CharClass{};
    if (pat[k] == '!') {
        out.negated = true;
        ++k;
    }
    while (k < j) {
        const auto lo = static_cast<unsigned char>(pat[k]);
        if (k + 2 < j && pat[k + 1] == '-') {
            const auto hi = static_cast<unsigned char>(pat[k + 2]);
            if (lo <= hi) out.ranges.emplace_back(lo, hi);  // reversed ranges match nothing
            k += 3;
        } else {
            out.ranges.emplace_back(lo, lo);
            ++k;
        }
    }
    end = j + 1;
    return true;
}

// Matches one non-star token of `pat` at `pi` against byte c; sets `next` to the following token.
bool match_one(std::string_view pat, size_t pi, unsigned char c, size_t& next) {
    if (pat[pi] == '?') {
        next = pi + 1;
        return true;
    }
    if (pat[pi] == '[') {
        CharClass cls;
        size_t end = 0;
        if (parse_class(pat, pi + 1, cls, end)) {
            next = end;
            return cls.contains(c);
        }
    }
    next = pi + 1;
    return static_cast<unsigned char>(pat[pi]) == c;
}

}  // namespace

bool glob_match(std::string_view pat, std::string_view name) {
    // Classic single-backtrack star matching: every non-star token consumes exactly one byte, so
    // remembering only the last star is enough.
    size_t pi = 0, ni = 0;
    size_t star_pi = std::string_view::npos, star_ni = 0;
    while (ni < name.size()) {
        size_t next = 0;
        if (pi < pat.size() && pat[pi] == '*') {
            while (pi < pat.size() && pat[pi] == '*') ++pi;
            star_pi = pi;
            star_ni = ni;
        } else if (pi < pat.size() && match_one(pat, pi, static_cast<unsigned char>(name[ni]), next)) {
            pi = next;
            ++ni;
        } else if (star_pi != std::string_view::npos) {
            pi = star_pi;
            ni = ++star_ni;
        } else {
            return false;
        }
    }
    while (pi < pat.size() && pat[pi] == '*') ++pi;
    return pi == pat.size();
}

std::string normalize_fused_experts_name(std::string_view name) {
    // Rewrites `(weight|input)_quantizer[s].<digits>` followed by end or '.' to the singular form.
    std::string out;
    out.reserve(name.size());
    size_t i = 0;
    while (i < name.size()) {
        bool replaced = false;
        for (std::string_view base : {std::string_view("weight_quantizer"), std::string_view("input_quantizer")}) {
            if (name.substr(i, base.size()) != base) continue;
            size_t k = i + base.size();
            if (k < name.size() && name[k] == 's') ++k;
            if (k >= name.size() || name[k] != '.') continue;
            size_t d = k + 1;
            while (d < name.size() && name[d] >= '0' && name[d] <= '9') ++d;
            if (d == k + 1 || (d < name.size() && name[d] != '.')) continue;
            out.append(base);
            i = d;
            replaced = true;
            break;
        }
        if (!replaced) out.push_back(name[i++]);
    }
    return out;
}

}  // namespace microscale::recipe
