#include "calib/tokenizer.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "calib/tokenizer_added.h"
#include "calib/tokenizer_bpe.h"
#include "calib/tokenizer_json.h"
#include "calib/tokenizer_pipeline.h"
#include "calib/tokenizer_text.h"
#include "microscale/error.h"

namespace microscale::calib {

namespace {

constexpr uint64_t kMaxTokenizerBytes = 512ull << 20;  // real ones are < 20 MB
constexpr uint64_t kMaxConfigBytes = 64ull << 20;       // chat templates can be large

std::string read_text(const std::filesystem::path& path, uint64_t max_bytes) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) throw Error(path.string() + ": cannot read: " + ec.message());
    if (size > max_bytes)
        throw Error(path.string() + ": " + std::to_string(size) + " bytes is larger than the " +
                    std::to_string(max_bytes) + "-byte limit");
    std::ifstream f(path, std::ios::binary);
    std::string s(size, '\0');
    if (!f.read(s.data(), static_cast<std::streamsize>(size)))
        throw Error(path.string() + ": read failed");
    return s;
}

nlohmann::json parse(std::string_view text, const std::string& name) {
    try {
        return nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception& e) {
        throw Error(name + ": invalid JSON: " + e.what());
    }
}

// A special-token field of tokenizer_config.json / special_tokens_map.json: "<s>" or
// {"content": "<s>", ...}; empty when absent or null.
std::string special_field(const nlohmann::json& cfg, const char* key, const JsonPath& p) {
    if (!cfg.is_object() || !cfg.contains(key) || cfg[key].is_null()) return {};
    const auto& v = cfg[key];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string())
        return v["content"].get<std::string>();
    throw p.child(key).error("must be a string or {\"content\": ...}");
}

}  // namespace

struct Tokenizer::Impl {
    std::string name;
    std::unique_ptr<BpeModel> model;
    Normalizer normalizer;
    PreTokenizer pre_tokenizer;
    Decoder decoder;
    std::vector<AddedToken> added;
    std::unordered_map<int32_t, size_t> added_by_id;
    VocabMap added_by_content;
    AddedMatcher raw_matcher, normalized_matcher;
    std::vector<std::string> id_to_token;
    std::vector<int32_t> prefix, suffix;
    int32_t bos = -1, eos = -1;

    int32_t find(std::string_view t) const {
        if (auto it = added_by_content.find(t); it != added_by_content.end()) return it->second;
        return model->find(t);
    }
    void parse_added(const nlohmann::json& root);
    void parse_post_processor(const nlohmann::json& j, const JsonPath& p);
    void apply_config(const nlohmann::json& cfg, const nlohmann::json& map, const std::string& cfg_name);
};

void Tokenizer::Impl::parse_added(const nlohmann::json& root) {
    const JsonPath ap{name, "added_tokens"};
    if (!root.contains("added_tokens") || root["added_tokens"].is_null()) return;
    const auto& list = root["added_tokens"];
    if (!list.is_array()) throw ap.error("must be an array");
    for (size_t i = 0; i < list.size(); ++i) {
        const auto p = ap.index(i);
        const auto& j = list[i];
        if (!j.is_object()) throw p.error("must be an object");
        AddedToken t;
        t.id = static_cast<int32_t>(opt_int(j, "id", -1, 0, kMaxTokenId, p));
        if (t.id < 0) throw p.child("id").error("is missing");
        t.content = req_string(j, "content", p);
        if (t.content.empty()) throw p.child("content").error("must not be empty");
        if (utf8_find_invalid(t.content) != std::string::npos) throw p.child("content").error("is not valid UTF-8");
        t.single_word = opt_bool(j, "single_word", false, p);
        t.lstrip = opt_bool(j, "lstrip", false, p);
        t.rstrip = opt_bool(j, "rstrip", false, p);
        t.special = opt_bool(j, "special", false, p);
        t.normalized = opt_bool(j, "normalized", !t.special, p);
        added_by_id[t.id] = added.size();
        added_by_content.emplace(t.content, t.id);
        added.push_back(t);
    }
    for (const auto& t : added) {
        if (t.normalized)  // matched on normalized text, so its content is normalized too
            normalized_matcher.add(normalizer.apply(t.content), t);
        else
            raw_matcher.add(t.content, t);
    }
}

