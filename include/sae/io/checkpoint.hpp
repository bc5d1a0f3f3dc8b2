// sae/io/checkpoint.hpp: training checkpoints, one binary file of named entries.
//
// A checkpoint holds what the trainer needs to resume: tensors (the model's
// parameters, the Adam moments), integer state (step counts, RNG words),
// doubles (schedule values) and short strings (recipe, architecture, a
// config echo).
//
//   CheckpointWriter w;
//   w.put("W_enc", p.W_enc);                  // float/double matrix, vector or array
//   w.put_u64s("step", {step});
//   w.put_double("lr", lr);
//   w.put_string("recipe", "standard");
//   w.write("run/checkpoint.sae");            // atomic: the old file or the new one, never a mix
//
//   CheckpointReader r("run/checkpoint.sae"); // reads and validates the whole file
//   r.read_into("W_enc", p.W_enc);            // shape-checked; any storage order
//   auto step = r.u64s("step").at(0);
//
// Writing is atomic and durable (POSIX): the bytes go to a temporary file
// "<path>.tmp.<random>" in the same directory, which is fsync'ed, closed,
// renamed over <path>, and then the directory is fsync'ed. A crash or error
// at any point leaves either the previous file at <path> or the complete new
// one. On an error the temporary file is removed; after a real crash (power
// loss, SIGKILL) a "<path>.tmp.*" file may remain: readers of <path> never
// look at it, the next write does not reuse its name, and it may be deleted.
//
// File format, version 1. Every integer is little-endian; the reader and
// writer assemble bytes explicitly, so the file is the same on any host.
//
//   offset  size  field
//   0       8     magic: 0x89 'S' 'A' 'E' 'C' 'K' 'P' 'T'
//   8       4     u32 format version = 1
//   12      4     u32 flags = 0 (reserved; a reader refuses anything else)
//   16      8     u64 file size in bytes, trailer included
//   24      8     u64 entry count
//   32      ...   the entries, one after another:
//                   u32  name length n, 1 <= n <= 4096
//                   n    name bytes (any bytes; names are unique in a file)
//                   u8   kind:  1 tensor, 2 u64 array, 3 double scalar, 4 string
//                   u8   dtype: 1 f32, 2 f64, 3 u64, 4 u8
//                   u64  rows
//                   u64  cols
//                   rows * cols elements of dtype, row-major (logical order:
//                   element (r, c) is number r * cols + c, whatever the
//                   storage order of the Eigen object that was saved)
//                 allowed: tensor f32 or f64, any shape; u64 array u64, cols 1;
//                 double f64, 1 x 1; string u8 (the bytes), cols 1
//   size-4  4     u32 CRC-32 (IEEE 802.3, as zlib.crc32) of bytes [0, size-4)
//
// Floats are stored as their IEEE bits: NaN payloads, -0 and infinities
// round-trip exactly, so a resumed run can reproduce the original bit for bit.
// A vector is stored with its Eigen shape (a column vector of length N is
// N x 1, a row vector 1 x N).
//
// The reader trusts nothing in the file: it checks magic, version, the size
// field against the real size, the checksum, then every entry (name length,
// kind, dtype, shape product without overflow, byte counts inside the file,
// unique names, nothing after the last entry). Every problem is a
// std::runtime_error whose message starts with the path, e.g.
// "run/checkpoint.sae: checksum mismatch ...".
#pragma once

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "crc32.hpp"
#include "little_endian.hpp"
#include "npy.hpp"  // detail::unique_temp_suffix, system_error_text, quote_bytes, bit_cast

// Define SAE_CHECKPOINT_PORTABLE_IO to write through std::ofstream without
// fsync (the default where POSIX is not available, e.g. Windows): still
// write-then-rename, but not durable across a power loss.
#if !defined(SAE_CHECKPOINT_PORTABLE_IO) && !(defined(__unix__) || defined(__APPLE__))
#define SAE_CHECKPOINT_PORTABLE_IO
#endif

#ifndef SAE_CHECKPOINT_PORTABLE_IO
#include <fcntl.h>
#include <unistd.h>
#endif

