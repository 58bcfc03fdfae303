// Helpers for the model tests: scratch directories and hand-made checkpoints (zero data; the
// layout reads names, shapes and dtypes only).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "microscale/error.h"
#include "model/layout.h"

// EXPECT that `text` (a std::string) contains `part`, printing the text when not.
#define EXPECT_CONTAINS(text, part)                                                   \
    do {                                                                              \
        const std::string text_ = (text);                                             \
        EXPECT_NE(text_.find(part), std::string::npos) << "'" << (part) << "' not in: " << text_; \
    } while (0)

namespace microscale::model::testing {

class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "microscale-model-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

inline void write_json(const std::filesystem::path& p, const nlohmann::json& j) {
    std::ofstream(p) << j.dump(2);
}

// A checkpoint of zero-filled tensors plus config.json.
inline void write_checkpoint(const std::filesystem::path& dir, const nlohmann::json& config,
                             const std::vector<io::TensorDecl>& decls) {
    std::filesystem::create_directories(dir);
    io::SafetensorsWriter w(dir / "model.safetensors", decls, {{"format", "pt"}});
    for (const auto& d : decls) {
        std::vector<uint8_t> zeros(io::tensor_nbytes(d, "test"), 0);
        w.write(d.name, zeros);
    }
    w.commit();
    write_json(dir / "config.json", config);
}

// The tensors of an existing checkpoint, for editing.
inline std::vector<io::TensorDecl> decls_of(const std::filesystem::path& dir) {
    const io::Checkpoint c = io::Checkpoint::open(dir);
    std::vector<io::TensorDecl> out;
    for (const auto& t : c.tensors()) out.push_back({t.info->name, t.info->dtype, t.info->shape});
    return out;
}

inline nlohmann::json read_json(const std::filesystem::path& p) { return load_config_json(p); }

// describe_model on a checkpoint directory.
inline ModelLayout describe_dir(const std::filesystem::path& dir) {
    const io::Checkpoint c = io::Checkpoint::open(dir);
    const auto cfg = dir / "config.json";
    return describe_model(load_config_json(cfg), c, cfg.string());
}

// The message of the microscale::Error thrown by describe_dir (fails the test if none).
inline std::string describe_error(const std::filesystem::path& dir) {
    try {
        describe_dir(dir);
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "describe_model accepted " << dir;
    return {};
}

// Every on-disk tensor is a linear's weight or a passthrough tensor, exactly once.
inline void expect_accounted_once(const ModelLayout& l, const io::Checkpoint& c) {
    std::multiset<std::string> seen;
    for (const auto& m : l.linears)
        if (!m.weight.empty()) seen.insert(m.weight);
    for (const auto& p : l.passthrough) seen.insert(p);
    std::multiset<std::string> disk;
    for (const auto& t : c.tensors()) disk.insert(t.info->name);
    EXPECT_EQ(seen, disk);
}

inline int find_linear(const ModelLayout& l, const std::string& name) {
    for (size_t i = 0; i < l.linears.size(); ++i)
        if (l.linears[i].name == name) return static_cast<int>(i);
    return -1;
}

}  // namespace microscale::model::testing