void Tokenizer::Impl::parse_post_processor(const nlohmann::json& j, const JsonPath& p) {
    if (j.is_null()) return;
    const auto type = type_of(j, p);
    std::vector<int32_t> pre, suf;
    if (type == "ByteLevel") {
        return;  // offsets only
    } else if (type == "Sequence") {
        const auto sp = p.child("processors");
        const auto& list = require(j, "processors", sp);
        if (!list.is_array()) throw sp.error("must be an array");
        for (size_t i = 0; i < list.size(); ++i) parse_post_processor(list[i], sp.index(i));
        return;
    } else if (type == "TemplateProcessing") {
        const auto sp = p.child("special_tokens");
        const auto& specials = require(j, "special_tokens", sp);
        if (!specials.is_object()) throw sp.error("must be an object");
        const auto single_p = p.child("single");
        const auto& single = require(j, "single", single_p);
        if (!single.is_array()) throw single_p.error("must be an array");
        bool seen_a = false;
        for (size_t i = 0; i < single.size(); ++i) {
            const auto ip = single_p.index(i);
            const auto& item = single[i];
            if (item.is_object() && item.contains("Sequence")) {
                const auto id = req_string(item["Sequence"], "id", ip.child("Sequence"));
                if (id != "A" || seen_a) throw ip.unsupported("a single template with sequence '" + id + "' or a repeated $A");
                seen_a = true;
            } else if (item.is_object() && item.contains("SpecialToken")) {
                const auto id = req_string(item["SpecialToken"], "id", ip.child("SpecialToken"));
                if (!specials.contains(id)) throw ip.error("names '" + id + "', which is not in special_tokens");
                const auto tp = sp.child(id);
                const auto& ids = require(specials[id], "ids", tp.child("ids"));
                if (!ids.is_array()) throw tp.child("ids").error("must be an array");
                for (size_t k = 0; k < ids.size(); ++k) {
                    if (!ids[k].is_number_integer() || ids[k].get<int64_t>() < 0 || ids[k].get<int64_t>() > kMaxTokenId)
                        throw tp.child("ids").index(k).error("must be a token id");
                    (seen_a ? suf : pre).push_back(ids[k].get<int32_t>());
                }
            } else {
                throw ip.error("must be {\"Sequence\": ...} or {\"SpecialToken\": ...}");
            }
        }
        if (!seen_a) throw single_p.error("has no $A");
    } else if (type == "BertProcessing" || type == "RobertaProcessing") {
        for (const char* key : {"cls", "sep"}) {
            const auto kp = p.child(key);
            const auto& v = require(j, key, kp);
            if (!v.is_array() || v.size() != 2 || !v[1].is_number_integer() || v[1].get<int64_t>() < 0 ||
                v[1].get<int64_t>() > kMaxTokenId)
                throw kp.error("must be [token, id]");
            (key[0] == 'c' ? pre : suf).push_back(v[1].get<int32_t>());
        }
    } else {
        throw p.unsupported_type(type);
    }
    // A later processor wraps what the earlier ones produced.
    prefix.insert(prefix.begin(), pre.begin(), pre.end());
    suffix.insert(suffix.end(), suf.begin(), suf.end());
}

