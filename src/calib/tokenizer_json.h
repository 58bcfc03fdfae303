// Small helpers for reading tokenizer.json as hostile input: every error names the file and the
// JSON path, e.g. "tokenizer.json: normalizer.type 'BertNormalizer' is not supported".
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "microscale/error.h"

namespace microscale::calib {

struct JsonPath {
    std::string file;
    std::string path;

    JsonPath child(const std::string& key) const { return {file, path.empty() ? key : path + "." + key}; }
    JsonPath index(size_t i) const { return {file, path + "[" + std::to_string(i) + "]"}; }
    Error error(const std::string& msg) const { return Error(file + ": " + path + " " + msg); }
    Error unsupported(const std::string& what) const {
        return Error(file + ": " + path + ": " + what + " is not supported");
    }
    Error unsupported_type(const std::string& type) const {
        return Error(file + ": " + path + ".type '" + type + "' is not supported");
    }
};

inline const nlohmann::json& require(const nlohmann::json& obj, const char* key, const JsonPath& p) {
    if (!obj.is_object() || !obj.contains(key)) throw p.error("is missing");
    return obj[key];
}

inline bool opt_bool(const nlohmann::json& obj, const char* key, bool dflt, const JsonPath& parent) {
    if (!obj.contains(key) || obj[key].is_null()) return dflt;
    if (!obj[key].is_boolean()) throw parent.child(key).error("must be true or false");
    return obj[key].get<bool>();
}

inline std::string req_string(const nlohmann::json& obj, const char* key, const JsonPath& parent) {
    const auto p = parent.child(key);
    const auto& v = require(obj, key, p);
    if (!v.is_string()) throw p.error("must be a string");
    return v.get<std::string>();
}

inline std::string opt_string(const nlohmann::json& obj, const char* key, const std::string& dflt,
                              const JsonPath& parent) {
    if (!obj.contains(key) || obj[key].is_null()) return dflt;
    if (!obj[key].is_string()) throw parent.child(key).error("must be a string");
    return obj[key].get<std::string>();
}

inline int64_t opt_int(const nlohmann::json& obj, const char* key, int64_t dflt, int64_t lo,
                       int64_t hi, const JsonPath& parent) {
    if (!obj.contains(key) || obj[key].is_null()) return dflt;
    const auto p = parent.child(key);
    if (!obj[key].is_number_integer()) throw p.error("must be an integer");
    const auto v = obj[key].get<int64_t>();
    if (v < lo || v > hi) throw p.error("is out of range");
    return v;
}

// The "type" of a component object.
inline std::string type_of(const nlohmann::json& obj, const JsonPath& p) {
    if (!obj.is_object()) throw p.error("must be an object");
    return req_string(obj, "type", p);
}

}  // namespace microscale::calib
