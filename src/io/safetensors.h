// safetensors: header parser (usable on a plain buffer, for the fuzzer), mmap'd reader and a
// streaming, atomic writer. Every file is hostile: every length, offset and product is checked
// before use and every failure is a microscale::Error naming the file and the tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "microscale/dtype.h"
#include "microscale/error.h"

namespace microscale::io {

// Largest header we accept (the reference implementation uses the same 100 MiB cap).
inline constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

using Metadata = std::map<std::string, std::string>;

struct TensorInfo {
    std::string name;
    DType dtype = DType::U8;
    std::vector<int64_t> shape;
    uint64_t begin = 0;  // offsets relative to the data section (after the header)
    uint64_t end = 0;

    uint64_t nbytes() const { return end - begin; }
    uint64_t numel() const;  // product of shape; fits because it was validated against nbytes
};

struct SafetensorsHeader {
    std::vector<TensorInfo> tensors;  // in data order (sorted by offset)
    Metadata metadata;                // "__metadata__", string -> string
    uint64_t header_bytes = 0;        // N, the JSON length (data starts at 8 + N)
    uint64_t data_bytes = 0;          // file_size - 8 - N
};

// Parses and validates the header of a safetensors file held in `data` (at least the first
// min(file_size, 8 + N) bytes must be readable; only the header is read). `filename` is used in
// error messages only.
SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t file_size,
                                           const std::string& filename);

// "shape [4096, 11008] (F32)" style description for error messages.
std::string describe_shape(const std::vector<int64_t>& shape);

// A tensor to be written: the caller declares all of them before any data.
struct TensorDecl {
    std::string name;
    DType dtype = DType::U8;
    std::vector<int64_t> shape;
};

// Bytes of a declared tensor, overflow-checked; throws naming `context` and the tensor.
uint64_t tensor_nbytes(const TensorDecl& decl, const std::string& context);

// The header bytes (JSON, space-padded so that 8 + N is a multiple of 8) for tensors laid out
// contiguously in declaration order, without the 8-byte length prefix. Validates the
// declarations (unique, non-empty names, not "__metadata__", non-negative dims, valid UTF-8).
std::string build_safetensors_header(const std::vector<TensorDecl>& tensors,
                                     const Metadata& metadata, const std::string& context);

// A read-only mmap of one safetensors file, parsed and validated on open.
class SafetensorsFile {
public:
    static SafetensorsFile open(const std::filesystem::path& path);

    SafetensorsFile(SafetensorsFile&& other) noexcept;
    SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;
    ~SafetensorsFile();

    const std::filesystem::path& path() const { return path_; }
    const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
    const Metadata& metadata() const { return header_.metadata; }
    uint64_t file_size() const { return size_; }
    // nullptr when absent.
    const TensorInfo* find(std::string_view name) const;
    // The tensor's bytes inside the mapping (no copy). Valid while this object lives.
    std::span<const uint8_t> bytes(const TensorInfo& info) const;

    // Page hints. `release` drops the tensor's pages from this process (MADV_DONTNEED; they are
    // re-read from the page cache if touched again), so a streaming pass keeps RSS flat.
    // `populate` maps the pages in now (MADV_POPULATE_READ, reading them if needed), so whoever
    // reads the tensor next takes no page faults; it blocks, so call it off the hot threads.
    void prefetch(const TensorInfo& info) const;
    void populate(const TensorInfo& info) const;
    void release(const TensorInfo& info) const;

private:
    SafetensorsFile() = default;
    void advise(const TensorInfo& info, int advice) const;

    std::filesystem::path path_;
    const uint8_t* map_ = nullptr;
    uint64_t size_ = 0;
    SafetensorsHeader header_;
    std::unordered_map<std::string, size_t> index_;  // name -> position in header_.tensors
};