namespace sae {

/// What an entry of a checkpoint holds.
enum class CheckpointKind : std::uint8_t { Tensor = 1, U64Array = 2, Double = 3, String = 4 };

/// How an entry's elements are encoded.
enum class CheckpointDtype : std::uint8_t { F32 = 1, F64 = 2, U64 = 3, U8 = 4 };

/// One entry as the file's table describes it.
struct CheckpointEntryInfo {
  std::string name;
  CheckpointKind kind = CheckpointKind::Tensor;
  CheckpointDtype dtype = CheckpointDtype::F32;
  std::uint64_t rows = 0;
  std::uint64_t cols = 0;
};

namespace detail {

// ---------------------------------------------------------------------------
// Format constants

inline constexpr unsigned char checkpoint_magic[8] = {0x89, 'S', 'A', 'E', 'C', 'K', 'P', 'T'};
inline constexpr std::uint32_t checkpoint_version = 1;
inline constexpr std::size_t checkpoint_header_size = 32;
inline constexpr std::size_t checkpoint_trailer_size = 4;
inline constexpr std::size_t checkpoint_max_name_length = 4096;
/// name length + kind + dtype + rows + cols, with an empty name.
inline constexpr std::size_t checkpoint_entry_fixed_size = 4 + 1 + 1 + 8 + 8;

[[noreturn]] inline void checkpoint_fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

inline const char* checkpoint_kind_name(CheckpointKind kind) {
  switch (kind) {
    case CheckpointKind::Tensor: return "tensor";
    case CheckpointKind::U64Array: return "u64 array";
    case CheckpointKind::Double: return "double";
    case CheckpointKind::String: return "string";
  }
  return "unknown kind";
}

inline const char* checkpoint_dtype_name(CheckpointDtype dtype) {
  switch (dtype) {
    case CheckpointDtype::F32: return "f32";
    case CheckpointDtype::F64: return "f64";
    case CheckpointDtype::U64: return "u64";
    case CheckpointDtype::U8: return "u8";
  }
  return "unknown dtype";
}

inline std::size_t checkpoint_item_size(CheckpointDtype dtype) {
  switch (dtype) {
    case CheckpointDtype::F32: return 4;
    case CheckpointDtype::F64: return 8;
    case CheckpointDtype::U64: return 8;
    case CheckpointDtype::U8: return 1;
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Writing the temporary file

/// Test hook state: how many more bytes may be written before a simulated crash.
struct CheckpointWriteBudget {
  bool limited = false;
  std::uint64_t remaining = 0;
};

#ifndef SAE_CHECKPOINT_PORTABLE_IO

/// A temporary file written with POSIX calls so it can be fsync'ed.
class CheckpointTempFile {
 public:
  CheckpointTempFile(const std::string& temp_path, const std::string& path) : temp_path_(temp_path), path_(path) {
    fd_ = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0) {
      const int error_number = errno;
      checkpoint_fail(path, "cannot create the temporary file " + temp_path + ": " + system_error_text(error_number));
    }
  }
  CheckpointTempFile(const CheckpointTempFile&) = delete;
  CheckpointTempFile& operator=(const CheckpointTempFile&) = delete;
  ~CheckpointTempFile() {
    if (fd_ >= 0) ::close(fd_);
  }

  void write(const unsigned char* bytes, std::size_t size) {
    while (size > 0) {
      const std::size_t chunk = std::min<std::size_t>(size, std::size_t{1} << 30);
      const ::ssize_t written = ::write(fd_, bytes, chunk);
      if (written < 0) {
        const int error_number = errno;
        if (error_number == EINTR) continue;
        checkpoint_fail(path_, "writing the temporary file " + temp_path_ + " failed: " +
                                   system_error_text(error_number));
      }
      if (written == 0) checkpoint_fail(path_, "writing the temporary file " + temp_path_ + " made no progress");
      bytes += written;
      size -= static_cast<std::size_t>(written);
    }
  }

  /// Flushes the data to the device and closes the file.
  void sync_and_close() {
    if (::fsync(fd_) != 0) {
      const int error_number = errno;
      checkpoint_fail(path_, "fsync of the temporary file " + temp_path_ + " failed: " +
                                 system_error_text(error_number));
    }
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0 && errno != EINTR) {  // after EINTR Linux has closed it; fsync already succeeded
      const int error_number = errno;
      checkpoint_fail(path_, "closing the temporary file " + temp_path_ + " failed: " +
                                 system_error_text(error_number));
    }
  }

 private:
  std::string temp_path_;
  std::string path_;
  int fd_ = -1;
};

/// Makes the rename of `path` durable: fsync of the directory that holds it.
inline void sync_parent_directory(const std::string& path) {
  std::string directory = std::filesystem::path(path).parent_path().string();
  if (directory.empty()) directory = ".";
  const auto fail = [&](const char* what, int error_number) {
    checkpoint_fail(path, std::string("the new checkpoint is in place, but ") + what + " " + directory +
                              " failed, so it may not survive a power loss: " + system_error_text(error_number));
  };
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("opening its directory", errno);
  const int result = ::fsync(fd);
  const int error_number = errno;
  ::close(fd);
  // EINVAL: this file system cannot sync a directory (nothing more to do).
  if (result != 0 && error_number != EINVAL) fail("fsync of its directory", error_number);
}

#else  // SAE_CHECKPOINT_PORTABLE_IO

/// A temporary file written through std::ofstream (no fsync available).
class CheckpointTempFile {
 public:
  CheckpointTempFile(const std::string& temp_path, const std::string& path)
      : out_(temp_path, std::ios::binary | std::ios::trunc), temp_path_(temp_path), path_(path) {
    if (!out_) {
      const int error_number = errno;
      checkpoint_fail(path, "cannot create the temporary file " + temp_path + ": " + system_error_text(error_number));
    }
  }

