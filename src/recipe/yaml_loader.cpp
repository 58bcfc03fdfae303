// YAML recipes in ModelOpt 0.46's schema (spec §6.4): `metadata`, `quantize: {algorithm, quant_cfg}`
// (or a bare QuantizeConfig with top-level quant_cfg/algorithm), `imports` + `$import`
// composition, one- or two-document files, and the legacy dict form of quant_cfg (§6.2).
#include <deque>
#include <filesystem>
#include <fmt/core.h>
#include <fstream>
#include <map>
#include <sstream>

#include "microscale/error.h"
#include "recipe/yaml_detail.h"

namespace microscale::recipe {
namespace {

using detail::fail;
using detail::fail_key;
using detail::get_bool;
using detail::get_number;
using detail::get_string;
using detail::Located;
using detail::map_entries;

constexpr uintmax_t kMaxFileBytes = 16u << 20;  // recipes are small; refuse anything absurd
constexpr int kMaxImportDepth = 32;

struct Source {
    std::string id;       // identity for cycle detection: "<builtin>/path" or a canonical path
    std::string display;  // what error messages call it
    std::string text;
    std::string dir;      // directory relative imports resolve against ("" for built-ins)
};

struct Scope;
// An imported file: a rule list (QuantizerCfgListConfig) or attribute pairs
// (QuantizerAttributeConfig), plus the aliases its own `imports` declared.
struct Snippet {
    std::string file;
    bool is_list = false;
    YAML::Node list;
    std::vector<Located> pairs;
    const Scope* scope = nullptr;
};

struct Scope {
    std::string file;
    std::map<std::string, Snippet> aliases;
};

// A file split into its parts: ModelOpt allows one document, or a header mapping (imports) and
// a content document (mapping or list).
struct Parsed {
    std::string file;
    std::optional<Located> imports;
    std::vector<Located> top;  // mapping content, header keys included, `imports` excluded
    bool is_list = false;
    YAML::Node list;
    YAML::Node root;
};

std::string strip_suffix(std::string_view s) {
    for (std::string_view suf : {".yaml", ".yml"})
        if (s.size() > suf.size() && s.substr(s.size() - suf.size()) == suf) return std::string(s.substr(0, s.size() - suf.size()));
    return std::string(s);
}

std::optional<Source> read_file_source(const std::filesystem::path& p) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(p, ec)) return std::nullopt;
    const uintmax_t size = std::filesystem::file_size(p, ec);
    if (ec) return std::nullopt;
    if (size > kMaxFileBytes) throw Error(fmt::format("{}: recipe file larger than 16 MiB", p.string()));
    std::ifstream in(p, std::ios::binary);
    if (!in) throw Error(fmt::format("{}: cannot open", p.string()));
    std::ostringstream ss;
    ss << in.rdbuf();
    Source src;
    src.id = std::filesystem::weakly_canonical(p, ec).string();
    if (ec) src.id = p.string();
    src.display = p.string();
    src.text = ss.str();
    src.dir = p.parent_path().string();
    return src;
}

Source builtin_source(std::string_view path, std::string_view text) {
    return Source{fmt::format("<builtin>/{}", path), fmt::format("<builtin>/{}.yaml", path), std::string(text), ""};
}

// Built-in snippets first, then files relative to the importing file, then to the working dir.
std::optional<Source> find_source(std::string_view spec, const std::string& from_dir, std::vector<std::string>& tried) {
    const std::string base = strip_suffix(spec);
    tried.push_back(fmt::format("<builtin>/{}", base));
    if (auto text = builtin_file(base)) return builtin_source(base, *text);
    std::vector<std::string> names;
    if (base != spec) names.emplace_back(spec);
    else names = {base + ".yaml", base + ".yml", base};
    const std::filesystem::path sp(names.front());
    std::vector<std::filesystem::path> dirs;
    if (sp.is_absolute()) dirs.emplace_back("");
    else {
        if (!from_dir.empty()) dirs.emplace_back(from_dir);
        dirs.emplace_back(".");
    }
    for (const auto& d : dirs)
        for (const std::string& n : names) {
            const std::filesystem::path p = d.empty() ? std::filesystem::path(n) : d / n;
            tried.push_back(p.string());
            if (auto src = read_file_source(p)) return src;
        }
    return std::nullopt;
}

