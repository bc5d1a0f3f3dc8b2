// sae/io/file_bytes.hpp: the bytes of a whole file, read-only, for the
// readers of container formats (safetensors, npz) that index into them.
//
//   detail::FileBytes::map(path)        a MappedFile (mapped_file.hpp): a memory
//                                       map where there is mmap, else read whole.
//   detail::FileBytes::own(bytes)       bytes already in memory (tests, fuzzers,
//                                       archives inside archives).
//
// Errors are std::runtime_error starting with the path, like every sae reader.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "mapped_file.hpp"

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
    file.mapped_ = MappedFile(path);
    return file;
  }

  /// Takes bytes held in memory; `name_for_messages` stands in for the path.
  static FileBytes own(std::vector<unsigned char> bytes, std::string name_for_messages) {
    FileBytes file;
    file.path_ = std::move(name_for_messages);
    file.owned_ = std::move(bytes);
    return file;
  }

  // Only one of the two holds bytes; an empty file reads as empty either way.
  const unsigned char* data() const { return owned_.empty() ? mapped_.data() : owned_.data(); }
  std::size_t size() const { return owned_.empty() ? mapped_.size() : owned_.size(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  MappedFile mapped_;                 ///< from map()
  std::vector<unsigned char> owned_;  ///< from own()
};

}  // namespace detail
}  // namespace sae
