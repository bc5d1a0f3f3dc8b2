// sae/io/mapped_file.hpp: a whole file's bytes, read-only, memory-mapped.
//
//   detail::MappedFile file(path);      POSIX: a read-only memory map, so a
//                                       1 GiB file is never copied just to be
//                                       looked at; elsewhere: the file read whole.
//   file.will_need / dont_need / sequential
//                                       advice to the kernel about what is read
//                                       next; no-ops where there is no mmap.
//
// Shared by the container readers (FileBytes: safetensors, npz) and the
// streaming .npy readers (NpyFileSource, NpyRows). Every error is a
// std::runtime_error starting with the path, like every sae reader.
//
// A mapped file must not shrink while mapped: touching a page past its new end
// raises SIGBUS, which no C++ code can turn into an exception. The files these
// readers are for are written once (atomically, by rename) and not changed in
// place, so this is the same trade every mmap-based loader makes.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "npy.hpp"  // detail::npy_fail, system_error_text, read_whole_file

#if defined(__unix__) || defined(__APPLE__)
#define SAE_DETAIL_HAVE_MMAP 1
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace sae {
namespace detail {

/// A read-only view of a whole file. Move-only; unmaps on destruction.
class MappedFile {
 public:
  MappedFile() = default;

  explicit MappedFile(const std::string& path) : path_(path) {
#ifdef SAE_DETAIL_HAVE_MMAP
    map();
#else
    whole_file_ = read_whole_file(path);
    data_ = whole_file_.data();
    size_ = whole_file_.size();
#endif
  }

  ~MappedFile() { release(); }

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // A moved std::vector keeps its buffer, so data_ stays valid without mmap too.
  MappedFile(MappedFile&& other) noexcept
      : path_(std::move(other.path_)),
        whole_file_(std::move(other.whole_file_)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}

  MappedFile& operator=(MappedFile&& other) noexcept {
    if (this != &other) {
      release();
      path_ = std::move(other.path_);
      whole_file_ = std::move(other.whole_file_);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }

  /// will_need advises at most this many bytes per call (Linux's default readahead window).
  static constexpr std::size_t will_need_piece_bytes = std::size_t{128} << 10;

  const unsigned char* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Advice to the kernel about bytes [offset, offset + length): best effort,
  // ignored where unsupported, and never changes what the bytes read as.

  /// Start reading these pages now, without waiting for them. Linux reads at
  /// most its readahead window (read_ahead_kb, often 128 KiB) per call, so the
  /// range is advised in pieces of that size: every piece's reads are queued
  /// at once, where faulting the pages in would read one window at a time.
  void will_need(std::size_t offset, std::size_t length) const {
#ifdef MADV_WILLNEED
    const std::size_t end = std::min(size_, offset + std::min(length, size_));
    for (std::size_t piece = offset; piece < end; piece += will_need_piece_bytes)
      advise(piece, std::min(will_need_piece_bytes, end - piece), MADV_WILLNEED);
#else
    (void)offset, (void)length;
#endif
  }

  /// Drop these pages from this process (they were copied out), so resident
  /// memory stays bounded by the buffer, not the file. The page cache may keep
  /// them; the kernel reclaims that as it needs.
  void dont_need(std::size_t offset, std::size_t length) const {
#ifdef MADV_DONTNEED
    advise(offset, length, MADV_DONTNEED);
#else
    (void)offset, (void)length;
#endif
  }

  /// The whole file will be read from start to end.
  void sequential() const {
#ifdef MADV_SEQUENTIAL
    advise(0, size_, MADV_SEQUENTIAL);
#endif
  }

 private:
#ifdef SAE_DETAIL_HAVE_MMAP
  void map() {
    int fd = -1;
    do {
      fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      const int error_number = errno;
      fail_with_errno("cannot open for reading", error_number);
    }

    struct stat info {};
    if (::fstat(fd, &info) != 0) {
      const int error_number = errno;
      ::close(fd);
      fail_with_errno("cannot stat", error_number);
    }
    if (!S_ISREG(info.st_mode)) {
      ::close(fd);
      npy_fail(path_, S_ISDIR(info.st_mode) ? "is a directory, not a file" : "is not a regular file");
    }
    if (static_cast<std::uintmax_t>(info.st_size) > std::numeric_limits<std::size_t>::max()) {
      ::close(fd);
      npy_fail(path_, "is too large to map into this process's address space");
    }
    const auto size = static_cast<std::size_t>(info.st_size);
    if (size == 0) {  // mmap refuses a zero length; an empty file is simply empty
      ::close(fd);
      return;
    }
    void* address = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    const int error_number = errno;
    ::close(fd);  // the mapping keeps the file open
    if (address == MAP_FAILED) fail_with_errno("cannot memory-map", error_number);
    data_ = static_cast<const unsigned char*>(address);
    size_ = size;
  }

  void advise(std::size_t offset, std::size_t length, int advice) const {
    if (data_ == nullptr || length == 0 || offset >= size_) return;
    static const std::size_t page_size = [] {
      const long size = ::sysconf(_SC_PAGESIZE);
      return size > 0 ? static_cast<std::size_t>(size) : std::size_t{4096};
    }();
    // madvise wants a page-aligned start; widening the range is harmless for
    // a read-only mapping (a dropped page is simply read again if needed).
    const std::size_t start = offset / page_size * page_size;
    const std::size_t end = std::min(size_, offset + length);
    ::madvise(const_cast<unsigned char*>(data_) + start, end - start, advice);
  }

  [[noreturn]] void fail_with_errno(const std::string& what, int error_number) const {
    npy_fail(path_, what + ": " + system_error_text(error_number));
  }
#endif

  void release() noexcept {
#ifdef SAE_DETAIL_HAVE_MMAP
    if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), size_);
#endif
    data_ = nullptr;
    size_ = 0;
  }

  std::string path_;
  std::vector<unsigned char> whole_file_;  ///< the bytes, where there is no mmap
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace detail
}  // namespace sae