Parsed parse_documents(const Source& src) {
    std::vector<YAML::Node> docs;
    try {
        docs = YAML::LoadAll(src.text);
    } catch (const YAML::Exception& e) {
        throw Error(fmt::format("{}:{}:{}: YAML syntax error: {}", src.display, e.mark.line + 1, e.mark.column + 1, e.msg));
    }
    Parsed p;
    p.file = src.display;
    if (docs.empty() || (docs.size() == 1 && docs[0].IsNull())) throw Error(fmt::format("{}: empty recipe file", src.display));
    if (docs.size() > 2) fail(src.display, docs[2], "", "expected one or two YAML documents (header, content)");
    const YAML::Node content = docs.back();
    p.root = content;
    std::vector<Located> header;
    if (docs.size() == 2) {
        if (!docs[0].IsMap() && !docs[0].IsNull()) fail(src.display, docs[0], "", "the first of two YAML documents must be a mapping (imports)");
        if (docs[0].IsMap()) header = map_entries(docs[0], src.display, "header");
    }
    if (content.IsSequence()) {
        p.is_list = true;
        p.list = content;
        for (Located& h : header) {
            if (h.key != "imports") fail(h, "a rule-list file's header may only hold 'imports'");
            p.imports = std::move(h);
        }
        return p;
    }
    if (!content.IsMap()) fail(src.display, content, "", "expected a mapping or a list of rules");
    std::vector<Located> body = map_entries(content, src.display, "document");
    for (Located& h : header)
        for (const Located& b : body)
            if (b.key == h.key) fail(b, "key appears in both YAML documents");
    header.insert(header.end(), body.begin(), body.end());
    for (Located& e : header) {
        if (e.key == "imports") p.imports = std::move(e);
        else p.top.push_back(std::move(e));
    }
    return p;
}

void set_pair(std::vector<Located>& out, const Located& e) {
    for (Located& o : out)
        if (o.key == e.key) {
            o = e;
            return;
        }
    out.push_back(e);
}

class Loader {
public:
    explicit Loader(std::vector<std::string>& warnings) : warnings_(warnings) {}