  void write(const unsigned char* bytes, std::size_t size) {
    out_.write(reinterpret_cast<const char*>(bytes), static_cast<std::streamsize>(size));
    if (!out_) checkpoint_fail(path_, "writing the temporary file " + temp_path_ + " failed (disk full?)");
  }

  void sync_and_close() {
    out_.flush();
    if (!out_) checkpoint_fail(path_, "writing the temporary file " + temp_path_ + " failed (disk full?)");
    out_.close();
    if (out_.fail()) checkpoint_fail(path_, "closing the temporary file " + temp_path_ + " failed (disk full?)");
  }

 private:
  std::ofstream out_;
  std::string temp_path_;
  std::string path_;
};

inline void sync_parent_directory(const std::string&) {}

#endif  // SAE_CHECKPOINT_PORTABLE_IO

/// Writes `bytes`, or only as many as the budget allows and then throws.
inline void write_with_budget(CheckpointTempFile& file, const unsigned char* bytes, std::size_t size,
                              CheckpointWriteBudget& budget, const std::string& path) {
  if (!budget.limited || budget.remaining >= size) {
    file.write(bytes, size);
    if (budget.limited) budget.remaining -= size;
    return;
  }
  file.write(bytes, static_cast<std::size_t>(budget.remaining));
  budget.remaining = 0;
  checkpoint_fail(path, "simulated crash while writing (test hook)");
}

}  // namespace detail

// ---------------------------------------------------------------------------

/// Collects named entries in memory, then writes them as one checkpoint file.
///
/// Each `put` copies (and encodes) the data at once, so the objects may change
/// or go away before `write`; the file lists the entries in the order of the
/// puts. Names are unique, 1 to 4096 bytes.
class CheckpointWriter {
 public:
  /// Test-only: how `write_with_simulated_crash` fails.
  struct SimulatedCrash {
    /// Bytes written to the temporary file before the failure; at or beyond
    /// the file's size, the failure comes after the last byte, before
    /// fsync and rename.
    std::uint64_t after_bytes = 0;
    /// Leave the temporary file behind, as a killed process would.
    bool skip_cleanup = false;
  };

  /// A float or double matrix, vector or array (any expression), stored as
  /// dtype + [rows, cols] + the values in logical row-major order.
  /// Throws std::invalid_argument for an empty, too long or repeated name.
  template <typename Derived>
  void put(const std::string& name, const Eigen::DenseBase<Derived>& values) {
    using Scalar = typename Derived::Scalar;
    static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>,
                  "CheckpointWriter::put stores float or double tensors: convert first, e.g. "
                  "put(name, m.template cast<double>())");
    constexpr bool direct = (static_cast<unsigned>(Derived::Flags) & Eigen::DirectAccessBit) != 0;
    if constexpr (direct) {
      put_tensor(name, values.derived());
    } else {
      const typename Derived::PlainObject evaluated = values.derived();
      put_tensor(name, evaluated);
    }
  }

  /// Integers (step counts, RNG words), stored as an N x 1 u64 array.
  void put_u64s(const std::string& name, const std::vector<std::uint64_t>& values) {
    unsigned char* out = begin_entry(name, CheckpointKind::U64Array, CheckpointDtype::U64, values.size(), 1);
    for (const std::uint64_t value : values) {
      detail::store_u64_le(out, value);
      out += 8;
    }
  }

  /// One double (a schedule value), its IEEE bits kept exactly.
  void put_double(const std::string& name, double value) {
    unsigned char* out = begin_entry(name, CheckpointKind::Double, CheckpointDtype::F64, 1, 1);
    detail::store_u64_le(out, detail::bit_cast<std::uint64_t>(value));
  }

