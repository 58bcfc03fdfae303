// TempFile (atomic create-then-rename) and the streaming SafetensorsWriter.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <random>

#include "io/direct_writer.h"
#include "io/safetensors.h"

namespace microscale::io {
namespace {

constexpr size_t kBufferBytes = 1 << 20;

std::string errno_text() { return std::strerror(errno); }

std::string random_suffix() {
    std::random_device rd;
    const uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(r));
    return buf;
}

// Makes the rename itself durable.
void fsync_dir(const std::filesystem::path& dir) {
    int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;  // best effort: some filesystems do not allow opening directories
    fsync(fd);
    ::close(fd);
}

}  // namespace

TempFile::TempFile(std::filesystem::path final_path, WriteMode mode) : final_path_(std::move(final_path)) {
    if (final_path_.filename().empty())
        throw Error(final_path_.string() + ": output path has no file name");
    temp_path_ = final_path_;
    temp_path_ += ".tmp-" + std::to_string(getpid()) + "-" + random_suffix();
    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
    bool buffered = mode == WriteMode::BUFFERED;
#ifdef O_DIRECT
    // A filesystem without O_DIRECT (EINVAL; some create the file first) gets a buffered file.
    if (!buffered) {
        fd_ = ::open(temp_path_.c_str(), flags | O_DIRECT, 0644);
        direct_ = fd_ >= 0;
        if (fd_ < 0 && errno == EINVAL) {
            ::unlink(temp_path_.c_str());  // the name is ours alone (random, O_EXCL)
            buffered = true;
        }
    }
#else
    buffered = true;
#endif
    if (buffered) fd_ = ::open(temp_path_.c_str(), flags, 0644);
    if (fd_ < 0)
        throw Error(final_path_.string() + ": cannot create temporary file " +
                    temp_path_.string() + ": " + errno_text());
}

TempFile::~TempFile() { discard(); }

void TempFile::discard() noexcept {
    if (committed_) return;
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    if (!temp_path_.empty()) {
        ::unlink(temp_path_.c_str());
        temp_path_.clear();
    }
}

void TempFile::write_all(const uint8_t* data, size_t n) {
    if (fd_ < 0) throw Error(final_path_.string() + ": write after close");
    const uint64_t start = written_;
    written_ += n;
    while (n > 0) {
        const ssize_t w = ::write(fd_, data, std::min<size_t>(n, 1u << 30));
        if (w < 0) {
            if (errno == EINTR) continue;
#ifdef O_DIRECT
            // Some filesystems accept O_DIRECT at open and refuse the write (alignment rules of
            // their own): carry on buffered, same bytes.
            if (errno == EINVAL && direct_) {
                direct_ = false;
                const int fl = fcntl(fd_, F_GETFL);
                if (fl >= 0 && fcntl(fd_, F_SETFL, fl & ~O_DIRECT) == 0) continue;
            }
#endif
            throw Error(final_path_.string() + ": write to " + temp_path_.string() +
                        " failed: " + errno_text());
        }
        data += w;
        n -= static_cast<size_t>(w);
    }
    if (direct_) return;  // nothing in the page cache to write back
#ifdef __linux__
    // Start writing the new bytes back to disk now, without waiting, so the final fsync has
    // little left to do and the disk works while the next tensor is quantized. A hint only:
    // failures are ignored (fsync at commit still decides).
    ::sync_file_range(fd_, static_cast<off_t>(start), static_cast<off_t>(written_ - start), SYNC_FILE_RANGE_WRITE);
#endif
}

void TempFile::truncate(uint64_t size) {
    if (fd_ < 0) throw Error(final_path_.string() + ": truncate after close");
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
        throw Error(final_path_.string() + ": truncate of " + temp_path_.string() + " failed: " + errno_text());
    written_ = size;
}

void TempFile::sync_and_close() {
    if (fd_ < 0) return;
    if (fsync(fd_) != 0)
        throw Error(final_path_.string() + ": fsync of " + temp_path_.string() + " failed: " + errno_text());
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0)  // NFS and friends report deferred write errors here
        throw Error(final_path_.string() + ": close of " + temp_path_.string() + " failed: " + errno_text());
}

void TempFile::commit() {
    if (committed_) return;
    if (temp_path_.empty()) throw Error(final_path_.string() + ": commit after discard");
    sync_and_close();
    if (std::rename(temp_path_.c_str(), final_path_.c_str()) != 0)
        throw Error(final_path_.string() + ": rename from " + temp_path_.string() +
                    " failed: " + errno_text());
    committed_ = true;
    fsync_dir(final_path_.parent_path());
}

void write_file_atomic(const std::filesystem::path& path, std::string_view contents) {
    TempFile f(path);
    f.write_all(reinterpret_cast<const uint8_t*>(contents.data()), contents.size());
    f.commit();
}

