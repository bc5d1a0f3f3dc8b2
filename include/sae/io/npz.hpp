// sae/io/npz.hpp: NumPy .npz archives (numpy.savez, numpy.savez_compressed).
//
// An .npz is a zip archive of .npy files, one per array, named "<key>.npy".
//
//   NpzFile f("params.npz");                     // memory-mapped; the zip directory validated
//   f.names();                                   // {"W_enc", "W_dec", ...}, in archive order
//   sae::Batch<float> W = f.read<float>("W_enc");  // as load_npy: 0-, 1- or 2-D, any dtype it reads
//
// The zip structures are parsed here, trusting nothing: the end-of-central-
// directory record (and its ZIP64 form, which numpy writes for large arrays,
// and the ZIP64 extra fields numpy puts in every local header), the central
// directory, each member's local header (whose name must match the
// directory's), every offset and size against the file. A member's CRC-32 is
// checked whenever it is read. Stored members (method 0, numpy.savez) need
// nothing more. Deflated members (method 8, numpy.savez_compressed) need zlib:
// define SAE_WITH_ZLIB and link zlib (CMake: the sae::io target does both when
// sae was configured with SAE_WITH_ZLIB=ON, the default, and zlib was found);
// without it, reading one throws an error saying so. Encrypted members, other
// compression methods and multi-disk archives are refused.
//
// Every problem is a std::runtime_error whose message starts with the path,
// e.g. "params.npz: member 'W_enc.npy' fails its CRC-32 check ...".
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#ifdef SAE_WITH_ZLIB
#include <zlib.h>
#endif

#include "../config.hpp"
#include "../core/types.hpp"
#include "crc32.hpp"
#include "file_bytes.hpp"
#include "little_endian.hpp"
#include "npy.hpp"

namespace sae {

/// One member of an .npz archive, as its central directory entry says.
struct NpzMember {
  std::string name;                        ///< as stored, e.g. "W_enc.npy"
  int method = 0;                          ///< 0 stored, 8 deflated
  std::uint32_t crc32 = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t uncompressed_size = 0;
  std::uint64_t data_offset = 0;           ///< where its (compressed) bytes start in the archive
};

namespace detail {

// Zip record signatures ("PK" and two bytes), as little-endian u32.
inline constexpr std::uint32_t zip_local_header_signature = 0x04034b50;
inline constexpr std::uint32_t zip_central_header_signature = 0x02014b50;
inline constexpr std::uint32_t zip_end_signature = 0x06054b50;
inline constexpr std::uint32_t zip64_end_signature = 0x06064b50;
inline constexpr std::uint32_t zip64_locator_signature = 0x07064b50;

inline constexpr std::size_t zip_local_header_size = 30;
inline constexpr std::size_t zip_central_header_size = 46;
inline constexpr std::size_t zip_end_size = 22;
inline constexpr std::size_t zip64_end_size = 56;
inline constexpr std::size_t zip64_locator_size = 20;

/// Deflate cannot expand data more than about 1032:1; a directory that claims
/// more is lying, and believing it would allocate without bound.
inline constexpr std::uint64_t deflate_max_ratio = 1032;

}  // namespace detail

/// An .npz archive, memory-mapped, its directory validated; arrays are read on request.
class NpzFile {
 public:
  /// Maps the archive at `path` and validates its directory.
  explicit NpzFile(const std::string& path) : NpzFile(detail::FileBytes::map(path)) {}

  /// The same as the constructor.
  static NpzFile open(const std::string& path) { return NpzFile(path); }

  /// Validates an archive held in memory; `name_for_messages` starts every error message.
  static NpzFile from_bytes(std::vector<unsigned char> bytes, std::string name_for_messages) {
    return NpzFile(detail::FileBytes::own(std::move(bytes), std::move(name_for_messages)));
  }

  const std::string& path() const { return bytes_.path(); }

  /// The arrays' names as numpy gives them (NpzFile.files): member names with
  /// ".npy" removed, in archive order.
  std::vector<std::string> names() const {
    std::vector<std::string> result;
    result.reserve(members_.size());
    for (const NpzMember& member : members_) result.push_back(array_name(member.name));
    return result;
  }

  /// The members as the directory describes them, in archive order.
  const std::vector<NpzMember>& members() const { return members_; }

