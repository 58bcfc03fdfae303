#include "pipeline/output_dir.h"

#include <fmt/core.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <system_error>

#include "microscale/error.h"

namespace microscale::pipeline {
namespace fs = std::filesystem;

namespace {
constexpr const char* kTempTag = ".microscale-tmp-";

// Hidden sibling: "<parent>/.<name>.microscale-tmp-<pid>".
fs::path temp_for(const fs::path& final_dir, long pid) {
    return final_dir.parent_path() / fmt::format(".{}{}{}", final_dir.filename().string(), kTempTag, pid);
}

void remove_stale_temporaries(const fs::path& final_dir) {
    std::error_code ec;
    const std::string prefix = "." + final_dir.filename().string() + kTempTag;
    for (const auto& e : fs::directory_iterator(final_dir.parent_path(), ec)) {
        const std::string n = e.path().filename().string();
        if (n.rfind(prefix, 0) != 0) continue;
        const long pid = std::strtol(n.c_str() + prefix.size(), nullptr, 10);
        if (pid > 0 && pid != getpid() && kill(static_cast<pid_t>(pid), 0) != 0) fs::remove_all(e.path(), ec);
    }
}

std::atomic<bool> g_interrupted{false};
struct sigaction g_old_int, g_old_term;
void on_signal(int) { g_interrupted.store(true); }
}  // namespace

OutputDir::OutputDir(fs::path final_dir, bool force, const fs::path& input_dir) : force_(force) {
    final_ = fs::absolute(final_dir).lexically_normal();
    if (final_.filename().empty()) final_ = final_.parent_path();
    std::error_code ec;
    if (fs::exists(input_dir) && fs::equivalent(final_, input_dir, ec))
        throw Error(fmt::format("output {} is the input checkpoint; refusing to overwrite the input", final_.string()));
    if (!fs::is_directory(final_.parent_path()))
        throw Error(fmt::format("output {}: parent directory {} does not exist", final_.string(),
                                final_.parent_path().string()));
    if (fs::exists(final_) && !force)
        throw Error(fmt::format("output {} already exists; pass --force to replace it", final_.string()));
    remove_stale_temporaries(final_);
    temp_ = temp_for(final_, static_cast<long>(getpid()));
    fs::remove_all(temp_, ec);
    if (!fs::create_directory(temp_, ec))
        throw Error(fmt::format("cannot create {}: {}", temp_.string(), ec.message()));
}

OutputDir::~OutputDir() {
    if (committed_) return;
    std::error_code ec;
    fs::remove_all(temp_, ec);
}

void OutputDir::commit() {
    std::error_code ec;
    fs::path backup;
    if (fs::exists(final_)) {
        if (!force_) throw Error(fmt::format("output {} appeared while writing; not replacing it", final_.string()));
        backup = temp_for(final_, static_cast<long>(getpid())).string() + "-old";
        fs::rename(final_, backup, ec);
        if (ec) throw Error(fmt::format("cannot move the previous {} aside: {}", final_.string(), ec.message()));
    }
    fs::rename(temp_, final_, ec);
    if (ec) {
        if (!backup.empty()) fs::rename(backup, final_);
        throw Error(fmt::format("cannot rename {} to {}: {}", temp_.string(), final_.string(), ec.message()));
    }
    committed_ = true;
    if (!backup.empty()) fs::remove_all(backup, ec);
}

bool interrupted() { return g_interrupted.load(); }

InterruptGuard::InterruptGuard() {
    g_interrupted.store(false);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &g_old_int);
    sigaction(SIGTERM, &sa, &g_old_term);
}

InterruptGuard::~InterruptGuard() {
    sigaction(SIGINT, &g_old_int, nullptr);
    sigaction(SIGTERM, &g_old_term, nullptr);
}

}  // namespace microscale::pipeline
