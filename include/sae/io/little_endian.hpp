// sae/io/little_endian.hpp: unsigned integers to and from little-endian bytes,
// assembled byte by byte so files read and write the same on any host.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sae {
namespace detail {

inline std::uint16_t load_u16_le(const unsigned char* bytes) {
  return static_cast<std::uint16_t>(bytes[0] | (bytes[1] << 8));
}

inline std::uint32_t load_u32_le(const unsigned char* bytes) {
  return static_cast<std::uint32_t>(bytes[0]) | (static_cast<std::uint32_t>(bytes[1]) << 8) |
         (static_cast<std::uint32_t>(bytes[2]) << 16) | (static_cast<std::uint32_t>(bytes[3]) << 24);
}

inline std::uint64_t load_u64_le(const unsigned char* bytes) {
  return static_cast<std::uint64_t>(load_u32_le(bytes)) | (static_cast<std::uint64_t>(load_u32_le(bytes + 4)) << 32);
}

inline void store_u32_le(unsigned char* bytes, std::uint32_t value) {
  for (std::size_t i = 0; i < 4; ++i) bytes[i] = static_cast<unsigned char>((value >> (8 * i)) & 0xffu);
}

inline void store_u64_le(unsigned char* bytes, std::uint64_t value) {
  for (std::size_t i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>((value >> (8 * i)) & 0xffu);
}

}  // namespace detail
}  // namespace sae