  /// Whether `name` is a member, given as numpy would: "W_enc" or "W_enc.npy".
  bool has(const std::string& name) const { return lookup(name) != nullptr; }

  /// The bytes of a member (decompressed if need be), after checking its CRC-32.
  std::vector<unsigned char> member_bytes(const std::string& name) const {
    const NpzMember& member = find(name);
    if (member.method == 0) {
      const unsigned char* data = bytes_.data() + member.data_offset;
      check_crc(member, data, static_cast<std::size_t>(member.uncompressed_size));
      return std::vector<unsigned char>(data, data + member.uncompressed_size);
    }
    std::vector<unsigned char> data = inflate(member);
    check_crc(member, data.data(), data.size());
    return data;
  }

  /// The validated .npy header of array `name`.
  NpyHeader header(const std::string& name) const {
    const NpzMember& member = find(name);
    return with_member_bytes(member, [&](const unsigned char* data, std::size_t size) {
      return parse_npy_header(data, size, member_path(member));
    });
  }

  /// Array `name` as load_npy would read it from a separate .npy file.
  template <typename Scalar>
  Batch<Scalar> read(const std::string& name) const {
    static_assert(std::is_floating_point_v<Scalar>, "NpzFile::read<Scalar>: Scalar must be floating point");
    const NpzMember& member = find(name);
    return with_member_bytes(member, [&](const unsigned char* data, std::size_t size) {
      return load_npy_from_memory<Scalar>(data, size, member_path(member));
    });
  }

 private:
  explicit NpzFile(detail::FileBytes bytes) : bytes_(std::move(bytes)) { parse_directory(); }

  [[noreturn]] void fail(const std::string& what) const { detail::npy_fail(path(), what); }

