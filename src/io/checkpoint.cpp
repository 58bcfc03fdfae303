// Checkpoint (HF directory reader) and ShardedWriter.
#include "io/checkpoint.h"

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <system_error>
#include <unordered_set>

#include <nlohmann/json.hpp>

namespace microscale::io {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Parses JSON rejecting duplicate keys at every depth (nlohmann silently keeps the last one).
json parse_json_no_duplicates(const std::string& text, const std::string& file) {
    std::vector<std::unordered_set<std::string>> open;  // keys of each open object
    auto cb = [&](int /*depth*/, json::parse_event_t ev, json& parsed) {
        using E = json::parse_event_t;
        if (ev == E::object_start) open.emplace_back();
        else if (ev == E::object_end && !open.empty()) open.pop_back();
        else if (ev == E::key && !open.empty()) {
            const auto& key = parsed.get_ref<const std::string&>();
            if (!open.back().insert(key).second)
                throw Error(file + ": duplicate key '" + key + "'");
        }
        return true;
    };
    try {
        return json::parse(text, cb);
    } catch (const json::exception& e) {
        throw Error(file + ": not valid JSON: " + e.what());
    }
}

std::string read_small_file(const fs::path& path, uint64_t cap) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec) throw Error(path.string() + ": cannot stat: " + ec.message());
    if (size > cap)
        throw Error(path.string() + ": " + std::to_string(size) + " bytes, over the " +
                    std::to_string(cap) + "-byte cap");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path.string() + ": cannot open");
    std::string text(size, '\0');
    in.read(text.data(), static_cast<std::streamsize>(size));
    if (static_cast<uint64_t>(in.gcount()) != size) throw Error(path.string() + ": short read");
    return text;
}

// A shard name from the index must stay inside the checkpoint directory.
bool plain_file_name(const std::string& s) {
    return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
           s.find('\0') == std::string::npos;
}

std::string shard_name(size_t k, size_t n) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", k + 1, n);
    return buf;
}

}  // namespace

Checkpoint Checkpoint::open(const fs::path& dir) {
    Checkpoint c;
    c.dir_ = dir;
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw Error(dir.string() + ": not a checkpoint directory (does not exist or is not a directory)");

    const fs::path single = dir / kSingleFileName;
    const fs::path index_path = dir / kIndexFileName;
    // name -> shard file, from the index (empty for a single file)
    std::map<std::string, std::string> weight_map;
    std::vector<std::string> shard_files;

    if (fs::exists(single, ec)) {
        shard_files.push_back(kSingleFileName);
    } else if (fs::exists(index_path, ec)) {
        c.sharded_ = true;
        const std::string ipath = index_path.string();
        const json idx = parse_json_no_duplicates(read_small_file(index_path, kMaxIndexBytes), ipath);
        if (!idx.is_object()) throw Error(ipath + ": index must be a JSON object");
        auto wm = idx.find("weight_map");
        if (wm == idx.end() || !wm->is_object())
            throw Error(ipath + ": missing or non-object 'weight_map'");
        std::set<std::string> files;
        for (const auto& [name, file] : wm->items()) {
            if (!file.is_string())
                throw Error(ipath + ": weight_map entry for tensor '" + name + "' is not a string");
            const auto& f = file.get_ref<const std::string&>();
            if (!plain_file_name(f))
                throw Error(ipath + ": tensor '" + name + "' maps to '" + f +
                            "', which is not a plain file name in the checkpoint directory");
            weight_map.emplace(name, f);
            files.insert(f);
        }
        if (weight_map.empty()) throw Error(ipath + ": weight_map is empty");
        for (const auto& f : files) {
            if (!fs::exists(dir / f, ec)) {
                std::string example;
                for (const auto& [n, sf] : weight_map)
                    if (sf == f) { example = n; break; }
                throw Error(ipath + ": shard '" + f + "' (holding tensor '" + example +
                            "') does not exist in " + dir.string());
            }
            shard_files.push_back(f);
        }
    } else {
        throw Error(dir.string() + ": no " + kSingleFileName + " or " + kIndexFileName);
    }

    for (const auto& f : shard_files)
        c.shards_.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(dir / f)));

    for (size_t s = 0; s < c.shards_.size(); ++s) {
        const SafetensorsFile& shard = *c.shards_[s];
        for (const TensorInfo& t : shard.tensors()) {
            auto [it, fresh] = c.index_.emplace(t.name, c.tensors_.size());
            if (!fresh)
                throw Error(dir.string() + ": tensor '" + t.name + "' is in two shards: " +
                            c.tensors_[it->second].file->path().filename().string() + " and " +
                            shard_files[s]);
            if (c.sharded_) {
                auto wm = weight_map.find(t.name);
                if (wm == weight_map.end())
                    throw Error(index_path.string() + ": tensor '" + t.name + "' is in shard " +
                                shard_files[s] + " but not listed in weight_map");
                if (wm->second != shard_files[s])
                    throw Error(index_path.string() + ": tensor '" + t.name + "' is listed in " +
                                wm->second + " but found in " + shard_files[s]);
            }
            c.tensors_.push_back({&shard, &t});
        }
    }
    for (const auto& [name, file] : weight_map)
        if (!c.index_.count(name))
            throw Error(index_path.string() + ": tensor '" + name + "' is listed for shard " + file +
                        " but that shard has no such tensor");
    return c;
}

