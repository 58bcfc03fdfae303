// The tokenizer against HF `tokenizers` 0.23 (fixtures from tools/gen_tokenizer_golden.py in
// tests/golden/tokenizer/): every text encodes to exactly the library's ids, with and without
// special tokens, and decodes to the library's text; plus errors for hostile or unsupported files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "calib/tokenizer.h"
#include "calib/tokenizer_pipeline.h"
#include "microscale/error.h"

namespace microscale::calib {
namespace {

const std::filesystem::path kDir = std::filesystem::path(MICROSCALE_GOLDEN_DIR) / "tokenizer";

const nlohmann::json& expected() {
    static const nlohmann::json j = [] {
        std::ifstream f(kDir / "expected.json");
        return nlohmann::json::parse(f);
    }();
    return j;
}

std::string printable(const std::string& s) { return nlohmann::json(s).dump(); }

class TokenizerGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerGolden, EncodeAndDecodeMatchTokenizers) {
    const auto& name = GetParam();
    const auto tok = Tokenizer::load(kDir / name);
    const auto& cases = expected().at("tokenizers").at(name);
    ASSERT_GT(cases.size(), 40u);
    size_t failures = 0;
    for (const auto& c : cases) {
        const auto text = c.at("text").get<std::string>();
        const auto want = c.at("ids").get<std::vector<int32_t>>();
        const auto want_plain = c.at("ids_plain").get<std::vector<int32_t>>();
        const auto got = tok.encode(text, true);
        const auto got_plain = tok.encode(text, false);
        EXPECT_EQ(got, want) << name << " text " << printable(text);
        EXPECT_EQ(got_plain, want_plain) << name << " text " << printable(text) << " tokens "
                                         << c.at("tokens_plain").dump();
        EXPECT_EQ(tok.decode(want), c.at("decode").get<std::string>()) << name << " text " << printable(text);
        EXPECT_EQ(tok.decode(want, true), c.at("decode_skip").get<std::string>())
            << name << " text " << printable(text);
        failures += got != want || got_plain != want_plain;
        if (failures > 8) FAIL() << "too many failures";
    }
}

INSTANTIATE_TEST_SUITE_P(All, TokenizerGolden,
                         ::testing::Values("gpt2", "gpt2_prefix_strmerges", "llama3", "qwen2", "stories260k",
                                           "metaspace_first", "metaspace_always_split", "stories_unk"));

TEST(Tokenizer, SpecialIdsFromConfig) {
    const auto st = Tokenizer::load(kDir / "stories260k");
    EXPECT_EQ(st.bos_id(), 1);
    EXPECT_EQ(st.eos_id(), 2);
    EXPECT_EQ(st.unk_id(), 0);
    EXPECT_EQ(st.vocab_size(), 512u);
    EXPECT_EQ(st.prefix_ids(), std::vector<int32_t>{1});
    EXPECT_TRUE(st.suffix_ids().empty());
    EXPECT_TRUE(st.is_special(1));
    EXPECT_EQ(st.token_to_id("<0x0A>"), 13);
    EXPECT_EQ(st.id_to_token(13), "<0x0A>");
    const auto ms = Tokenizer::load(kDir / "metaspace_always_split");
    EXPECT_EQ(ms.suffix_ids(), std::vector<int32_t>{2});
    const auto l3 = Tokenizer::load(kDir / "llama3");
    EXPECT_EQ(l3.prefix_ids(), std::vector<int32_t>{l3.token_to_id("<|begin_of_text|>")});
    EXPECT_EQ(l3.eos_id(), l3.token_to_id("<|eot_id|>"));
    EXPECT_EQ(l3.encode("", true), l3.prefix_ids());
}

TEST(Tokenizer, ConfigFlagsOverrideTemplate) {
    std::ifstream f(kDir / "stories260k/tokenizer.json");
    const std::string json((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const auto t = Tokenizer::from_json(json, R"({"bos_token": {"content": "<s>"}, "eos_token": "</s>",
                                                 "add_bos_token": false, "add_eos_token": true})");
    const auto ids = t.encode("Hi", true);
    ASSERT_FALSE(ids.empty());
    EXPECT_NE(ids.front(), 1);
    EXPECT_EQ(ids.back(), 2);
    EXPECT_EQ(t.encode("Hi", false).size() + 1, ids.size());
}

// ---- errors -----------------------------------------------------------------------------------

std::string minimal(const std::string& patch_key = "", const std::string& patch_value = "") {
    nlohmann::json j = {
        {"version", "1.0"},
        {"added_tokens", nlohmann::json::array()},
        {"normalizer", nullptr},
        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
        {"post_processor", nullptr},
        {"decoder", {{"type", "ByteLevel"}}},
        {"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", {"a b"}}}},
    };
    if (!patch_key.empty()) j[nlohmann::json::json_pointer(patch_key)] = nlohmann::json::parse(patch_value);
    return j.dump();
}