void Tokenizer::Impl::apply_config(const nlohmann::json& cfg, const nlohmann::json& map,
                                   const std::string& cfg_name) {
    const JsonPath cp{cfg_name, ""}, mp{"special_tokens_map.json", ""};
    const auto token_id = [&](const char* key) {
        std::string tok = special_field(cfg, key, cp);
        if (tok.empty()) tok = special_field(map, key, mp);
        return tok.empty() ? -1 : find(tok);
    };
    bos = token_id("bos_token");
    eos = token_id("eos_token");
    const bool has_bos_flag = cfg.is_object() && cfg.contains("add_bos_token") && !cfg["add_bos_token"].is_null();
    const bool has_eos_flag = cfg.is_object() && cfg.contains("add_eos_token") && !cfg["add_eos_token"].is_null();
    if (!has_bos_flag && !has_eos_flag) return;
    // transformers rebuilds the post-processor from these flags (update_post_processor).
    const bool add_bos = opt_bool(cfg, "add_bos_token", false, cp);
    const bool add_eos = opt_bool(cfg, "add_eos_token", false, cp);
    if (add_bos && bos < 0) throw Error(cfg_name + ": add_bos_token is true but bos_token is not a known token");
    if (add_eos && eos < 0) throw Error(cfg_name + ": add_eos_token is true but eos_token is not a known token");
    prefix.clear();
    suffix.clear();
    if (add_bos) prefix.push_back(bos);
    if (add_eos) suffix.push_back(eos);
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
    std::filesystem::path file = path, dir = path.parent_path();
    if (std::filesystem::is_directory(path)) {
        file = path / "tokenizer.json";
        dir = path;
    }
    if (!std::filesystem::exists(file)) throw Error(file.string() + ": no such file");
    const auto json = read_text(file, kMaxTokenizerBytes);
    std::string cfg, map;
    if (std::filesystem::exists(dir / "tokenizer_config.json"))
        cfg = read_text(dir / "tokenizer_config.json", kMaxConfigBytes);
    if (std::filesystem::exists(dir / "special_tokens_map.json"))
        map = read_text(dir / "special_tokens_map.json", kMaxConfigBytes);
    return from_json(json, cfg, map, file.string());
}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json,
                               std::string_view special_tokens_map_json, const std::string& name) {
    auto impl = std::make_unique<Impl>();
    impl->name = name;
    const auto root = parse(tokenizer_json, name);
    if (!root.is_object()) throw Error(name + ": must be a JSON object");
    const auto field = [&](const char* key) -> const nlohmann::json& {
        static const nlohmann::json null;
        return root.contains(key) ? root[key] : null;
    };

    const JsonPath mp{name, "model"};
    const auto& model = require(root, "model", mp);
    if (!model.is_object()) throw mp.error("must be an object");
    const std::string mtype = model.contains("type") ? type_of(model, mp) : (model.contains("merges") ? "BPE" : "");
    if (mtype != "BPE") throw mp.unsupported_type(mtype.empty() ? "(none)" : mtype);
    impl->model = std::make_unique<BpeModel>(model, name);

    impl->normalizer = Normalizer(field("normalizer"), {name, "normalizer"});
    impl->pre_tokenizer = PreTokenizer(field("pre_tokenizer"), {name, "pre_tokenizer"});
    impl->decoder = Decoder(field("decoder"), {name, "decoder"});
    impl->parse_added(root);
    impl->parse_post_processor(field("post_processor"), {name, "post_processor"});

    const std::string cfg_name = (std::filesystem::path(name).parent_path() / "tokenizer_config.json").string();
    nlohmann::json cfg, map;
    if (!config_json.empty()) cfg = parse(config_json, cfg_name);
    if (!special_tokens_map_json.empty()) map = parse(special_tokens_map_json, "special_tokens_map.json");
    if (!cfg.is_null() && !cfg.is_object()) throw Error(cfg_name + ": must be a JSON object");
    impl->apply_config(cfg, map, cfg_name);

    int32_t max_id = -1;
    for (const auto& [tok, id] : impl->model->vocab()) max_id = std::max(max_id, id);
    for (const auto& t : impl->added) max_id = std::max(max_id, t.id);
    impl->id_to_token.resize(static_cast<size_t>(max_id + 1));
    for (const auto& [tok, id] : impl->model->vocab())
        if (impl->id_to_token[id].empty()) impl->id_to_token[id] = tok;
    for (const auto& t : impl->added) impl->id_to_token[t.id] = t.content;
    for (int32_t id : impl->prefix)
        if (id > max_id) throw Error(name + ": post_processor uses id " + std::to_string(id) + " beyond the vocabulary");
    for (int32_t id : impl->suffix)
        if (id > max_id) throw Error(name + ": post_processor uses id " + std::to_string(id) + " beyond the vocabulary");
    return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
    const Impl& m = *impl_;
    if (const size_t bad = utf8_find_invalid(text); bad != std::string_view::npos)
        throw Error("tokenizer: text is not valid UTF-8 at byte " + std::to_string(bad));
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 4);
    if (add_special_tokens) ids = m.prefix;
    std::vector<Segment> raw, sub;
    std::vector<Piece> pieces;
    m.raw_matcher.split(text, raw);
    for (const auto& seg : raw) {
        if (seg.token >= 0) {
            ids.push_back(seg.token);
            continue;
        }
        const std::string norm = m.normalizer.apply(std::string(text.substr(seg.begin, seg.end - seg.begin)));
        m.normalized_matcher.split(norm, sub);
        for (const auto& s : sub) {
            if (s.token >= 0) {
                ids.push_back(s.token);
                continue;
            }
            pieces.clear();
            pieces.push_back({norm.substr(s.begin, s.end - s.begin), seg.begin == 0 && s.begin == 0});
            m.pre_tokenizer.apply(pieces);
            for (const auto& pc : pieces) m.model->tokenize(pc.text, ids);
        }
    }
    if (add_special_tokens) ids.insert(ids.end(), m.suffix.begin(), m.suffix.end());
    return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
    const Impl& m = *impl_;
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
        if (auto it = m.added_by_id.find(id); it != m.added_by_id.end()) {
            if (!(skip_special_tokens && m.added[it->second].special)) tokens.push_back(m.added[it->second].content);
        } else if (id >= 0 && static_cast<size_t>(id) < m.id_to_token.size() && !m.id_to_token[id].empty()) {
            tokens.push_back(m.id_to_token[id]);
        }
    }
    return m.decoder.decode(std::move(tokens));
}

int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
int32_t Tokenizer::unk_id() const { return impl_->model->unk_id(); }
size_t Tokenizer::vocab_size() const { return impl_->id_to_token.size(); }
int32_t Tokenizer::token_to_id(std::string_view token) const { return impl_->find(token); }
std::string Tokenizer::id_to_token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= impl_->id_to_token.size()) return {};
    return impl_->id_to_token[id];
}
bool Tokenizer::is_special(int32_t id) const {
    auto it = impl_->added_by_id.find(id);
    return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}
const std::vector<int32_t>& Tokenizer::prefix_ids() const { return impl_->prefix; }
const std::vector<int32_t>& Tokenizer::suffix_ids() const { return impl_->suffix; }

}  // namespace microscale::calib