// A file created as `<path>.tmp-<pid>-<random>` in the destination's directory and renamed over
// `path` by commit(); removed when destroyed uncommitted.
// How file data reaches the disk. BUFFERED: write() into the page cache, writeback started as
// data arrives. DIRECT: O_DIRECT writes of aligned staging blocks, which skip the page-cache copy
// (the CPU cost that dominated writing a quantized checkpoint); where the filesystem refuses
// O_DIRECT the file silently falls back to BUFFERED. The bytes on disk are the same.
enum class WriteMode : uint8_t { BUFFERED, DIRECT };

// Alignment of O_DIRECT buffers, offsets and lengths: the largest logical block size in use.
inline constexpr size_t kDirectAlign = 4096;

class TempFile {
public:
    explicit TempFile(std::filesystem::path final_path, WriteMode mode = WriteMode::BUFFERED);
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile();

    const std::filesystem::path& temp_path() const { return temp_path_; }
    const std::filesystem::path& final_path() const { return final_path_; }
    // In DIRECT mode data, n and the file position must be multiples of kDirectAlign.
    void write_all(const uint8_t* data, size_t n);
    void truncate(uint64_t size);  // drops the padding of the last DIRECT block
    bool direct() const { return direct_; }
    void sync_and_close();  // fsync + close; the file stays under its temporary name
    void commit();          // sync_and_close if needed, rename, fsync the directory
    void discard() noexcept;

private:
    std::filesystem::path final_path_;
    std::filesystem::path temp_path_;
    int fd_ = -1;
    uint64_t written_ = 0;  // bytes written so far (for the writeback hint)
    bool direct_ = false;   // O_DIRECT is on (it may be dropped at the first write)
    bool committed_ = false;
};

// Writes `contents` to `path` atomically (temp file, fsync, rename).
void write_file_atomic(const std::filesystem::path& path, std::string_view contents);

// Streaming writer. All tensors are declared up front; the header is written at construction and
// data must follow in declared order, either whole (`write`) or in chunks (`append`). Any error
// poisons the writer and removes the temporary file; so does destruction without commit().
class DirectBlockWriter;

class SafetensorsWriter {
public:
    SafetensorsWriter(std::filesystem::path path, std::vector<TensorDecl> tensors,
                      Metadata metadata = {}, WriteMode mode = WriteMode::BUFFERED);
    SafetensorsWriter(const SafetensorsWriter&) = delete;
    SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;
    ~SafetensorsWriter();

    // The whole tensor at once: `name` must be the next tensor, not yet started, and
    // `data.size()` its declared byte count.
    void write(std::string_view name, std::span<const uint8_t> data);
    // A chunk of `name`, which must be the tensor in progress or the next one; the chunk must not
    // run past the tensor's declared size.
    void append(std::string_view name, std::span<const uint8_t> chunk);

    // Checks every tensor is complete, flushes and fsyncs; the file keeps its temporary name.
    void finish();
    // finish() if needed, then renames into place and fsyncs the directory.
    void commit();

    const std::filesystem::path& path() const { return path_; }
    const std::vector<TensorDecl>& tensors() const { return decls_; }
    uint64_t data_bytes() const { return total_bytes_; }
    bool done() const { return next_ == decls_.size(); }

private:
    void check_usable(const char* op) const;
    void put(std::string_view name, std::span<const uint8_t> data, bool whole);
    void flush_buffer();
    void drop_file() noexcept;  // abandons the temporary file (the DIRECT thread first)
    [[noreturn]] void fail(const std::string& msg);

    std::filesystem::path path_;
    std::vector<TensorDecl> decls_;
    std::vector<uint64_t> sizes_;
    std::unique_ptr<TempFile> file_;
    std::vector<uint8_t> buffer_;  // BUFFERED: coalesces small writes
    std::unique_ptr<DirectBlockWriter> direct_;  // DIRECT mode (declared after file_: goes first)
    size_t next_ = 0;              // index of the tensor being written
    uint64_t written_in_tensor_ = 0;
    uint64_t total_bytes_ = 0;
    bool finished_ = false;
    bool failed_ = false;
    bool committed_ = false;
};

}  // namespace microscale::io