    Recipe load(const Source& src) {
        chain_.push_back(src.id);
        const Parsed p = parse_documents(src);
        if (p.is_list)
            fail(p.file, p.root, "", "this is a rule list (a quant_cfg unit), not a recipe: import it from a recipe with $import");
        const Scope& scope = build_scope(p.imports, p.file, src.dir);
        Recipe r;
        r.source = src.display;
        r.name = std::filesystem::path(strip_suffix(src.display)).filename().string();
        const Located* quantize = nullptr;
        std::vector<Located> qc;  // QuantizeConfig keys: algorithm, quant_cfg, effective_bits
        for (const Located& e : p.top) {
            if (e.key == "metadata") parse_metadata(e, r);
            else if (e.key == "quantize") quantize = &e;
            else if (e.key == "quant_cfg" || e.key == "algorithm" || e.key == "effective_bits") qc.push_back(e);
            else fail_key(e, "unknown top-level key (expected imports, metadata, quantize, or a QuantizeConfig's quant_cfg / algorithm / effective_bits)");
        }
        if (quantize) {
            if (!qc.empty()) fail(qc[0], "given both at top level and under 'quantize'");
            if (!quantize->node.IsMap()) fail(*quantize, "expected a mapping {algorithm, quant_cfg}");
            for (const Located& e : map_entries(quantize->node, p.file, "quantize")) {
                if (e.key != "quant_cfg" && e.key != "algorithm" && e.key != "effective_bits")
                    fail_key(e, "unknown key under quantize (expected algorithm, quant_cfg, effective_bits)");
                qc.push_back(e);
            }
        }
        bool have_cfg = false, have_algo = false;
        for (const Located& e : qc) {
            if (e.key == "quant_cfg") {
                parse_quant_cfg(e, scope, r.rules);
                have_cfg = true;
            } else if (e.key == "algorithm") {
                r.algorithms = detail::parse_algorithms(e);
                have_algo = true;
            } else {
                if (!e.node.IsNull()) {
                    const double b = get_number(e);
                    if (!(b > 0 && b <= 64)) fail(e, "effective_bits must be in (0, 64]");
                    r.effective_bits = b;
                }
            }
        }
        if (!have_cfg) {
            const Located at = quantize ? *quantize : Located{"quant_cfg", p.root, p.file};
            fail(at, "no quant_cfg: a recipe needs `quantize: {quant_cfg: [...]}` (or a top-level quant_cfg)");
        }
        if (!have_algo) r.algorithms.push_back(Algorithm{"max", {}, SourceLoc{p.file, 0, 0}});  // QuantizeConfig default
        chain_.pop_back();
        return r;
    }

private:
    std::vector<std::string>& warnings_;
    std::deque<Scope> scopes_;               // stable addresses for Snippet::scope
    std::map<std::string, Snippet> cache_;   // by Source::id
    std::vector<std::string> chain_;         // files being loaded, for cycle detection

    void parse_metadata(const Located& m, Recipe& r) {
        if (!m.node.IsMap()) fail(m, "expected a mapping {recipe_type, description}");
        for (const Located& e : map_entries(m.node, m.file, "metadata")) {
            if (e.key == "recipe_type") {
                r.recipe_type = get_string(e);
                if (r.recipe_type != "ptq")
                    fail(e, fmt::format("recipe_type '{}' is not supported (microscale runs ptq recipes)", r.recipe_type));
            } else if (e.key == "description") {
                r.description = get_string(e);
            } else {
                fail_key(e, "unknown metadata key (expected recipe_type, description)");
            }
        }
    }

    const Scope& build_scope(const std::optional<Located>& imports, const std::string& file, const std::string& dir) {
        Scope& sc = scopes_.emplace_back();
        sc.file = file;
        if (!imports || imports->node.IsNull()) return sc;
        if (!imports->node.IsMap()) fail(*imports, "imports must map aliases to config paths");
        for (const Located& e : map_entries(imports->node, file, "imports")) {
            if (get_string(e).empty()) fail(e, "import path is empty");
            sc.aliases.emplace(e.key, load_snippet(e, dir));
        }
        return sc;
    }

    Snippet load_snippet(const Located& v, const std::string& from_dir) {
        std::vector<std::string> tried;
        const std::optional<Source> src = find_source(get_string(v), from_dir, tried);
        if (!src) {
            std::string list;
            for (const std::string& t : tried) list += (list.empty() ? "" : ", ") + t;
            fail(v, fmt::format("cannot find import '{}' (tried {})", get_string(v), list));
        }
        for (const std::string& id : chain_)
            if (id == src->id) {
                std::string cycle;
                for (const std::string& c : chain_) cycle += c + " -> ";
                fail(v, fmt::format("circular import: {}{}", cycle, src->id));
            }
        if (auto it = cache_.find(src->id); it != cache_.end()) return it->second;
        if (chain_.size() > kMaxImportDepth) fail(v, "imports nested too deeply");
        chain_.push_back(src->id);
        Parsed p = parse_documents(*src);
        Snippet s;
        s.file = p.file;
        s.scope = &build_scope(p.imports, p.file, src->dir);
        s.is_list = p.is_list;
        s.list = p.list;
        s.pairs = std::move(p.top);
        chain_.pop_back();
        cache_.emplace(src->id, s);
        return s;
    }

