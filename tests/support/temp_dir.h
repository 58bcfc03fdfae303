// A fresh temporary directory per test, removed with everything in it at scope exit.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>

namespace microscale::test {

struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& tag = "ms-test") {
        path = std::filesystem::temp_directory_path() /
               (tag + "-" + std::to_string(getpid()) + "-" + std::to_string(std::random_device{}()));
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

}  // namespace microscale::test