const TensorRef* Checkpoint::find(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorRef& Checkpoint::at(std::string_view name) const {
    const TensorRef* t = find(name);
    if (!t) throw Error(dir_.string() + ": no tensor '" + std::string(name) + "' in the checkpoint");
    return *t;
}

ShardPlan plan_shards(std::span<const uint64_t> tensor_bytes, uint64_t max_shard_bytes) {
    ShardPlan p;
    p.shard_of.reserve(tensor_bytes.size());
    p.shard_bytes.push_back(0);
    size_t in_shard = 0;  // tensors in the current shard
    for (uint64_t n : tensor_bytes) {
        // Close the current shard when this tensor would overflow it (never leave one empty).
        const uint64_t cur = p.shard_bytes.back();
        if (in_shard > 0 && (cur > max_shard_bytes || n > max_shard_bytes - cur)) {
            p.shard_bytes.push_back(0);
            in_shard = 0;
        }
        p.shard_of.push_back(p.shard_bytes.size() - 1);
        p.shard_bytes.back() += n;
        p.total_bytes += n;
        ++in_shard;
    }
    const size_t count = p.shard_bytes.size();
    for (size_t k = 0; k < count; ++k)
        p.files.push_back(count == 1 ? std::string(kSingleFileName) : shard_name(k, count));
    return p;
}

ShardedWriter::ShardedWriter(fs::path dir, std::vector<TensorDecl> tensors, Metadata metadata,
                             uint64_t max_shard_bytes, WriteMode mode)
    : dir_(std::move(dir)), decls_(std::move(tensors)), metadata_(std::move(metadata)), mode_(mode) {
    if (max_shard_bytes == 0) throw Error(dir_.string() + ": max shard size must be positive");
    std::vector<uint64_t> sizes;
    sizes.reserve(decls_.size());
    for (const auto& d : decls_) sizes.push_back(tensor_nbytes(d, dir_.string()));
    // Catch duplicates and bad names across shards now, not halfway through writing.
    (void)build_safetensors_header(decls_, metadata_, dir_.string());
    plan_ = plan_shards(sizes, max_shard_bytes);
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw Error(dir_.string() + ": cannot create output directory: " + ec.message());
}

ShardedWriter::~ShardedWriter() {
    if (!committed_) abandon();
}

void ShardedWriter::abandon() noexcept {
    failed_ = true;
    writers_.clear();  // each uncommitted writer removes its temporary file
}

SafetensorsWriter& ShardedWriter::current(std::string_view name) {
    if (failed_) throw Error(dir_.string() + ": write to a sharded writer that already failed");
    if (committed_) throw Error(dir_.string() + ": write after commit");
    if (!writers_.empty() && !writers_.back()->done()) return *writers_.back();
    if (!writers_.empty()) writers_.back()->finish();
    const size_t k = writers_.size();
    if (k == plan_.files.size())
        throw Error(dir_.string() + ": tensor '" + std::string(name) +
                    "': all declared tensors are already written");
    std::vector<TensorDecl> mine;
    for (size_t i = 0; i < decls_.size(); ++i)
        if (plan_.shard_of[i] == k) mine.push_back(decls_[i]);
    writers_.push_back(std::make_unique<SafetensorsWriter>(dir_ / plan_.files[k], std::move(mine), metadata_, mode_));
    return *writers_.back();
}

void ShardedWriter::write(std::string_view name, std::span<const uint8_t> data) {
    try {
        current(name).write(name, data);
    } catch (const Error&) {
        abandon();
        throw;
    }
}

void ShardedWriter::append(std::string_view name, std::span<const uint8_t> chunk) {
    try {
        current(name).append(name, chunk);
    } catch (const Error&) {
        abandon();
        throw;
    }
}

void ShardedWriter::commit() {
    if (committed_) return;
    if (failed_) throw Error(dir_.string() + ": commit of a sharded writer that already failed");
    try {
        if (decls_.empty() && writers_.empty()) (void)current("");  // an empty model.safetensors
        // Name the first tensor not written (a shard of zero-size tensors must be written too).
        if (!writers_.empty() && !writers_.back()->done()) writers_.back()->finish();  // throws
        if (writers_.size() != plan_.files.size()) {
            for (size_t i = 0; i < decls_.size(); ++i)
                if (plan_.shard_of[i] == writers_.size())
                    throw Error(dir_.string() + ": commit before tensor '" + decls_[i].name +
                                "' was written");
        }
        for (auto& w : writers_) w->finish();
        for (auto& w : writers_) w->commit();
        if (plan_.files.size() > 1) {
            json wm = json::object();
            for (size_t i = 0; i < decls_.size(); ++i) wm[decls_[i].name] = plan_.files[plan_.shard_of[i]];
            json idx = {{"metadata", {{"total_size", plan_.total_bytes}}}, {"weight_map", wm}};
            write_file_atomic(dir_ / kIndexFileName, idx.dump(2) + "\n");
        }
    } catch (const Error&) {
        abandon();
        throw;
    }
    committed_ = true;
}

}  // namespace microscale::io