    const Snippet& lookup(const Scope& scope, const Located& ref) {
        const std::string alias = get_string(ref);
        auto it = scope.aliases.find(alias);
        if (it == scope.aliases.end()) {
            std::string known;
            for (const auto& [k, _] : scope.aliases) known += (known.empty() ? "" : ", ") + k;
            fail(ref, fmt::format("unknown $import '{}' (imports declared in {}: {})", alias, scope.file,
                                  known.empty() ? "none" : known));
        }
        return it->second;
    }

    // cfg pairs with `$import` resolved: imported snippets merge in order, inline keys win.
    void merge_pairs(const std::vector<Located>& pairs, const Scope& scope, std::vector<Located>& out, int depth) {
        if (depth > kMaxImportDepth) fail(pairs.front(), "$import nested too deeply");
        std::vector<Located> inline_pairs;
        for (const Located& e : pairs) {
            if (e.key != "$import") {
                inline_pairs.push_back(e);
                continue;
            }
            std::vector<Located> refs;
            if (e.node.IsSequence())
                for (const YAML::Node& n : e.node) refs.push_back(Located{e.key, n, e.file});
            else
                refs.push_back(e);
            for (const Located& ref : refs) {
                const Snippet& s = lookup(scope, ref);
                if (s.is_list) fail(ref, fmt::format("$import '{}' is a rule list; a cfg needs attributes", get_string(ref)));
                merge_pairs(s.pairs, *s.scope, out, depth + 1);
            }
        }
        for (const Located& e : inline_pairs) set_pair(out, e);
    }

    void parse_quant_cfg(const Located& v, const Scope& scope, std::vector<Rule>& out) {
        if (v.node.IsSequence()) {
            parse_rules(v.node, v.file, scope, out, 0);
        } else if (v.node.IsMap()) {
            warnings_.push_back(fmt::format("{}: legacy dict quant_cfg (deprecated since ModelOpt 0.44): keys apply in "
                                            "order and 'default' becomes '*' in place",
                                            detail::loc_of(v.file, v.node).str()));
            for (const Located& e : map_entries(v.node, v.file, "quant_cfg")) legacy_entry(e, scope, out);
        } else {
            fail(v, "quant_cfg must be a list of rules (or a legacy mapping)");
        }
    }

    void parse_rules(const YAML::Node& list, const std::string& file, const Scope& scope, std::vector<Rule>& out, int depth) {
        if (depth > kMaxImportDepth) fail(file, list, "quant_cfg", "$import nested too deeply");
        for (const YAML::Node& item : list) {
            const Located at{"quant_cfg", item, file};
            if (!item.IsMap()) fail(at, "each rule must be a mapping {quantizer_name, cfg, enable}");
            const std::vector<Located> entries = map_entries(item, file, "rule");
            bool has_import = false, has_name = false, has_nn = false;
            for (const Located& e : entries) {
                has_import |= e.key == "$import";
                has_name |= e.key == "quantizer_name";
                has_nn |= e.key.rfind("nn.", 0) == 0;
            }
            if (has_import) {
                if (entries.size() != 1) fail(at, "$import must be the only key of a list entry");
                const Snippet& s = lookup(scope, entries[0]);
                if (s.is_list) {
                    parse_rules(s.list, s.file, *s.scope, out, depth + 1);
                } else {
                    bool entry_like = false;
                    for (const Located& e : s.pairs) entry_like |= e.key == "quantizer_name";
                    if (!entry_like) fail(entries[0], fmt::format("$import '{}' in a rule list must be a list of rules", get_string(entries[0])));
                    parse_entry(s.pairs, Located{"quant_cfg", YAML::Node(), s.file}, *s.scope, out);
                }
            } else if (has_name) {
                parse_entry(entries, at, scope, out);
            } else if (entries.size() == 1 && entries[0].key != "cfg" && entries[0].key != "enable" &&
                       entries[0].key != "parent_class") {
                legacy_entry(entries[0], scope, out);  // {'<glob>': {...}} single-key legacy entry
            } else if (has_nn) {
                for (const Located& e : entries) legacy_entry(e, scope, out);
            } else {
                fail(at, "rule has no quantizer_name");
            }
        }
    }

