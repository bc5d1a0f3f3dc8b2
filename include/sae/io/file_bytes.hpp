// sae/io/file_bytes.hpp: the bytes of a whole file, read-only, for the
// readers of container formats (safetensors, npz) that index into them.
//
//   detail::FileBytes::map(path)        POSIX: a read-only memory map, so a
//                                       1 GiB weight file is never copied just
//                                       to be looked at; elsewhere: read whole.
//   detail::FileBytes::own(bytes)       bytes already in memory (tests, fuzzers,
//                                       archives inside archives).
//
// Errors are std::runtime_error starting with the path, like every sae reader.
//
// A mapped file must not shrink while mapped: touching a page past its new end
// raises SIGBUS, which no C++ code can turn into an exception. The weight files
// these readers are for are written once (atomically, by rename) and not
// changed in place, so this is the same trade every mmap-based loader makes.
#pragma once

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

/// A whole file's bytes, memory-mapped or owned. Move-only.
class FileBytes {
 public:
  FileBytes() = default;

  /// Maps the file at `path` read-only (reads it into memory where there is no mmap).
  static FileBytes map(const std::string& path) {
    FileBytes file;
    file.path_ = path;
#ifdef SAE_DETAIL_HAVE_MMAP
    int fd = -1;
    do {
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      const int error_number = errno;
      npy_fail(path, "cannot open for reading: " + system_error_text(error_number));
    }
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
      const int error_number = errno;
      ::close(fd);
      npy_fail(path, "cannot stat: " + system_error_text(error_number));
    }
    if (!S_ISREG(info.st_mode)) {
      ::close(fd);
      npy_fail(path, S_ISDIR(info.st_mode) ? "is a directory, not a file" : "is not a regular file");
    }
    if (static_cast<std::uintmax_t>(info.st_size) > std::numeric_limits<std::size_t>::max()) {
      ::close(fd);
      npy_fail(path, "is too large to map into this process's address space");
    }
    const auto size = static_cast<std::size_t>(info.st_size);
    if (size > 0) {  // mmap refuses a zero length; an empty file is simply empty
      void* address = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
      const int error_number = errno;
      ::close(fd);  // the mapping keeps the file open
      if (address == MAP_FAILED) npy_fail(path, "cannot memory-map: " + system_error_text(error_number));
      file.mapped_ = static_cast<const unsigned char*>(address);
      file.data_ = file.mapped_;
      file.size_ = size;
    } else {
      ::close(fd);
    }
#else
    file.owned_ = read_whole_file(path);
    file.data_ = file.owned_.data();
    file.size_ = file.owned_.size();
#endif
    return file;
  }

  /// Takes bytes held in memory; `name_for_messages` stands in for the path.
  static FileBytes own(std::vector<unsigned char> bytes, std::string name_for_messages) {
    FileBytes file;
    file.path_ = std::move(name_for_messages);
    file.owned_ = std::move(bytes);
    file.data_ = file.owned_.data();
    file.size_ = file.owned_.size();
    return file;
  }

  ~FileBytes() { release(); }

  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;

  // A moved std::vector keeps its buffer, so data_ stays valid for owned bytes too.
  FileBytes(FileBytes&& other) noexcept
      : path_(std::move(other.path_)),
        owned_(std::move(other.owned_)),
        mapped_(std::exchange(other.mapped_, nullptr)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}

  FileBytes& operator=(FileBytes&& other) noexcept {
    if (this != &other) {
      release();
      path_ = std::move(other.path_);
      owned_ = std::move(other.owned_);
      mapped_ = std::exchange(other.mapped_, nullptr);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }

  const unsigned char* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release() noexcept {
#ifdef SAE_DETAIL_HAVE_MMAP
    if (mapped_ != nullptr) ::munmap(const_cast<unsigned char*>(mapped_), size_);
#endif
    mapped_ = nullptr;
    data_ = nullptr;
    size_ = 0;
  }

  std::string path_;
  std::vector<unsigned char> owned_;
  const unsigned char* mapped_ = nullptr;  ///< set when mapped, for munmap
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace detail
}  // namespace sae
