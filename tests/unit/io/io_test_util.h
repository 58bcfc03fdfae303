// Helpers for the io tests: a scratch directory and hand-built (possibly malformed) files.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "microscale/error.h"

namespace microscale::io::testing {

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "microscale-io-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
    // Names of the files in the directory, sorted.
    std::vector<std::string> list() const {
        std::vector<std::string> out;
        for (const auto& e : std::filesystem::directory_iterator(path_))
            out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }

private:
    std::filesystem::path path_;
};

inline void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// 8-byte little-endian length (`declared_len`, or the header's own length), header, data.
inline std::string raw_safetensors(const std::string& header, size_t data_bytes,
                                   uint64_t declared_len = UINT64_MAX) {
    const uint64_t n = declared_len == UINT64_MAX ? header.size() : declared_len;
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    s += header;
    for (size_t i = 0; i < data_bytes; ++i) s.push_back(static_cast<char>(i * 7 + 1));
    return s;
}

// Runs `fn`, expects a microscale::Error whose message contains every one of `parts`.
inline void expect_error(const std::function<void()>& fn, std::initializer_list<std::string> parts) {
    try {
        fn();
    } catch (const microscale::Error& e) {
        const std::string msg = e.what();
        for (const auto& p : parts)
            EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
        return;
    } catch (const std::exception& e) {
        ADD_FAILURE() << "expected microscale::Error, got another exception: " << e.what();
        return;
    }
    ADD_FAILURE() << "expected microscale::Error, nothing was thrown";
}

inline std::vector<uint8_t> pattern_bytes(size_t n, uint32_t seed) {
    std::vector<uint8_t> v(n);
    uint32_t x = seed * 2654435761u + 1;
    for (auto& b : v) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b = static_cast<uint8_t>(x);
    }
    return v;
}

}  // namespace microscale::io::testing