    // cfg value -> attributes, or nullopt for "no cfg" (null, or empty with enable false).
    std::optional<QuantizerAttributes> parse_cfg(const Located& c, std::optional<bool> enable, const Scope& scope,
                                                 const std::string& name) {
        if (c.node.IsNull()) return std::nullopt;
        if (c.node.IsSequence()) {
            bool empty = true;
            for (const YAML::Node& n : c.node) empty &= n.IsMap() && n.size() == 0;
            if (empty && enable == false) return std::nullopt;
            if (empty) fail(c, fmt::format("empty cfg for '{}': drop cfg to keep attributes, or set enable: false", name));
            fail(c, "a list cfg (SequentialQuantizer, e.g. W4A8 AWQ) is not supported by microscale");
        }
        if (!c.node.IsMap()) fail(c, "cfg must be a mapping of quantizer attributes");
        std::vector<Located> pairs;
        merge_pairs(map_entries(c.node, c.file, "cfg"), scope, pairs, 0);
        return attributes_from(pairs, c, enable, name);
    }

    std::optional<QuantizerAttributes> attributes_from(const std::vector<Located>& pairs, const Located& at,
                                                       std::optional<bool> enable, const std::string& name) {
        if (pairs.empty()) {
            if (enable == false) return std::nullopt;
            fail(at, fmt::format("empty cfg for '{}': drop cfg to keep attributes, or set enable: false", name));
        }
        QuantizerAttributes q = detail::parse_attributes(pairs, at);
        if (q.enable != enable.value_or(true))
            warnings_.push_back(fmt::format("{}: cfg.enable is ignored by ModelOpt 0.46; the rule's enable ({}) wins for '{}'",
                                            detail::loc_of(at.file, at.node).str(), enable.value_or(true), name));
        q.enable = true;
        return q;
    }

    void parse_entry(const std::vector<Located>& entries, const Located& at, const Scope& scope, std::vector<Rule>& out) {
        Rule r;
        const Located* cfg = nullptr;
        const Located* name_at = nullptr;
        for (const Located& e : entries) {
            if (e.key == "quantizer_name") {
                r.quantizer_name = get_string(e);
                name_at = &e;
                if (r.quantizer_name.empty()) fail(e, "quantizer_name is empty");
            } else if (e.key == "parent_class") {
                if (!e.node.IsNull()) r.parent_class = get_string(e);
            } else if (e.key == "enable") {
                r.enable = get_bool(e);
            } else if (e.key == "cfg") {
                cfg = &e;
            } else {
                fail_key(e, "unknown rule key (expected quantizer_name, parent_class, cfg, enable)");
            }
        }
        const Located& where = name_at ? *name_at : at;
        r.where = detail::loc_of(where.file, at.node.IsDefined() && !at.node.IsNull() ? at.node : where.node);
        if (cfg) r.cfg = parse_cfg(*cfg, r.enable, scope, r.quantizer_name);
        if (!cfg && !r.enable)
            fail(where, fmt::format("rule '{}' sets neither cfg nor enable (ModelOpt rejects it)", r.quantizer_name));
        out.push_back(std::move(r));
    }

    // One legacy `glob: {attrs..., enable}` or `nn.Class: {glob: {...}}` pair (normalize_quant_cfg_list).
    void legacy_entry(const Located& kv, const Scope& scope, std::vector<Rule>& out) {
        const std::string key = kv.key == "default" ? std::string("*") : kv.key;
        if (key.rfind("nn.", 0) == 0) {
            if (!kv.node.IsMap()) fail(kv, "an nn.* legacy entry maps quantizer globs to attributes");
            for (const Located& sub : map_entries(kv.node, kv.file, key)) legacy_rule(sub, key, scope, out);
        } else {
            legacy_rule(Located{key, kv.node, kv.file}, std::nullopt, scope, out);
        }
    }