void expect_error(const std::string& json, const std::string& needle) {
    try {
        (void)Tokenizer::from_json(json);
        ADD_FAILURE() << "no error, wanted: " << needle;
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

TEST(Tokenizer, MinimalWorks) {
    const auto t = Tokenizer::from_json(minimal());
    EXPECT_EQ(t.encode("abab", false), (std::vector<int32_t>{2, 2}));
    EXPECT_EQ(t.decode(std::vector<int32_t>{2, 0, 99, -5}), "aba");  // unknown ids skipped
}

TEST(Tokenizer, ErrorsNameFileAndPath) {
    expect_error("{", "tokenizer.json: invalid JSON");
    expect_error("[]", "must be a JSON object");
    expect_error(minimal("/normalizer", R"({"type": "BertNormalizer"})"),
                 "tokenizer.json: normalizer.type 'BertNormalizer' is not supported");
    expect_error(minimal("/normalizer", R"({"type": "Sequence", "normalizers": [{"type": "NFKC"}]})"),
                 "normalizer.normalizers[0].type 'NFKC' is not supported");
    expect_error(minimal("/pre_tokenizer", R"({"type": "BertPreTokenizer"})"),
                 "pre_tokenizer.type 'BertPreTokenizer' is not supported");
    expect_error(minimal("/decoder", R"({"type": "WordPiece"})"), "decoder.type 'WordPiece' is not supported");
    expect_error(minimal("/post_processor", R"({"type": "Weird"})"), "post_processor.type 'Weird' is not supported");
    expect_error(minimal("/model/type", R"("Unigram")"), "model.type 'Unigram' is not supported");
    expect_error(minimal("/model/merges", R"(["a c"])"), "model.merges[0]");
    expect_error(minimal("/model/merges", R"(["abc"])"), "model.merges[0]");
    expect_error(minimal("/model/merges", R"([["a"]])"), "model.merges[0]");
    expect_error(minimal("/model/merges", R"({"a": 1})"), "model.merges must be an array");
    expect_error(minimal("/model/vocab", R"({"a": -1})"), "model.vocab.a id -1 is out of range");
    expect_error(minimal("/model/vocab", R"({"a": 1e30})"), "model.vocab.a id must be an integer");
    expect_error(minimal("/model/vocab", R"({"a": 99999999999})"), "out of range");
    expect_error(minimal("/model/vocab", R"([1, 2])"), "model.vocab must be an object");
    expect_error(minimal("/model/unk_token", R"("<unk>")"), "model.unk_token '<unk>' is not in model.vocab");
    expect_error(minimal("/model/dropout", "0.1"), "model.dropout: BPE dropout");
    expect_error(minimal("/model/continuing_subword_prefix", R"("##")"), "model.continuing_subword_prefix");
    expect_error(minimal("/model/byte_fallback", R"("yes")"), "model.byte_fallback must be true or false");
    expect_error(minimal("/added_tokens", R"({"id": 3})"), "added_tokens must be an array");
    expect_error(minimal("/added_tokens", R"([{"id": 3}])"), "added_tokens[0].content is missing");
    expect_error(minimal("/added_tokens", R"([{"id": "x", "content": "c"}])"), "added_tokens[0].id must be an integer");
    expect_error(minimal("/added_tokens", R"([{"id": 3, "content": ""}])"), "added_tokens[0].content must not be empty");
    expect_error(minimal("/pre_tokenizer", R"({"type": "Split", "pattern": {"Regex": "(("}, "behavior": "Isolated"})"),
                 "pre_tokenizer.pattern.Regex: invalid regex");
    expect_error(minimal("/pre_tokenizer", R"({"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Sideways"})"),
                 "pre_tokenizer.behavior 'Sideways'");
    expect_error(minimal("/pre_tokenizer", R"({"type": "Metaspace", "replacement": "ab"})"),
                 "pre_tokenizer.replacement must be a single character");
    expect_error(minimal("/post_processor",
                         R"({"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}],
                             "special_tokens": {}})"),
                 "post_processor.single[0] names '<s>'");
    expect_error(minimal("/post_processor",
                         R"({"type": "TemplateProcessing", "single": [{"Sequence": {"id": "B", "type_id": 0}}],
                             "special_tokens": {}})"),
                 "post_processor.single[0]");
    expect_error(minimal("/model", R"(7)"), "model must be an object");
}

TEST(Tokenizer, ConfigErrors) {
    try {
        (void)Tokenizer::from_json(minimal(), R"({"add_bos_token": true, "bos_token": "<s>"})", {},
                                   "/m/tokenizer.json");
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/m/tokenizer_config.json: add_bos_token is true"), std::string::npos)
            << e.what();
    }
    EXPECT_THROW((void)Tokenizer::from_json(minimal(), R"({"bos_token": 5})"), Error);
    EXPECT_THROW((void)Tokenizer::from_json(minimal(), "[1]"), Error);
}

TEST(Tokenizer, TextAndFileErrors) {
    const auto t = Tokenizer::from_json(minimal());
    try {
        (void)t.encode(std::string("ab\xC3(", 4), false);
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("not valid UTF-8 at byte 2"), std::string::npos) << e.what();
    }
    EXPECT_THROW((void)Tokenizer::load("/nonexistent/dir"), Error);
    // A character outside the vocabulary with neither byte fallback nor unk_token.
    const auto nb = Tokenizer::from_json(minimal("/pre_tokenizer", "null"));
    EXPECT_THROW((void)nb.encode("x", false), Error);
}

TEST(Tokenizer, AddedTokenFlags) {
    // lstrip / rstrip swallow neighbouring whitespace; single_word only matches whole words;
    // normalized=false tokens are matched before the normalizer runs.
    auto j = nlohmann::json::parse(minimal());
    j["pre_tokenizer"] = nullptr;
    j["decoder"] = nullptr;
    j["model"]["vocab"] = {{"a", 0}, {"b", 1}, {"ab", 2}, {" ", 3}, {"x", 4}};
    j["model"]["merges"] = {"a b"};
    j["added_tokens"] = {
        {{"id", 10}, {"content", "[L]"}, {"lstrip", true}, {"special", true}, {"normalized", false}},
        {{"id", 11}, {"content", "[R]"}, {"rstrip", true}, {"special", true}, {"normalized", false}},
        {{"id", 12}, {"content", "ab"}, {"single_word", true}, {"special", false}, {"normalized", false}},
        {{"id", 13}, {"content", "x"}, {"special", false}, {"normalized", true}},
    };
    j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", "b"}}}, {"content", "x"}};
    const auto t = Tokenizer::from_json(j.dump());
    EXPECT_EQ(t.encode("a  [L]a", false), (std::vector<int32_t>{0, 10, 0}));
    EXPECT_EQ(t.encode("a[R]  a", false), (std::vector<int32_t>{0, 11, 0}));
    EXPECT_EQ(t.encode("ab a", false), (std::vector<int32_t>{12, 3, 0}));
    EXPECT_EQ(t.encode("aab", false), (std::vector<int32_t>{0, 0, 13}));  // b -> x (normalized)
    EXPECT_EQ(t.decode(std::vector<int32_t>{10, 12}, true), "ab");
}

TEST(Tokenizer, Nfc) {
    EXPECT_EQ(nfc("plain ascii"), "plain ascii");
    EXPECT_EQ(nfc("e\u0301"), "\u00e9");                        // compose
    EXPECT_EQ(nfc("\u212b"), "\u00c5");                         // singleton (Angstrom sign)
    EXPECT_EQ(nfc("a\u0307\u0323"), "\u1ea1\u0307");           // reorder (323 < 307), then compose
    EXPECT_EQ(nfc("\u1100\u1161\u11a8"), "\uac01");             // Hangul L V T
    EXPECT_EQ(nfc("\uac00\u11a8"), "\uac01");                    // Hangul LV + T
    EXPECT_EQ(nfc("\u0301e"), "\u0301e");                        // leading mark stays
    EXPECT_EQ(nfc("\u4e2d\u6587 \U0001F600"), "\u4e2d\u6587 \U0001F600");
}

}  // namespace
}  // namespace microscale::calib
