// Unicode NFC (canonical decomposition, canonical ordering, canonical composition) for the
// "NFC" normalizer of Qwen-family tokenizers. Tables come from Python's unicodedata
// (tokenizer_nfc_data.inc); Hangul syllables are handled algorithmically.
#include <algorithm>

#include "calib/tokenizer_pipeline.h"
#include "calib/tokenizer_text.h"

namespace microscale::calib {

namespace {

struct NfcCcc {
    char32_t cp;
    uint8_t ccc;
};
struct NfcDecomp {
    char32_t cp;
    uint32_t offset;
    uint8_t len;
};
struct NfcComp {
    char32_t a, b, c;
};

#include "calib/tokenizer_nfc_data.inc"

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

uint8_t ccc_of(char32_t c) {
    if (c < 0x300) return 0;
    const auto* it = std::lower_bound(std::begin(kNfcCcc), std::end(kNfcCcc), c,
                                      [](const NfcCcc& e, char32_t v) { return e.cp < v; });
    return it != std::end(kNfcCcc) && it->cp == c ? it->ccc : 0;
}

void decompose(char32_t c, std::u32string& out) {
    if (c < 0xC0) {  // nothing below U+00C0 decomposes
        out += c;
        return;
    }
    if (c >= kSBase && c < kSBase + kSCount) {
        const char32_t s = c - kSBase;
        out += kLBase + s / kNCount;
        out += kVBase + (s % kNCount) / kTCount;
        if (s % kTCount) out += kTBase + s % kTCount;
        return;
    }
    const auto* it = std::lower_bound(std::begin(kNfcDecomp), std::end(kNfcDecomp), c,
                                      [](const NfcDecomp& e, char32_t v) { return e.cp < v; });
    if (it != std::end(kNfcDecomp) && it->cp == c)
        out.append(kNfcDecompPool + it->offset, it->len);
    else
        out += c;
}

// The primary composite of (a, b), or 0.
char32_t compose(char32_t a, char32_t b) {
    if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
        return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
    if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
        b < kTBase + kTCount)
        return a + (b - kTBase);
    const auto* it = std::lower_bound(std::begin(kNfcComp), std::end(kNfcComp), std::pair{a, b},
                                      [](const NfcComp& e, std::pair<char32_t, char32_t> v) {
                                          return e.a != v.first ? e.a < v.first : e.b < v.second;
                                      });
    return it != std::end(kNfcComp) && it->a == a && it->b == b ? it->c : 0;
}

}  // namespace

std::string nfc(const std::string& s) {
    bool trivial = true;
    for (size_t i = 0; i < s.size() && trivial;) trivial = utf8_next(s, i) < kNfcSafeBelow;
    if (trivial) return s;

    std::u32string d;
    d.reserve(s.size());
    for (size_t i = 0; i < s.size();) decompose(utf8_next(s, i), d);
    // Canonical ordering: stable sort of each run of non-starters by combining class.
    for (size_t i = 0; i < d.size();) {
        if (ccc_of(d[i]) == 0) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < d.size() && ccc_of(d[j]) != 0) ++j;
        std::stable_sort(d.begin() + static_cast<std::ptrdiff_t>(i), d.begin() + static_cast<std::ptrdiff_t>(j),
                         [](char32_t x, char32_t y) { return ccc_of(x) < ccc_of(y); });
        i = j;
    }
    // Canonical composition: a mark joins the last starter unless something in between blocks it.
    std::u32string out;
    out.reserve(d.size());
    size_t starter = std::u32string::npos;
    uint8_t last_ccc = 0;
    for (char32_t c : d) {
        const uint8_t cc = ccc_of(c);
        if (starter != std::u32string::npos && c >= kNfcSafeBelow) {  // nothing lower composes
            const bool adjacent = starter + 1 == out.size();
            const bool blocked = !adjacent && (last_ccc == 0 || last_ccc >= cc);
            if (!blocked) {
                if (const char32_t k = compose(out[starter], c)) {
                    out[starter] = k;
                    continue;
                }
            }
        }
        if (cc == 0) starter = out.size();
        last_ccc = cc;
        out += c;
    }
    std::string r;
    r.reserve(s.size());
    for (char32_t c : out) utf8_append(r, c);
    return r;
}

}  // namespace microscale::calib
