// UTF-8 and byte-level text helpers for the tokenizer: code point iteration, validation, lossy
// decoding as Rust's String::from_utf8_lossy does it, and GPT-2's byte <-> unicode map.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace microscale::calib {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Length of the valid UTF-8 sequence at s[i] (1..4), or 0 when it is not valid (overlong forms,
// surrogates and values past U+10FFFF are invalid, as in Rust's str).
size_t utf8_valid_len(std::string_view s, size_t i);

// Byte offset of the first invalid sequence, or npos when `s` is valid UTF-8.
size_t utf8_find_invalid(std::string_view s);

// Decodes the code point at s[i] (which must be valid) and advances i.
char32_t utf8_next(std::string_view s, size_t& i);

void utf8_append(std::string& out, char32_t c);

// Invalid sequences become U+FFFD, one per maximal invalid subpart (Unicode's "substitution of
// maximal subparts", which Rust's from_utf8_lossy follows).
std::string utf8_lossy(std::string_view bytes);

// Unicode White_Space (what Rust's char::is_whitespace and trim use).
bool is_unicode_whitespace(char32_t c);

// GPT-2's reversible byte <-> code point map: printable Latin-1 bytes map to themselves, the other
// 68 bytes to U+0100.. in byte order. `byte_char_utf8(b)` is the UTF-8 of the code point of b.
class ByteLevelMap {
public:
    static const ByteLevelMap& get();
    std::string_view utf8(uint8_t b) const { return {enc_[b].data(), len_[b]}; }
    // -1 when the code point is not one of the 256.
    int byte_of(char32_t c) const { return c < 324 ? dec_[c] : -1; }

private:
    ByteLevelMap();
    std::array<std::array<char, 2>, 256> enc_{};
    std::array<uint8_t, 256> len_{};
    std::array<int16_t, 324> dec_{};
};

}  // namespace microscale::calib
