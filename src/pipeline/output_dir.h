// An output directory that appears atomically: everything is written into a hidden temporary
// sibling, and commit() renames it into place (replacing a previous output only with force).
// A crash or an interrupt leaves either no output or the previous one (DESIGN.md "Nothing lost").
#pragma once

#include <filesystem>

namespace microscale::pipeline {

class OutputDir {
public:
    // Throws microscale::Error if final exists and !force, if its parent does not exist, or if
    // final is the input directory. Removes stale temporaries of dead earlier runs.
    OutputDir(std::filesystem::path final_dir, bool force, const std::filesystem::path& input_dir);
    OutputDir(const OutputDir&) = delete;
    OutputDir& operator=(const OutputDir&) = delete;
    ~OutputDir();  // removes the temporary unless committed

    const std::filesystem::path& temp() const { return temp_; }
    const std::filesystem::path& final_path() const { return final_; }
    void commit();

private:
    std::filesystem::path final_, temp_;
    bool force_ = false, committed_ = false;
};

// Set by SIGINT/SIGTERM while a long job runs; the job checks it between tensors and stops
// with an error so that the destructors above clean up.
bool interrupted();
class InterruptGuard {
public:
    InterruptGuard();
    ~InterruptGuard();
};

}  // namespace microscale::pipeline