  /// A string's bytes (any bytes, NUL included), stored as an N x 1 u8 array.
  void put_string(const std::string& name, const std::string& value) {
    unsigned char* out = begin_entry(name, CheckpointKind::String, CheckpointDtype::U8, value.size(), 1);
    if (!value.empty()) std::memcpy(out, value.data(), value.size());
  }

  bool has(const std::string& name) const { return names_.count(name) != 0; }
  std::size_t size() const { return entry_count_; }

  /// The complete file, exactly as `write` puts it on disk.
  std::vector<unsigned char> to_bytes() const {
    const std::array<unsigned char, detail::checkpoint_header_size> header = make_header();
    std::vector<unsigned char> bytes;
    bytes.reserve(header.size() + body_.size() + detail::checkpoint_trailer_size);
    bytes.insert(bytes.end(), header.begin(), header.end());
    bytes.insert(bytes.end(), body_.begin(), body_.end());
    const std::array<unsigned char, detail::checkpoint_trailer_size> trailer = make_trailer(header);
    bytes.insert(bytes.end(), trailer.begin(), trailer.end());
    return bytes;
  }

  /// Writes the checkpoint to `path` atomically (see the top of this file):
  /// temporary file, fsync, rename over `path`, fsync of the directory.
  /// On failure the temporary file is removed and std::runtime_error names
  /// `path`; `path` then still holds its previous contents, except when only
  /// the final directory fsync fails (the message says so).
  void write(const std::string& path) const {
    detail::CheckpointWriteBudget unlimited;
    write_impl(path, unlimited, false);
  }

  /// TEST ONLY: like `write`, but fails (throws std::runtime_error) after
  /// `crash.after_bytes` bytes of the temporary file are written, before the
  /// fsync and rename. With `skip_cleanup` the temporary file is left behind.
  void write_with_simulated_crash(const std::string& path, const SimulatedCrash& crash) const {
    detail::CheckpointWriteBudget budget;
    budget.limited = true;
    budget.remaining = crash.after_bytes;
    write_impl(path, budget, crash.skip_cleanup);
  }

 private:
  template <typename Plain>
  void put_tensor(const std::string& name, const Plain& values) {
    using Scalar = typename Plain::Scalar;
    constexpr bool is_float = std::is_same_v<Scalar, float>;
    const auto rows = static_cast<std::uint64_t>(values.rows());
    const auto cols = static_cast<std::uint64_t>(values.cols());
    unsigned char* out =
        begin_entry(name, CheckpointKind::Tensor, is_float ? CheckpointDtype::F32 : CheckpointDtype::F64, rows, cols);
    for (Index r = 0; r < values.rows(); ++r) {
      for (Index c = 0; c < values.cols(); ++c) {
        const Scalar value = values.coeff(r, c);
        if constexpr (is_float) {
          detail::store_u32_le(out, detail::bit_cast<std::uint32_t>(value));
          out += 4;
        } else {
          detail::store_u64_le(out, detail::bit_cast<std::uint64_t>(value));
          out += 8;
        }
      }
    }
  }

  /// Appends the entry's description and room for its data; returns where the data goes.
  unsigned char* begin_entry(const std::string& name, CheckpointKind kind, CheckpointDtype dtype, std::uint64_t rows,
                             std::uint64_t cols) {
    if (name.empty()) throw std::invalid_argument("CheckpointWriter: an entry name must not be empty");
    if (name.size() > detail::checkpoint_max_name_length) {
      throw std::invalid_argument("CheckpointWriter: entry name " + detail::quote_bytes(name) + " is " +
                                  std::to_string(name.size()) + " bytes long; the limit is " +
                                  std::to_string(detail::checkpoint_max_name_length));
    }
    if (names_.count(name) != 0) {
      throw std::invalid_argument("CheckpointWriter: duplicate entry name " + detail::quote_bytes(name));
    }
    // rows * cols elements already exist in memory, so this cannot overflow.
    const std::size_t data_bytes =
        static_cast<std::size_t>(rows * cols) * detail::checkpoint_item_size(dtype);
    const std::size_t start = body_.size();
    names_.insert(name);
    try {
      body_.resize(start + detail::checkpoint_entry_fixed_size + name.size() + data_bytes);
    } catch (...) {
      names_.erase(name);
      throw;
    }
    unsigned char* out = body_.data() + start;
    detail::store_u32_le(out, static_cast<std::uint32_t>(name.size()));
    out += 4;
    std::memcpy(out, name.data(), name.size());
    out += name.size();
    *out++ = static_cast<unsigned char>(kind);
    *out++ = static_cast<unsigned char>(dtype);
    detail::store_u64_le(out, rows);
    detail::store_u64_le(out + 8, cols);
    out += 16;
    ++entry_count_;
    return out;
  }

