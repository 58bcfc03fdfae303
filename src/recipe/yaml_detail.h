// Internal to src/recipe: yaml-cpp helpers shared by the loader and the value parsers. Every
// error names file:line:column (1-based, from the yaml-cpp Mark) and the key.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "recipe/recipe.h"

namespace microscale::recipe::detail {

// A value with the file it was read from (imports splice nodes from other files).
struct Located {
    std::string key;
    YAML::Node node;
    std::string file;
    YAML::Node key_node = YAML::Node();  // set for map entries: unknown-key errors point here
};

SourceLoc loc_of(const std::string& file, const YAML::Node& node);
[[noreturn]] void fail(const std::string& file, const YAML::Node& node, std::string_view key,
                       const std::string& message);
[[noreturn]] inline void fail(const Located& v, const std::string& message) { fail(v.file, v.node, v.key, message); }
// For errors about the key itself (unknown keys): the key's position when known.
[[noreturn]] void fail_key(const Located& v, const std::string& message);

// Map entries in document order; duplicate or non-scalar keys are errors.
std::vector<Located> map_entries(const YAML::Node& map, const std::string& file, std::string_view what);

bool is_plain_scalar(const YAML::Node& node);  // unquoted scalar (YAML may read it as a number/bool)
bool get_bool(const Located& v);
int64_t get_int(const Located& v);
double get_number(const Located& v);
std::string get_string(const Located& v);  // any scalar, quoted or not

// cfg: a QuantizerAttributeConfig from already-merged key/value pairs ($import resolved);
// `where` locates the cfg as a whole.
QuantizerAttributes parse_attributes(const std::vector<Located>& pairs, const Located& where);

// `algorithm`: null, a name, {method, ...} or a list of those.
std::vector<Algorithm> parse_algorithms(const Located& v);

}  // namespace microscale::recipe::detail
