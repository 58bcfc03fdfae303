// Added tokens of tokenizer.json ("added_tokens"): the list, and the matcher that splits them out
// of text before normalization / BPE, leftmost-longest like tokenizers' Aho-Corasick, with the
// single_word / lstrip / rstrip rules.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace microscale::calib {

struct AddedToken {
    std::string content;
    int32_t id = -1;
    bool single_word = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = true;
    bool special = false;
};

// A run of the input: plain text [begin, end), or an added token (token >= 0 is the id).
struct Segment {
    size_t begin = 0, end = 0;
    int32_t token = -1;
};

class AddedMatcher {
public:
    // `patterns[i]` is what to look for (the content, normalized for normalized tokens).
    void add(std::string_view pattern, const AddedToken& tok);
    bool empty() const { return tokens_.empty(); }
    // Splits `text` into plain and token segments (empty plain runs are dropped).
    void split(std::string_view text, std::vector<Segment>& out) const;

private:
    struct Node {
        std::vector<std::pair<uint8_t, int32_t>> next;
        int32_t token = -1;  // index into tokens_
    };
    int32_t child(int32_t node, uint8_t c) const;
    std::vector<Node> nodes_{Node{}};
    std::vector<AddedToken> tokens_;
    bool first_[256] = {};
};

}  // namespace microscale::calib