  std::uint64_t file_size() const {
    return detail::checkpoint_header_size + body_.size() + detail::checkpoint_trailer_size;
  }

  std::array<unsigned char, detail::checkpoint_header_size> make_header() const {
    std::array<unsigned char, detail::checkpoint_header_size> header{};
    std::memcpy(header.data(), detail::checkpoint_magic, sizeof detail::checkpoint_magic);
    detail::store_u32_le(header.data() + 8, detail::checkpoint_version);
    detail::store_u32_le(header.data() + 12, 0);  // flags
    detail::store_u64_le(header.data() + 16, file_size());
    detail::store_u64_le(header.data() + 24, entry_count_);
    return header;
  }

  std::array<unsigned char, detail::checkpoint_trailer_size> make_trailer(
      const std::array<unsigned char, detail::checkpoint_header_size>& header) const {
    std::uint32_t crc = detail::crc32(header.data(), header.size());
    crc = detail::crc32_update(crc, body_.data(), body_.size());
    std::array<unsigned char, detail::checkpoint_trailer_size> trailer{};
    detail::store_u32_le(trailer.data(), crc);
    return trailer;
  }

  void write_impl(const std::string& path, detail::CheckpointWriteBudget& budget, bool skip_cleanup) const {
    if (path.empty()) throw std::runtime_error("CheckpointWriter::write: the path is empty");
    const std::array<unsigned char, detail::checkpoint_header_size> header = make_header();
    const std::array<unsigned char, detail::checkpoint_trailer_size> trailer = make_trailer(header);

    const std::string temp_path = path + ".tmp." + detail::unique_temp_suffix();
    bool created = false;
    try {
      detail::CheckpointTempFile file(temp_path, path);
      created = true;
      detail::write_with_budget(file, header.data(), header.size(), budget, path);
      detail::write_with_budget(file, body_.data(), body_.size(), budget, path);
      detail::write_with_budget(file, trailer.data(), trailer.size(), budget, path);
      if (budget.limited) detail::checkpoint_fail(path, "simulated crash before fsync and rename (test hook)");
      file.sync_and_close();
      if (std::rename(temp_path.c_str(), path.c_str()) != 0) {
        const int error_number = errno;
        detail::checkpoint_fail(path, "cannot rename the temporary file " + temp_path + " over it: " +
                                          detail::system_error_text(error_number));
      }
    } catch (...) {
      if (created && !skip_cleanup) std::remove(temp_path.c_str());
      throw;
    }
    detail::sync_parent_directory(path);
  }

  std::vector<unsigned char> body_;  ///< the encoded entries, in order
  std::unordered_set<std::string> names_;
  std::uint64_t entry_count_ = 0;
};

// ---------------------------------------------------------------------------

/// Reads a checkpoint file whole and validates it before anything is used.
/// Every accessor throws std::runtime_error naming the file and the entry when
/// the entry is missing or of another kind.
class CheckpointReader {
 public:
  /// Reads and validates the file at `path`.
  explicit CheckpointReader(const std::string& path) : CheckpointReader(read_file(path), path) {}

  /// Validates a checkpoint held in memory; `name_for_messages` starts every error message.
  static CheckpointReader from_bytes(std::vector<unsigned char> bytes, std::string name_for_messages) {
    return CheckpointReader(std::move(bytes), std::move(name_for_messages));
  }

  /// The path (or the name given to `from_bytes`).
  const std::string& path() const { return path_; }

  bool has(const std::string& name) const { return index_.count(name) != 0; }

  /// The entries' names, in file order.
  std::vector<std::string> names() const {
    std::vector<std::string> result;
    result.reserve(entries_.size());
    for (const Entry& entry : entries_) result.push_back(entry.info.name);
    return result;
  }

  /// The entries' descriptions (name, kind, dtype, shape), in file order.
  std::vector<CheckpointEntryInfo> entries() const {
    std::vector<CheckpointEntryInfo> result;
    result.reserve(entries_.size());
    for (const Entry& entry : entries_) result.push_back(entry.info);
    return result;
  }

  /// The description of one entry.
  const CheckpointEntryInfo& info(const std::string& name) const { return find(name).info; }