    void legacy_rule(const Located& kv, std::optional<std::string> parent, const Scope& scope, std::vector<Rule>& out) {
        if (kv.node.IsSequence()) fail(kv, "a list cfg (SequentialQuantizer) is not supported by microscale");
        if (!kv.node.IsMap()) fail(kv, "legacy quant_cfg values must be attribute mappings");
        Rule r;
        r.quantizer_name = kv.key;
        r.parent_class = std::move(parent);
        r.where = detail::loc_of(kv.file, kv.node);
        std::vector<Located> rest;
        for (const Located& e : map_entries(kv.node, kv.file, kv.key)) {
            if (e.key == "enable") r.enable = get_bool(e);
            else rest.push_back(e);
        }
        std::vector<Located> pairs;
        if (!rest.empty()) merge_pairs(rest, scope, pairs, 0);
        if (!pairs.empty()) r.cfg = attributes_from(pairs, kv, r.enable, r.quantizer_name);
        if (!r.cfg && !r.enable) fail(kv, fmt::format("legacy entry '{}' sets neither attributes nor enable", kv.key));
        out.push_back(std::move(r));
    }
};

Recipe load_source(const Source& src) {
    std::vector<std::string> warnings;
    Loader loader(warnings);
    Recipe r = loader.load(src);
    r.warnings = std::move(warnings);
    return r;
}

}  // namespace

Recipe load_recipe_text(std::string_view yaml_text, std::string_view display_name, const std::string& base_dir) {
    Source src{fmt::format("<text>/{}", display_name), std::string(display_name), std::string(yaml_text), base_dir};
    return load_source(src);
}

Recipe load_recipe_file(const std::string& path) {
    std::optional<Source> src = read_file_source(path);
    if (!src) throw Error(fmt::format("{}: no such recipe file", path));
    return load_source(*src);
}

Recipe load_preset(std::string_view name) {
    const PresetInfo* info = find_preset(name);
    if (!info) throw Error(fmt::format("unknown preset '{}' (see `microscale recipes`)", name));
    const std::optional<std::string_view> text = builtin_file(info->path);
    if (!text) throw Error(fmt::format("preset {}: built-in file {} missing", name, info->path));
    Recipe r = load_source(builtin_source(info->path, *text));
    r.name = std::string(info->name);
    if (r.description.empty()) r.description = std::string(info->description);
    return r;
}

Recipe load_recipe(std::string_view spec) {
    if (find_preset(spec)) return load_preset(spec);
    // NVFP4_DEFAULT_CFG+FP8_KV_CFG: KV presets are merged into a main one, as hf_ptq does.
    if (const size_t plus = spec.find('+'); plus != std::string_view::npos) {
        std::vector<std::string_view> parts;
        size_t start = 0;
        bool all_presets = true;
        while (start <= spec.size()) {
            const size_t end = std::min(spec.find('+', start), spec.size());
            parts.push_back(spec.substr(start, end - start));
            all_presets &= find_preset(parts.back()) != nullptr;
            start = end + 1;
        }
        if (all_presets) {
            Recipe r = load_preset(parts[0]);
            for (size_t i = 1; i < parts.size(); ++i) r = append_rules(std::move(r), load_preset(parts[i]));
            return r;
        }
    }
    const std::string base = strip_suffix(spec);
    if (auto text = builtin_file(base)) {
        Recipe r = load_source(builtin_source(base, *text));
        return r;
    }
    std::vector<std::string> tried;
    if (std::optional<Source> src = find_source(spec, "", tried)) return load_source(*src);
    throw Error(fmt::format("'{}' is neither a preset (see `microscale recipes`) nor a recipe file", spec));
}

}  // namespace microscale::recipe
