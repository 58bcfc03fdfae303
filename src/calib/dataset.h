// Calibration data: documents from a text file (.txt split on blank lines, .jsonl with "text" or
// chat "messages"), or pre-tokenized ids (one document per line), shuffled with a seed, packed
// into a token stream (each document starting with the tokenizer's prefix, e.g. BOS) and cut
// into num_samples windows of seq_len tokens. Same file, options and seed -> the same samples
// on every machine (our own RNG, not std::shuffle, whose results vary between libraries).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace microscale::calib {

enum class CalibFormat : uint8_t { AUTO, TEXT, JSONL, IDS };

struct CalibOptions {
    std::filesystem::path file;
    CalibFormat format = CalibFormat::AUTO;  // AUTO: by extension (.jsonl, .ids / .ids.txt, else text)
    int64_t num_samples = 128;               // --calib-size
    int64_t seq_len = 512;                   // --calib-seq-len
    uint64_t seed = 0;                       // --seed
};

struct CalibSet {
    std::vector<std::vector<int32_t>> samples;  // num_samples x seq_len (fewer if the data is short)
    int64_t documents = 0;                      // documents read
    int64_t tokens = 0;                         // tokens in the packed stream
    int64_t seq_len = 0;
    std::string source;                         // file name
    std::string format;                         // "text", "jsonl", "ids"
    uint64_t seed = 0;
    uint64_t content_hash = 0;                  // FNV-1a of the file bytes, for provenance
    std::vector<std::string> warnings;

    std::string summary() const;  // one line: what was used
};

// encode: text -> ids including the tokenizer's special prefix (BOS) for one document.
// vocab_size bounds pre-tokenized ids (0 = unchecked). Throws microscale::Error naming the file
// and line for unreadable, empty or too-short data, and for bad JSON lines or ids.
CalibSet load_calibration(const CalibOptions& opts, const std::function<std::vector<int32_t>(std::string_view)>& encode,
                          int64_t vocab_size, int32_t bos_id);

// Split plain text into documents on blank lines (lines holding only whitespace).
std::vector<std::string> split_documents(std::string_view text);

}  // namespace microscale::calib