  static std::string array_name(const std::string& member_name) {
    const std::string suffix = ".npy";
    if (member_name.size() >= suffix.size() &&
        member_name.compare(member_name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return member_name.substr(0, member_name.size() - suffix.size());
    }
    return member_name;
  }

  /// "params.npz: member 'W_enc.npy'", so .npy errors start with the archive's path.
  std::string member_path(const NpzMember& member) const {
    return path() + ": member " + detail::quote_bytes(member.name);
  }

  const NpzMember* lookup(const std::string& name) const {
    auto it = index_.find(name);  // numpy, too, tries the name as given first
    if (it == index_.end()) it = index_.find(name + ".npy");
    return it == index_.end() ? nullptr : &members_[it->second];
  }

  const NpzMember& find(const std::string& name) const {
    const NpzMember* member = lookup(name);
    if (member == nullptr) {
      std::string known;
      for (std::size_t i = 0; i < members_.size() && i < 20; ++i) {
        known += (i > 0 ? ", " : "") + detail::quote_bytes(array_name(members_[i].name));
      }
      if (members_.size() > 20) known += ", ...";
      fail("no array named " + detail::quote_bytes(name) +
           (members_.empty() ? std::string(" (the archive is empty)") : " (the archive has " + known + ")"));
    }
    return *member;
  }

  /// Calls `use(data, size)` on the member's checked bytes: in place for a
  /// stored member, from a decompressed copy for a deflated one.
  template <typename Use>
  std::invoke_result_t<Use&, const unsigned char*, std::size_t> with_member_bytes(const NpzMember& member,
                                                                                  Use use) const {
    if (member.method == 0) {
      const unsigned char* data = bytes_.data() + member.data_offset;
      const auto size = static_cast<std::size_t>(member.uncompressed_size);
      check_crc(member, data, size);
      return use(data, size);
    }
    const std::vector<unsigned char> data = inflate(member);
    check_crc(member, data.data(), data.size());
    return use(data.data(), data.size());
  }

  void check_crc(const NpzMember& member, const unsigned char* data, std::size_t size) const {
    const std::uint32_t computed = detail::crc32(data, size);
    if (computed != member.crc32) {
      fail("member " + detail::quote_bytes(member.name) + " fails its CRC-32 check (the directory says " +
           detail::hex32(member.crc32) + ", the data gives " + detail::hex32(computed) + "): the archive is damaged");
    }
  }

  std::vector<unsigned char> inflate(const NpzMember& member) const {
    const std::string what = "member " + detail::quote_bytes(member.name);
#ifdef SAE_WITH_ZLIB
    std::vector<unsigned char> out(static_cast<std::size_t>(member.uncompressed_size));
    z_stream stream{};
    if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) fail("zlib cannot start inflating " + what);  // raw deflate
    const unsigned char* in = bytes_.data() + member.data_offset;
    std::uint64_t in_left = member.compressed_size;
    std::size_t produced = 0;
    constexpr std::uint64_t chunk = std::uint64_t{1} << 30;  // z_stream counts in 32 bits
    int status = Z_OK;
    while (status != Z_STREAM_END) {
      if (stream.avail_in == 0 && in_left > 0) {
        const auto n = static_cast<uInt>(std::min(in_left, chunk));
        stream.next_in = const_cast<Bytef*>(in);  // zlib does not write through next_in
        stream.avail_in = n;
        in += n;
        in_left -= n;
      }
      const std::size_t out_room = out.size() - produced;
      unsigned char spare = 0;  // room for one byte past the end, to notice excess output
      stream.next_out = out_room > 0 ? out.data() + produced : &spare;
      stream.avail_out = out_room > 0 ? static_cast<uInt>(std::min<std::uint64_t>(out_room, chunk)) : 1;
      const uInt room_before = stream.avail_out;
      const uInt in_before = stream.avail_in;
      status = ::inflate(&stream, Z_NO_FLUSH);
      const uInt written = room_before - stream.avail_out;
      if (out_room == 0 && written > 0) {
        inflateEnd(&stream);
        fail(what + " inflates to more than the " + std::to_string(member.uncompressed_size) +
             " bytes the directory says");
      }
      produced += written;
      if (status == Z_STREAM_END) break;
      if (status == Z_BUF_ERROR && in_left == 0 && stream.avail_in == 0 && written == 0 && in_before == 0) {
        inflateEnd(&stream);
        fail(what + ": its deflate data ends early (after " + std::to_string(produced) + " of " +
             std::to_string(member.uncompressed_size) + " bytes)");
      }
      if (status != Z_OK && status != Z_BUF_ERROR) {
        const std::string message = stream.msg != nullptr ? stream.msg : "zlib error " + std::to_string(status);
        inflateEnd(&stream);
        fail(what + " has corrupt deflate data (" + message + ")");
      }
    }
    inflateEnd(&stream);
    if (produced != out.size()) {
      fail(what + " inflates to " + std::to_string(produced) + " bytes, but the directory says " +
           std::to_string(member.uncompressed_size));
    }
    return out;
#else
    fail(what + " is deflated (numpy.savez_compressed), and this build of sae reads only stored members: "
                "define SAE_WITH_ZLIB and link zlib (CMake: link sae::io, configured with SAE_WITH_ZLIB=ON), "
                "or save the archive with numpy.savez");
#endif
  }

