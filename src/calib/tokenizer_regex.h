// A compiled PCRE2 pattern (UTF + Unicode properties, JIT when available) for the tokenizer's
// Split / Replace patterns. tokenizers uses Oniguruma; the patterns found in tokenizer.json files
// (GPT-2, Llama 3, Qwen2) mean the same thing in PCRE2.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace microscale::calib {

class Regex {
public:
    // `where` names the file and JSON path for the error message.
    Regex(std::string_view pattern, const std::string& where);
    ~Regex();
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    // Non-overlapping matches, left to right, as [begin, end) byte ranges; an empty match moves
    // the search on by one code point. `text` must be valid UTF-8.
    void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

    static std::string escape(std::string_view literal);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace microscale::calib