  /// A tensor as a row-major matrix of Scalar (f32 and f64 converted).
  template <typename Scalar>
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> matrix(const std::string& name) const {
    static_assert(std::is_floating_point_v<Scalar>, "CheckpointReader::matrix<Scalar>: Scalar must be floating point");
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> result;
    read_into(name, result);
    return result;
  }

  /// Reads a tensor into an existing Eigen matrix or array of any storage
  /// order. Fixed dimensions must match the stored shape (else
  /// std::runtime_error); dynamic ones are resized. A compile-time vector
  /// accepts a stored vector of either orientation (N x 1 or 1 x N).
  template <typename Derived>
  void read_into(const std::string& name, Eigen::PlainObjectBase<Derived>& out) const {
    using Scalar = typename Derived::Scalar;
    static_assert(std::is_floating_point_v<Scalar>, "CheckpointReader::read_into: the target must hold floating point");
    const Entry& entry = find(name, CheckpointKind::Tensor);
    auto rows = static_cast<Index>(entry.info.rows);
    auto cols = static_cast<Index>(entry.info.cols);
    constexpr int fixed_rows = Derived::RowsAtCompileTime;
    constexpr int fixed_cols = Derived::ColsAtCompileTime;
    constexpr bool target_is_vector = fixed_rows == 1 || fixed_cols == 1;
    if (target_is_vector && (rows == 1 || cols == 1)) {  // same element order either way
      const Index length = rows * cols;
      rows = fixed_rows == 1 ? 1 : length;
      cols = fixed_rows == 1 ? length : 1;
    }
    if ((fixed_rows != Eigen::Dynamic && fixed_rows != rows) || (fixed_cols != Eigen::Dynamic && fixed_cols != cols)) {
      fail("entry " + detail::quote_bytes(name) + " has shape " + shape_text(entry.info.rows, entry.info.cols) +
           ", but the target's fixed size is " + fixed_shape_text(fixed_rows, fixed_cols));
    }
    out.resize(rows, cols);
    const unsigned char* src = bytes_.data() + entry.data_offset;
    if (entry.info.dtype == CheckpointDtype::F32) {
      decode_tensor<float>(src, out);
    } else {
      decode_tensor<double>(src, out);
    }
  }

  /// A u64 array.
  std::vector<std::uint64_t> u64s(const std::string& name) const {
    const Entry& entry = find(name, CheckpointKind::U64Array);
    std::vector<std::uint64_t> values(static_cast<std::size_t>(entry.info.rows));
    const unsigned char* src = bytes_.data() + entry.data_offset;
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = detail::load_u64_le(src + 8 * i);
    return values;
  }

  /// A double.
  double scalar(const std::string& name) const {
    const Entry& entry = find(name, CheckpointKind::Double);
    return detail::bit_cast<double>(detail::load_u64_le(bytes_.data() + entry.data_offset));
  }

  /// A string.
  std::string string(const std::string& name) const {
    const Entry& entry = find(name, CheckpointKind::String);
    return std::string(reinterpret_cast<const char*>(bytes_.data() + entry.data_offset),
                       static_cast<std::size_t>(entry.info.rows));
  }

 private:
  struct Entry {
    CheckpointEntryInfo info;
    std::size_t data_offset = 0;
  };

  CheckpointReader(std::vector<unsigned char> bytes, std::string path)
      : bytes_(std::move(bytes)), path_(std::move(path)) {
    validate();
  }

  [[noreturn]] void fail(const std::string& what) const { detail::checkpoint_fail(path_, what); }

  static std::string shape_text(std::uint64_t rows, std::uint64_t cols) {
    return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
  }

  static std::string fixed_shape_text(int rows, int cols) {
    const auto dimension = [](int n) { return n == Eigen::Dynamic ? std::string("any") : std::to_string(n); };
    return "[" + dimension(rows) + ", " + dimension(cols) + "]";
  }

  /// Elements stored as Source, row-major, into `out` (already sized).
  template <typename Source, typename Derived>
  static void decode_tensor(const unsigned char* src, Eigen::PlainObjectBase<Derived>& out) {
    using Scalar = typename Derived::Scalar;
    const auto decode = [](const unsigned char* at) {
      if constexpr (std::is_same_v<Source, float>) {
        return static_cast<Scalar>(detail::bit_cast<float>(detail::load_u32_le(at)));
      } else {
        return static_cast<Scalar>(detail::bit_cast<double>(detail::load_u64_le(at)));
      }
    };
    const Index rows = out.rows();
    const Index cols = out.cols();
    if (Derived::IsRowMajor || rows == 1 || cols == 1) {  // storage order = the file's order
      Scalar* dst = out.data();
      const Index count = rows * cols;
      for (Index k = 0; k < count; ++k, src += sizeof(Source)) dst[k] = decode(src);
    } else {
      for (Index r = 0; r < rows; ++r) {
        for (Index c = 0; c < cols; ++c, src += sizeof(Source)) out.coeffRef(r, c) = decode(src);
      }
    }
  }