  /// Finds the end-of-central-directory record, then reads the directory and
  /// every local header. Sets members_ and index_.
  void parse_directory() {
    const unsigned char* data = bytes_.data();
    const std::uint64_t size = bytes_.size();
    if (size < detail::zip_end_size) {
      fail("not an .npz (zip) archive: it is " + std::to_string(size) + " bytes, shorter than a zip end record");
    }

    // The end record is the last 22 bytes plus a comment of up to 65535 bytes:
    // search backwards for its signature, taking the first whose comment fits.
    std::uint64_t end_record = 0;
    bool found = false;
    const std::uint64_t lowest = size > detail::zip_end_size + 0xffff ? size - detail::zip_end_size - 0xffff : 0;
    for (std::uint64_t pos = size - detail::zip_end_size + 1; pos-- > lowest;) {
      if (detail::load_u32_le(data + pos) == detail::zip_end_signature &&
          pos + detail::zip_end_size + detail::load_u16_le(data + pos + 20) <= size) {
        end_record = pos;
        found = true;
        break;
      }
    }
    if (!found) {
      const bool npy = size >= 6 && std::memcmp(data, detail::npy_magic, sizeof detail::npy_magic) == 0;
      fail(npy ? "not an .npz archive: this is a single .npy file (use load_npy)"
               : "not an .npz (zip) archive: no end-of-central-directory record (truncated?)");
    }
    const unsigned char* end = data + end_record;
    std::uint64_t disk = detail::load_u16_le(end + 4);
    std::uint64_t directory_disk = detail::load_u16_le(end + 6);
    std::uint64_t entries_on_disk = detail::load_u16_le(end + 8);
    std::uint64_t entries = detail::load_u16_le(end + 10);
    std::uint64_t directory_size = detail::load_u32_le(end + 12);
    std::uint64_t directory_offset = detail::load_u32_le(end + 16);
    std::uint64_t directory_limit = end_record;  // where the central directory must end

    // ZIP64: a locator right before the end record points at the ZIP64 end record.
    if (end_record >= detail::zip64_locator_size &&
        detail::load_u32_le(data + end_record - detail::zip64_locator_size) == detail::zip64_locator_signature) {
      const unsigned char* locator = data + end_record - detail::zip64_locator_size;
      const std::uint64_t zip64_end = detail::load_u64_le(locator + 8);
      if (detail::load_u32_le(locator + 16) > 1) fail("the archive spans several disks, which is not supported");
      if (zip64_end > end_record - detail::zip64_locator_size ||
          end_record - detail::zip64_locator_size - zip64_end < detail::zip64_end_size) {
        fail("the ZIP64 end record's offset " + std::to_string(zip64_end) + " is not inside the archive");
      }
      const unsigned char* record = data + zip64_end;
      if (detail::load_u32_le(record) != detail::zip64_end_signature) {
        fail("no ZIP64 end record at offset " + std::to_string(zip64_end) + ", where the locator points");
      }
      disk = detail::load_u32_le(record + 16);
      directory_disk = detail::load_u32_le(record + 20);
      entries_on_disk = detail::load_u64_le(record + 24);
      entries = detail::load_u64_le(record + 32);
      directory_size = detail::load_u64_le(record + 40);
      directory_offset = detail::load_u64_le(record + 48);
      directory_limit = zip64_end;
    }
    if (disk != 0 || directory_disk != 0 || entries_on_disk != entries) {
      fail("the archive spans several disks, which is not supported");
    }
    if (directory_offset > directory_limit || directory_limit - directory_offset != directory_size) {
      fail("the central directory (offset " + std::to_string(directory_offset) + ", " + std::to_string(directory_size) +
           " bytes) does not end where the end record starts (" + std::to_string(directory_limit) +
           "): a damaged archive, or data before it");
    }
    if (entries > directory_size / detail::zip_central_header_size) {
      fail("the end record claims " + std::to_string(entries) + " members, more than a " +
           std::to_string(directory_size) + "-byte central directory can hold");
    }

    members_.reserve(static_cast<std::size_t>(entries));
    std::uint64_t pos = directory_offset;
    const std::uint64_t directory_end = directory_offset + directory_size;
    for (std::uint64_t i = 0; i < entries; ++i) {
      const std::string entry = "central directory entry " + std::to_string(i);
      if (directory_end - pos < detail::zip_central_header_size) fail(entry + " runs past the directory's end");
      const unsigned char* header = data + pos;
      if (detail::load_u32_le(header) != detail::zip_central_header_signature) {
        fail(entry + " (at offset " + std::to_string(pos) + ") has a bad signature");
      }
      const std::uint16_t flags = detail::load_u16_le(header + 8);
      NpzMember member;
      member.method = detail::load_u16_le(header + 10);
      member.crc32 = detail::load_u32_le(header + 16);
      member.compressed_size = detail::load_u32_le(header + 20);
      member.uncompressed_size = detail::load_u32_le(header + 24);
      const std::uint64_t name_length = detail::load_u16_le(header + 28);
      const std::uint64_t extra_length = detail::load_u16_le(header + 30);
      const std::uint64_t comment_length = detail::load_u16_le(header + 32);
      std::uint64_t member_disk = detail::load_u16_le(header + 34);
      std::uint64_t local_offset = detail::load_u32_le(header + 42);
      if (directory_end - pos - detail::zip_central_header_size < name_length + extra_length + comment_length) {
        fail(entry + " runs past the directory's end");
      }
      member.name.assign(reinterpret_cast<const char*>(header + detail::zip_central_header_size),
                         static_cast<std::size_t>(name_length));
      const std::string what = "member " + detail::quote_bytes(member.name);

      // ZIP64 extra field: 64-bit values for the 32-bit fields that are all ones, in this order.
      const unsigned char* extra = header + detail::zip_central_header_size + name_length;
      for (std::uint64_t at = 0; at + 4 <= extra_length;) {
        const std::uint16_t id = detail::load_u16_le(extra + at);
        const std::uint64_t length = detail::load_u16_le(extra + at + 2);
        if (length > extra_length - at - 4) fail(what + ": an extra field runs past the entry");
        if (id == 0x0001) {
          const unsigned char* field = extra + at + 4;
          std::uint64_t used = 0;
          const auto take = [&](std::uint64_t& value, std::uint64_t all_ones, std::uint64_t width) {
            if (value != all_ones) return;
            if (length - used < width) fail(what + ": its ZIP64 extra field is too short");
            value = width == 8 ? detail::load_u64_le(field + used) : detail::load_u32_le(field + used);
            used += width;
          };
          take(member.uncompressed_size, 0xffffffffu, 8);
          take(member.compressed_size, 0xffffffffu, 8);
          take(local_offset, 0xffffffffu, 8);
          take(member_disk, 0xffffu, 4);
        }
        at += 4 + length;
      }

      if (member_disk != 0) fail(what + " is on another disk; multi-disk archives are not supported");
      if ((flags & 0x0041u) != 0) fail(what + " is encrypted, which is not supported");
      if (member.method != 0 && member.method != 8) {
        fail(what + " uses compression method " + std::to_string(member.method) +
             "; only stored (0, numpy.savez) and deflated (8, numpy.savez_compressed) are supported");
      }
      if (member.method == 0 && member.compressed_size != member.uncompressed_size) {
        fail(what + " is stored, but its sizes differ (" + std::to_string(member.compressed_size) + " stored, " +
             std::to_string(member.uncompressed_size) + " uncompressed)");
      }
      if (member.method == 8 &&
          member.uncompressed_size / detail::deflate_max_ratio > member.compressed_size + 1) {
        fail(what + " claims to inflate " + std::to_string(member.compressed_size) + " bytes to " +
             std::to_string(member.uncompressed_size) + ", more than deflate can expand");
      }
      if (member.uncompressed_size > std::numeric_limits<std::size_t>::max() / 2) {
        fail(what + " is too large for this process (" + std::to_string(member.uncompressed_size) + " bytes)");
      }

      // The local header: its own name and extra field lengths say where the data starts.
      if (local_offset > directory_offset || directory_offset - local_offset < detail::zip_local_header_size) {
        fail(what + ": its local header offset " + std::to_string(local_offset) + " is not before the directory");
      }
      const unsigned char* local = data + local_offset;
      if (detail::load_u32_le(local) != detail::zip_local_header_signature) {
        fail(what + ": no local header at offset " + std::to_string(local_offset));
      }
      const std::uint64_t local_name_length = detail::load_u16_le(local + 26);
      const std::uint64_t local_extra_length = detail::load_u16_le(local + 28);
      const std::uint64_t room = directory_offset - local_offset - detail::zip_local_header_size;
      if (local_name_length + local_extra_length > room) fail(what + ": its local header runs into the directory");
      if (local_name_length != name_length ||
          std::memcmp(local + detail::zip_local_header_size, header + detail::zip_central_header_size,
                      static_cast<std::size_t>(name_length)) != 0) {
        fail(what + ": the local header names it " +
             detail::quote_bytes(reinterpret_cast<const char*>(local + detail::zip_local_header_size),
                                 static_cast<std::size_t>(local_name_length)));
      }
      member.data_offset = local_offset + detail::zip_local_header_size + local_name_length + local_extra_length;
      if (member.compressed_size > directory_offset - member.data_offset) {
        fail(what + ": its " + std::to_string(member.compressed_size) + " bytes at offset " +
             std::to_string(member.data_offset) + " run past the start of the directory");
      }

      if (!index_.emplace(member.name, members_.size()).second) {
        fail("the archive has two members named " + detail::quote_bytes(member.name));
      }
      members_.push_back(std::move(member));
      pos += detail::zip_central_header_size + name_length + extra_length + comment_length;
    }
    if (pos != directory_end) {
      fail("the central directory has " + std::to_string(directory_end - pos) + " bytes after its " +
           std::to_string(entries) + " entries");
    }
  }

  detail::FileBytes bytes_;
  std::vector<NpzMember> members_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace sae