SafetensorsWriter::SafetensorsWriter(std::filesystem::path path, std::vector<TensorDecl> tensors,
                                     Metadata metadata, WriteMode mode)
    : path_(std::move(path)), decls_(std::move(tensors)) {
    // Validate everything before creating a file.
    const std::string header = build_safetensors_header(decls_, metadata, path_.string());
    sizes_.reserve(decls_.size());
    for (const auto& d : decls_) {
        sizes_.push_back(tensor_nbytes(d, path_.string()));
        total_bytes_ += sizes_.back();
    }
    file_ = std::make_unique<TempFile>(path_, mode);
    if (file_->direct()) direct_ = std::make_unique<DirectBlockWriter>(*file_);
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(header.size() >> (8 * i));
    try {
        if (direct_) {
            direct_->append(len, 8);
            direct_->append(reinterpret_cast<const uint8_t*>(header.data()), header.size());
        } else {
            file_->write_all(len, 8);
            file_->write_all(reinterpret_cast<const uint8_t*>(header.data()), header.size());
        }
    } catch (...) {
        failed_ = true;
        drop_file();
        throw;
    }
    if (!direct_) buffer_.reserve(kBufferBytes);
}

SafetensorsWriter::~SafetensorsWriter() = default;  // an uncommitted TempFile removes itself

void SafetensorsWriter::drop_file() noexcept {
    direct_.reset();  // its thread writes to file_
    file_.reset();    // removes the temporary file
}

void SafetensorsWriter::fail(const std::string& msg) {
    failed_ = true;
    drop_file();
    throw Error(path_.string() + ": " + msg);
}

void SafetensorsWriter::check_usable(const char* op) const {
    if (failed_) throw Error(path_.string() + ": " + op + " on a writer that already failed");
    if (committed_ || finished_) throw Error(path_.string() + ": " + op + " after finish/commit");
}

void SafetensorsWriter::write(std::string_view name, std::span<const uint8_t> data) {
    check_usable("write");
    put(name, data, true);
}

void SafetensorsWriter::append(std::string_view name, std::span<const uint8_t> chunk) {
    check_usable("append");
    put(name, chunk, false);
}

void SafetensorsWriter::put(std::string_view name, std::span<const uint8_t> data, bool whole) {
    if (next_ == decls_.size())
        fail("tensor '" + std::string(name) + "': all declared tensors are already written");
    const TensorDecl& cur = decls_[next_];
    if (name != cur.name) {
        if (written_in_tensor_ > 0)
            fail("tensor '" + std::string(name) + "' written while '" + cur.name + "' is incomplete (" +
                 std::to_string(written_in_tensor_) + " of " + std::to_string(sizes_[next_]) + " bytes)");
        fail("tensor '" + std::string(name) + "' written out of order: the next declared tensor is '" +
             cur.name + "'");
    }
    const uint64_t need = sizes_[next_];
    const std::string what = "tensor '" + cur.name + "' (" + describe_shape(cur.shape) + " " +
                             std::string(dtype_name(cur.dtype)) + ", " + std::to_string(need) + " bytes)";
    if (whole && (written_in_tensor_ != 0 || data.size() != need))
        fail(what + ": write() got " + std::to_string(data.size()) + " bytes" +
             (written_in_tensor_ ? " after a partial append" : ""));
    if (data.size() > need - written_in_tensor_)
        fail(what + ": append of " + std::to_string(data.size()) + " bytes after " +
             std::to_string(written_in_tensor_) + " overruns it");

    try {
        if (direct_) {
            direct_->append(data.data(), data.size());
        } else {
            if (buffer_.size() + data.size() > kBufferBytes) flush_buffer();
            if (data.size() >= kBufferBytes) file_->write_all(data.data(), data.size());
            else buffer_.insert(buffer_.end(), data.begin(), data.end());
        }
    } catch (const Error&) {
        failed_ = true;
        drop_file();
        throw;
    }
    written_in_tensor_ += data.size();
    if (written_in_tensor_ == need) {
        ++next_;
        written_in_tensor_ = 0;
    }
}

void SafetensorsWriter::flush_buffer() {
    if (buffer_.empty()) return;
    file_->write_all(buffer_.data(), buffer_.size());
    buffer_.clear();
}

void SafetensorsWriter::finish() {
    if (finished_) return;
    check_usable("finish");
    if (next_ != decls_.size()) {
        const TensorDecl& cur = decls_[next_];
        fail("finish with tensor '" + cur.name + "' incomplete (" + std::to_string(written_in_tensor_) +
             " of " + std::to_string(sizes_[next_]) + " bytes); " +
             std::to_string(decls_.size() - next_) + " of " + std::to_string(decls_.size()) +
             " tensors not fully written");
    }
    try {
        if (direct_) direct_->finish();
        else flush_buffer();
        file_->sync_and_close();
    } catch (const Error&) {
        failed_ = true;
        drop_file();
        throw;
    }
    finished_ = true;
}

void SafetensorsWriter::commit() {
    if (committed_) return;
    finish();
    try {
        file_->commit();
    } catch (const Error&) {
        failed_ = true;
        drop_file();
        throw;
    }
    committed_ = true;
}

}  // namespace microscale::io