  static std::vector<unsigned char> read_file(const std::string& path) {
    std::error_code ignored;
    if (std::filesystem::is_directory(path, ignored)) detail::checkpoint_fail(path, "is a directory, not a checkpoint");
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      const int error_number = errno;
      detail::checkpoint_fail(path, "cannot open for reading: " + detail::system_error_text(error_number));
    }
    return detail::read_to_end(in, path);
  }

  void validate() {
    const std::size_t size = bytes_.size();
    const unsigned char* bytes = bytes_.data();
    if (size == 0) fail("not a checkpoint (the file is empty)");
    if (size < sizeof detail::checkpoint_magic ||
        std::memcmp(bytes, detail::checkpoint_magic, sizeof detail::checkpoint_magic) != 0) {
      const std::string found =
          detail::quote_bytes(reinterpret_cast<const char*>(bytes), std::min<std::size_t>(size, 8));
      fail("not a checkpoint (bad magic " + found + ", expected '\\x89SAECKPT')");
    }
    if (size < 12) fail("truncated: the file ends after " + std::to_string(size) + " bytes, inside the header");
    const std::uint32_t version = detail::load_u32_le(bytes + 8);
    if (version != detail::checkpoint_version) {
      fail("unsupported checkpoint format version " + std::to_string(version) + " (this build reads version " +
           std::to_string(detail::checkpoint_version) + ")");
    }
    constexpr std::size_t minimum = detail::checkpoint_header_size + detail::checkpoint_trailer_size;
    if (size < minimum) {
      fail("truncated: the file is " + std::to_string(size) + " bytes, shorter than any checkpoint (" +
           std::to_string(minimum) + ")");
    }
    const std::uint64_t recorded_size = detail::load_u64_le(bytes + 16);
    if (recorded_size != size) {
      fail("the file is " + std::to_string(size) + " bytes but its header says " + std::to_string(recorded_size) +
           (size < recorded_size ? " (truncated: an interrupted copy or write?)" : " (extra bytes at the end)"));
    }
    const std::uint32_t stored_crc = detail::load_u32_le(bytes + size - detail::checkpoint_trailer_size);
    const std::uint32_t actual_crc = detail::crc32(bytes, size - detail::checkpoint_trailer_size);
    if (stored_crc != actual_crc) {
      fail("checksum mismatch (stored CRC-32 " + detail::hex32(stored_crc) + ", computed " + detail::hex32(actual_crc) +
           "): the file is corrupt");
    }
    const std::uint32_t flags = detail::load_u32_le(bytes + 12);
    if (flags != 0) fail("unsupported flags " + detail::hex32(flags) + " in the header (expected 0)");

    const std::size_t end = size - detail::checkpoint_trailer_size;
    const std::uint64_t count = detail::load_u64_le(bytes + 24);
    if (count > (end - detail::checkpoint_header_size) / detail::checkpoint_entry_fixed_size) {
      fail("the header claims " + std::to_string(count) + " entries, more than " +
           std::to_string(end - detail::checkpoint_header_size) + " bytes can hold");
    }
    entries_.reserve(static_cast<std::size_t>(count));
    std::size_t pos = detail::checkpoint_header_size;
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::string where = "entry " + std::to_string(i);
      const auto need = [&](std::uint64_t bytes_needed, const std::string& what) {
        if (bytes_needed > end - pos) {
          fail(where + ": " + what + " (" + std::to_string(bytes_needed) + " bytes at offset " + std::to_string(pos) +
               ") runs past the end of the entries (offset " + std::to_string(end) + ")");
        }
      };
      need(4, "the name length");
      const std::uint32_t name_length = detail::load_u32_le(bytes + pos);
      pos += 4;
      if (name_length == 0) fail(where + ": empty name");
      if (name_length > detail::checkpoint_max_name_length) {
        fail(where + ": name length " + std::to_string(name_length) + " exceeds the limit " +
             std::to_string(detail::checkpoint_max_name_length));
      }
      need(name_length, "the name");
      Entry entry;
      entry.info.name.assign(reinterpret_cast<const char*>(bytes + pos), name_length);
      pos += name_length;
      const std::string what = where + " " + detail::quote_bytes(entry.info.name);

      need(18, "the kind, dtype and shape of " + detail::quote_bytes(entry.info.name));
      const unsigned kind_code = bytes[pos];
      const unsigned dtype_code = bytes[pos + 1];
      const std::uint64_t rows = detail::load_u64_le(bytes + pos + 2);
      const std::uint64_t cols = detail::load_u64_le(bytes + pos + 10);
      pos += 18;
      if (kind_code < 1 || kind_code > 4) fail(what + ": unknown entry kind code " + std::to_string(kind_code));
      if (dtype_code < 1 || dtype_code > 4) fail(what + ": unknown dtype code " + std::to_string(dtype_code));
      const auto kind = static_cast<CheckpointKind>(kind_code);
      const auto dtype = static_cast<CheckpointDtype>(dtype_code);
      const char* problem = nullptr;
      switch (kind) {
        case CheckpointKind::Tensor:
          if (dtype != CheckpointDtype::F32 && dtype != CheckpointDtype::F64) problem = "a tensor must be f32 or f64";
          break;
        case CheckpointKind::U64Array:
          if (dtype != CheckpointDtype::U64) problem = "a u64 array must have dtype u64";
          else if (cols != 1) problem = "a u64 array must have 1 column";
          break;
        case CheckpointKind::Double:
          if (dtype != CheckpointDtype::F64) problem = "a double must have dtype f64";
          else if (rows != 1 || cols != 1) problem = "a double must have shape [1, 1]";
          break;
        case CheckpointKind::String:
          if (dtype != CheckpointDtype::U8) problem = "a string must have dtype u8";
          else if (cols != 1) problem = "a string must have 1 column";
          break;
      }
      if (problem != nullptr) {
        fail(what + ": " + problem + " (found " + detail::checkpoint_kind_name(kind) + " of " +
             detail::checkpoint_dtype_name(dtype) + ", shape " + shape_text(rows, cols) + ")");
      }
      constexpr auto max_dimension = static_cast<std::uint64_t>(std::numeric_limits<Index>::max());
      const std::uint64_t item = detail::checkpoint_item_size(dtype);
      if (rows > max_dimension || cols > max_dimension ||
          (rows != 0 && cols != 0 && (cols > max_dimension / rows || rows * cols > max_dimension / item))) {
        fail(what + ": shape " + shape_text(rows, cols) + " of " + detail::checkpoint_dtype_name(dtype) +
             " is too large (its size in bytes overflows)");
      }
      const std::uint64_t data_bytes = rows * cols * item;
      need(data_bytes, "the data of " + detail::quote_bytes(entry.info.name) + ", shape " + shape_text(rows, cols) +
                           " of " + detail::checkpoint_dtype_name(dtype) + ",");
      entry.info.kind = kind;
      entry.info.dtype = dtype;
      entry.info.rows = rows;
      entry.info.cols = cols;
      entry.data_offset = pos;
      pos += static_cast<std::size_t>(data_bytes);
      if (!index_.emplace(entry.info.name, entries_.size()).second) fail(what + ": duplicate entry name");
      entries_.push_back(std::move(entry));
    }
    if (pos != end) {
      fail(std::to_string(end - pos) + " unexpected bytes after the last of the " + std::to_string(count) +
           " entries");
    }
  }

  const Entry& find(const std::string& name) const {
    const auto found = index_.find(name);
    if (found == index_.end()) {
      std::string listing;
      for (std::size_t i = 0; i < entries_.size() && i < 20; ++i) {
        listing += (i > 0 ? ", " : "") + detail::quote_bytes(entries_[i].info.name);
      }
      if (entries_.size() > 20) listing += ", ...";
      fail("no entry " + detail::quote_bytes(name) + " (entries: " + (listing.empty() ? "none" : listing) + ")");
    }
    return entries_[found->second];
  }

  const Entry& find(const std::string& name, CheckpointKind kind) const {
    const Entry& entry = find(name);
    if (entry.info.kind != kind) {
      fail("entry " + detail::quote_bytes(name) + " is a " + detail::checkpoint_kind_name(entry.info.kind) +
           ", not a " + detail::checkpoint_kind_name(kind));
    }
    return entry;
  }

  std::vector<unsigned char> bytes_;
  std::string path_;
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace sae
