// sae/io/crc32.hpp: CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as
// zlib.crc32), for the checkpoint trailer and the members of .npz archives.
// Slicing-by-8: eight table look-ups per 8 input bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "little_endian.hpp"

namespace sae {
namespace detail {

struct Crc32Tables {
  std::uint32_t table[8][256];
};

constexpr Crc32Tables make_crc32_tables() {
  Crc32Tables tables{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1u) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
    tables.table[0][i] = crc;
  }
  for (std::size_t i = 0; i < 256; ++i) {
    for (std::size_t slice = 1; slice < 8; ++slice) {
      const std::uint32_t previous = tables.table[slice - 1][i];
      tables.table[slice][i] = (previous >> 8) ^ tables.table[0][previous & 0xffu];
    }
  }
  return tables;
}

inline constexpr Crc32Tables crc32_tables = make_crc32_tables();

/// Continues a CRC-32: crc32_update(crc32_update(0, a), b) == crc32 of a then b.
inline std::uint32_t crc32_update(std::uint32_t crc, const unsigned char* bytes, std::size_t size) {
  const auto& t = crc32_tables.table;
  crc = ~crc;
  while (size >= 8) {
    const std::uint32_t low = load_u32_le(bytes) ^ crc;
    const std::uint32_t high = load_u32_le(bytes + 4);
    crc = t[7][low & 0xffu] ^ t[6][(low >> 8) & 0xffu] ^ t[5][(low >> 16) & 0xffu] ^ t[4][low >> 24] ^
          t[3][high & 0xffu] ^ t[2][(high >> 8) & 0xffu] ^ t[1][(high >> 16) & 0xffu] ^ t[0][high >> 24];
    bytes += 8;
    size -= 8;
  }
  for (; size > 0; --size, ++bytes) crc = t[0][(crc ^ *bytes) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

inline std::uint32_t crc32(const unsigned char* bytes, std::size_t size) { return crc32_update(0, bytes, size); }

/// A CRC as error messages print it: "0x" and eight hex digits.
inline std::string hex32(std::uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", static_cast<unsigned>(value));
  return text;
}

}  // namespace detail
}  // namespace sae
