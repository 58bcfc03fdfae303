// The text stages of tokenizer.json around the model: normalizer, pre-tokenizer and decoder,
// each parsed into a flat list of steps (nested "Sequence"s are flattened).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "calib/tokenizer_json.h"
#include "calib/tokenizer_regex.h"

namespace microscale::calib {

// A pre-token: text plus whether it starts at offset 0 of the original input (what Metaspace's
// prepend_scheme "first" looks at).
struct Piece {
    std::string text;
    bool at_start = false;
};

class Normalizer {
public:
    Normalizer() = default;  // identity (a null normalizer)
    Normalizer(const nlohmann::json& j, const JsonPath& p);
    std::string apply(std::string s) const;

private:
    enum class Kind { Prepend, Replace, ReplaceRegex, Nfc, Strip };
    struct Step {
        Kind kind = {};
        std::string a, b;  // Prepend: a; Replace: a -> b
        std::shared_ptr<Regex> re;
        bool left = false, right = false;
    };
    void add(const nlohmann::json& j, const JsonPath& p);
    std::vector<Step> steps_;
};

class PreTokenizer {
public:
    PreTokenizer() = default;  // no pre-tokenizer: the whole segment is one word
    PreTokenizer(const nlohmann::json& j, const JsonPath& p);
    void apply(std::vector<Piece>& pieces) const;
    bool byte_level() const { return byte_level_; }

private:
    enum class Kind { Split, ByteLevel, Metaspace };
    enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
    enum class Prepend { Always, First, Never };
    struct Step {
        Kind kind = {};
        std::shared_ptr<Regex> re;
        Behavior behavior = Behavior::Isolated;
        bool invert = false;
        bool add_prefix_space = false, use_regex = true;  // ByteLevel
        std::string replacement;                          // Metaspace
        Prepend prepend = Prepend::Always;
        bool split = true;
    };
    void add(const nlohmann::json& j, const JsonPath& p);
    static void split(const Piece& in, const std::vector<std::pair<size_t, size_t>>& matches,
                      Behavior behavior, bool invert, std::vector<Piece>& out);
    std::vector<Step> steps_;
    bool byte_level_ = false;
};

class Decoder {
public:
    Decoder() = default;  // no decoder: tokens joined with spaces
    Decoder(const nlohmann::json& j, const JsonPath& p);
    std::string decode(std::vector<std::string> tokens) const;

private:
    enum class Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace };
    struct Step {
        Kind kind = {};
        std::string a, b;  // Replace a -> b; Strip / Metaspace: a is the character
        size_t start = 0, stop = 0;
        bool prepend = true;  // Metaspace: prepend_scheme != never
    };
    void add(const nlohmann::json& j, const JsonPath& p);
    std::vector<Step> steps_;
    bool present_ = false;
};

// Unicode NFC of valid UTF-8 (tokenizer_nfc.cpp).
std::string nfc(const std::string& s);

}  // namespace microscale::calib
