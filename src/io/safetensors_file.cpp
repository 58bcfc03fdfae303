// SafetensorsFile: read-only mmap of one safetensors file, validated on open.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "io/safetensors.h"

namespace microscale::io {
namespace {

std::string errno_text() { return std::strerror(errno); }

uint64_t page_size() {
    static const uint64_t size = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    return size;
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
    const std::string name = path.string();
    int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(name + ": cannot open: " + errno_text());
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        const std::string why = errno_text();
        ::close(fd);
        throw Error(name + ": cannot stat: " + why);
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error(name + ": not a regular file");
    }
    SafetensorsFile f;
    f.path_ = path;
    f.size_ = static_cast<uint64_t>(st.st_size);
    if (f.size_ < 8) {
        ::close(fd);
        // parse_safetensors_header words the error; it reads nothing when size < 8.
        static const uint8_t kZero[8] = {};
        parse_safetensors_header(kZero, f.size_, name);
    }
    void* p = mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const std::string why = p == MAP_FAILED ? errno_text() : std::string();
    ::close(fd);  // the mapping keeps the file alive
    if (p == MAP_FAILED) throw Error(name + ": mmap of " + std::to_string(f.size_) + " bytes failed: " + why);
    f.map_ = static_cast<const uint8_t*>(p);
    // Weights are read front to back once: ask for aggressive readahead.
    madvise(p, f.size_, MADV_SEQUENTIAL);

    f.header_ = parse_safetensors_header(f.map_, f.size_, name);  // f's destructor unmaps on throw
    f.index_.reserve(f.header_.tensors.size());
    for (size_t i = 0; i < f.header_.tensors.size(); ++i)
        f.index_.emplace(f.header_.tensors[i].name, i);
    return f;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept
    : path_(std::move(o.path_)),
      map_(std::exchange(o.map_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      header_(std::move(o.header_)),
      index_(std::move(o.index_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& o) noexcept {
    if (this != &o) {
        if (map_) munmap(const_cast<uint8_t*>(map_), size_);
        path_ = std::move(o.path_);
        map_ = std::exchange(o.map_, nullptr);
        size_ = std::exchange(o.size_, 0);
        header_ = std::move(o.header_);
        index_ = std::move(o.index_);
    }
    return *this;
}

SafetensorsFile::~SafetensorsFile() {
    if (map_) munmap(const_cast<uint8_t*>(map_), size_);
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

std::span<const uint8_t> SafetensorsFile::bytes(const TensorInfo& info) const {
    // Guard against a TensorInfo from another file (or a stale copy).
    if (info.begin > info.end || info.end > header_.data_bytes || !map_)
        throw Error(path_.string() + ": tensor '" + info.name + "': data_offsets [" +
                    std::to_string(info.begin) + ", " + std::to_string(info.end) +
                    "] are not inside this file's data section");
    return {map_ + 8 + header_.header_bytes + info.begin, info.nbytes()};
}

void SafetensorsFile::advise(const TensorInfo& info, int advice) const {
    auto span = bytes(info);
    if (span.empty()) return;
    // Round outward to pages. Neighbouring tensors sharing an edge page lose nothing: this is a
    // clean read-only file mapping, so a dropped page is simply re-read from the page cache.
    const uint64_t ps = page_size();
    const uint64_t lo = static_cast<uint64_t>(span.data() - map_) / ps * ps;
    const uint64_t hi = std::min<uint64_t>(static_cast<uint64_t>(span.data() - map_) + span.size(), size_);
    madvise(const_cast<uint8_t*>(map_) + lo, hi - lo, advice);  // a hint: failure is harmless
}

void SafetensorsFile::prefetch(const TensorInfo& info) const { advise(info, MADV_WILLNEED); }
void SafetensorsFile::populate(const TensorInfo& info) const {
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14; older kernels answer EINVAL and the reader faults instead
#endif
    advise(info, MADV_POPULATE_READ);
}
void SafetensorsFile::release(const TensorInfo& info) const { advise(info, MADV_DONTNEED); }

}  // namespace microscale::io
