// sae/io/npy.hpp: NumPy .npy files to and from Eigen matrices.
//
// The format (numpy.lib.format, NEP 1): the magic "\x93NUMPY", a version byte
// pair, the header length (2 bytes little-endian in version 1.0, 4 bytes in
// 2.0 and 3.0), then the header, a Python dict literal such as
//     {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// padded with spaces and a final '\n' so the data starts 64-byte aligned, then
// the raw elements.
//
//   load_npy<Scalar>(path)   0-, 1- or 2-D arrays of float (f2 f4 f8), integer
//                            (i1..i8, u1..u8) or bool dtype, either byte order,
//                            C or Fortran order -> an R x C row-major Batch.
//   load_npy_from_memory     the same for a file's bytes already in memory.
//   save_npy(path, m)        float32 / float64, C order, written atomically.
//   parse_npy_header(...)    the validated header, for readers that map the
//   read_npy_header(path)    data themselves.
//
// Readers trust nothing in the file: every length is checked against the file
// size before it is used, and every problem is a std::runtime_error whose
// message starts with the path, e.g. "acts.npy: unsupported dtype '<c8'".
#pragma once

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "../config.hpp"
#include "../core/types.hpp"

namespace sae {

/// What the header of a .npy file says, validated against the file size.
struct NpyHeader {
  enum class Kind { Float, SignedInt, UnsignedInt, Bool };
  Kind kind = Kind::Float;
  int item_size = 0;                  ///< bytes per element: 1, 2, 4 or 8
  bool big_endian = false;            ///< byte order of the elements ('=' resolved to the host's)
  bool fortran_order = false;         ///< elements stored column-major (first index fastest)
  std::vector<std::uint64_t> shape;   ///< empty for a 0-d array
  std::uint64_t data_offset = 0;      ///< where the elements start (the preamble's length)
  std::uint64_t element_count = 0;    ///< product of `shape` (1 for a 0-d array)
  std::uint64_t data_bytes = 0;       ///< element_count * item_size, = file size - data_offset
  std::string descr;                  ///< the dtype as written, e.g. "<f4" (for messages)
};

namespace detail {

[[noreturn]] inline void npy_fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

inline bool host_is_little_endian() {
  const std::uint16_t probe = 1;
  unsigned char first_byte = 0;
  std::memcpy(&first_byte, &probe, 1);
  return first_byte == 1;
}

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
inline bool is_python_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/// A shape as Python prints the tuple: "()", "(5,)", "(3, 4)".
inline std::string format_shape(const std::vector<std::uint64_t>& shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  if (shape.size() == 1) text += ",";
  return text + ")";
}

/// Bytes from the file, single-quoted for a message: anything outside
/// printable ASCII as \xNN, and cut after `max_shown` bytes.
inline std::string quote_bytes(const char* bytes, std::size_t size, std::size_t max_shown = 80) {
  static const char hex_digits[] = "0123456789abcdef";
  std::string text = "'";
  for (std::size_t i = 0; i < size && i < max_shown; ++i) {
    const auto byte = static_cast<unsigned char>(bytes[i]);
    if (byte >= 0x20 && byte < 0x7f && byte != '\\') {
      text += static_cast<char>(byte);
    } else {
      text += "\\x";
      text += hex_digits[byte >> 4];
      text += hex_digits[byte & 0xf];
    }
  }
  text += "'";
  if (size > max_shown) text += "...";
  return text;
}

inline std::string quote_bytes(const std::string& text) { return quote_bytes(text.data(), text.size()); }

inline constexpr unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/// numpy 2 allows 64 dimensions (NPY_MAXDIMS); more is not a real file.
inline constexpr std::size_t npy_max_dims = 64;

/// Where the header text lies, from the fixed-size start of the file.
struct NpyPreamble {
  std::uint64_t header_offset = 0;  ///< 10 in version 1.0, 12 in 2.0 and 3.0
  std::uint64_t header_length = 0;
  std::uint64_t data_offset = 0;    ///< header_offset + header_length, <= the file size
};

/// Checks magic, version and header length against the file size `size`.
/// Reads only bytes[0, min(size, 12)).
inline NpyPreamble parse_npy_preamble(const unsigned char* bytes, std::uint64_t size, const std::string& path) {
  if (size == 0) npy_fail(path, "not a NumPy file (the file is empty)");
  if (size < sizeof npy_magic || std::memcmp(bytes, npy_magic, sizeof npy_magic) != 0) {
    const bool zip = size >= 2 && bytes[0] == 'P' && bytes[1] == 'K';
    npy_fail(path, zip ? "not a NumPy file (bad magic; this is a zip archive, an .npz perhaps?)"
                       : "not a NumPy file (bad magic)");
  }
  const auto truncated = [&] {
    npy_fail(path, "truncated preamble: the file ends after " + std::to_string(size) + " bytes");
  };
  if (size < 8) truncated();
  const int major = bytes[6];
  const int minor = bytes[7];
  if (major < 1 || major > 3 || minor != 0) {
    npy_fail(path, "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                       " (expected 1.0, 2.0 or 3.0)");
  }
  const std::size_t length_field_bytes = major == 1 ? 2 : 4;
  NpyPreamble preamble;
  preamble.header_offset = 8 + length_field_bytes;
  if (size < preamble.header_offset) truncated();
  for (std::size_t i = length_field_bytes; i-- > 0;) {  // little-endian
    preamble.header_length = (preamble.header_length << 8) | bytes[8 + i];
  }
  preamble.data_offset = preamble.header_offset + preamble.header_length;  // < 2^33: no overflow
  if (preamble.data_offset > size) {
    npy_fail(path, "header length " + std::to_string(preamble.header_length) +
                       " runs past the end of the file (" + std::to_string(size) + " bytes)");
  }
  return preamble;
}

/// Sets kind, item_size and big_endian from a dtype string such as "<f4".
/// Accepts [<>=|]?[fiub]<size> for the sizes numpy has; anything else
/// (complex, strings, objects, datetimes, '|' on a multi-byte type) is refused.
inline void parse_npy_descr(const std::string& descr, NpyHeader& header, const std::string& path) {
  const auto unsupported = [&] {
    npy_fail(path, "unsupported dtype " + quote_bytes(descr) +
                       " (supported: float f2 f4 f8, int i1 i2 i4 i8, uint u1 u2 u4 u8, bool b1)");
  };
  char byte_order = '=';  // numpy reads a descr without one as native
  std::size_t pos = 0;
  if (!descr.empty() && (descr[0] == '<' || descr[0] == '>' || descr[0] == '=' || descr[0] == '|')) {
    byte_order = descr[0];
    pos = 1;
  }
  if (descr.size() != pos + 2 || !is_digit(descr[pos + 1])) unsupported();
  const char type = descr[pos];
  const int size = descr[pos + 1] - '0';
  using Kind = NpyHeader::Kind;
  switch (type) {
    case 'f':
      if (size != 2 && size != 4 && size != 8) unsupported();
      header.kind = Kind::Float;
      break;
    case 'i':
    case 'u':
      if (size != 1 && size != 2 && size != 4 && size != 8) unsupported();
      header.kind = type == 'i' ? Kind::SignedInt : Kind::UnsignedInt;
      break;
    case 'b':
      if (size != 1) unsupported();
      header.kind = Kind::Bool;
      break;
    default:
      unsupported();
  }
  if (byte_order == '|' && size != 1) unsupported();  // '|' means "no byte order", only true of 1 byte
  header.item_size = size;
  header.big_endian = size > 1 && (byte_order == '>' || (byte_order == '=' && !host_is_little_endian()));
}

/// Reads the header's dict literal. It accepts what numpy writes and what
/// Python's literal_eval would read the same way (any key order, either
/// quote, optional trailing comma, any whitespace), and nothing else.
class NpyHeaderParser {
 public:
  NpyHeaderParser(const char* text, std::size_t length, const std::string& path)
      : text_(text), length_(length), path_(path) {}

  /// Sets descr, kind, item_size, big_endian, fortran_order and shape.
  void parse_into(NpyHeader& header) {
    skip_whitespace();
    if (!consume('{')) fail("malformed header: not a dict literal: " + quote_bytes(text_, length_));
    bool have_descr = false, have_fortran_order = false, have_shape = false;
    for (;;) {
      skip_whitespace();
      if (consume('}')) break;
      if (!at_quote()) syntax_error("expected a quoted key or '}'");
      const std::string key = parse_string();
      skip_whitespace();
      if (!consume(':')) syntax_error("expected ':' after key " + quote_bytes(key));
      skip_whitespace();
      if (key == "descr") {
        mark_seen(have_descr, key);
        if (!at_quote()) fail("'descr' is not a dtype string (structured and sub-array dtypes are not supported)");
        header.descr = parse_string();
      } else if (key == "fortran_order") {
        mark_seen(have_fortran_order, key);
        header.fortran_order = parse_bool(key);
      } else if (key == "shape") {
        mark_seen(have_shape, key);
        header.shape = parse_shape();
      } else {
        fail("unexpected key " + quote_bytes(key) + " in header (expected 'descr', 'fortran_order' and 'shape')");
      }
      skip_whitespace();
      if (consume(',')) continue;
      if (consume('}')) break;
      syntax_error("expected ',' or '}'");
    }
    skip_whitespace();
    if (pos_ != length_) syntax_error("unexpected text after the closing '}'");
    if (!have_descr) fail("header has no 'descr' key");
    if (!have_fortran_order) fail("header has no 'fortran_order' key");
    if (!have_shape) fail("header has no 'shape' key");
    parse_npy_descr(header.descr, header, path_);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { npy_fail(path_, what); }

  [[noreturn]] void syntax_error(const std::string& what) const {
    fail("malformed header: " + what + " at offset " + std::to_string(pos_) + " in " + quote_bytes(text_, length_));
  }

  void mark_seen(bool& seen, const std::string& key) const {
    if (seen) fail("header repeats key " + quote_bytes(key));
    seen = true;
  }

  bool at_end() const { return pos_ >= length_; }
  bool at_quote() const { return !at_end() && (text_[pos_] == '\'' || text_[pos_] == '"'); }

  bool consume(char c) {
    if (at_end() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  void skip_whitespace() {
    while (!at_end() && is_python_space(text_[pos_])) ++pos_;
  }

  /// The text from `from` up to the next separator, quoted for a message.
  std::string token_at(std::size_t from) const {
    std::size_t end = from;
    while (end < length_ && end - from < 40 && !is_python_space(text_[end]) && text_[end] != ',' &&
           text_[end] != ')' && text_[end] != '}') {
      ++end;
    }
    return quote_bytes(text_ + from, end - from);
  }

  /// A single- or double-quoted string without escapes (numpy writes none).
  std::string parse_string() {
    const char quote = text_[pos_++];
    const std::size_t start = pos_;
    while (!at_end() && text_[pos_] != quote) {
      if (text_[pos_] == '\\') syntax_error("escape sequences in strings are not supported");
      if (text_[pos_] == '\n') syntax_error("unterminated string");
      ++pos_;
    }
    if (at_end()) syntax_error("unterminated string");
    ++pos_;
    return std::string(text_ + start, pos_ - 1 - start);
  }

  bool parse_bool(const std::string& key) {
    const std::size_t start = pos_;
    while (!at_end() && is_word_char(text_[pos_])) ++pos_;
    const std::string word(text_ + start, pos_ - start);
    if (word == "True") return true;
    if (word == "False") return false;
    fail(quote_bytes(key) + " must be True or False, not " + token_at(start));
  }

  /// A tuple of non-negative integers: "()", "(5,)", "(3, 4)", "(3, 4,)".
  std::vector<std::uint64_t> parse_shape() {
    if (!consume('(')) fail("'shape' is not a tuple: " + token_at(pos_));
    std::vector<std::uint64_t> shape;
    skip_whitespace();
    if (consume(')')) return shape;
    for (;;) {
      shape.push_back(parse_dimension());
      if (shape.size() > npy_max_dims) {
        fail("'shape' has more than " + std::to_string(npy_max_dims) + " dimensions");
      }
      skip_whitespace();
      if (consume(',')) {
        skip_whitespace();
        if (consume(')')) return shape;
        continue;
      }
      if (consume(')')) {
        // In Python "(5)" is the integer 5, not a tuple; numpy rejects it.
        if (shape.size() == 1) fail("'shape' is not a tuple: a 1-D shape is written (N,), not (N)");
        return shape;
      }
      syntax_error("expected ',' or ')' in 'shape'");
    }
  }

  std::uint64_t parse_dimension() {
    skip_whitespace();
    const std::size_t start = pos_;
    if (consume('-')) fail("negative dimension " + token_at(start) + " in 'shape'");
    if (at_end() || !is_digit(text_[pos_])) {
      fail("'shape' entries must be non-negative integers, not " + token_at(start));
    }
    const std::uint64_t max_dimension = static_cast<std::uint64_t>(std::numeric_limits<Index>::max());
    std::uint64_t value = 0;
    while (!at_end() && is_digit(text_[pos_])) {
      const auto digit = static_cast<std::uint64_t>(text_[pos_++] - '0');
      if (value > (max_dimension - digit) / 10) fail("dimension " + token_at(start) + " in 'shape' is too large");
      value = value * 10 + digit;
    }
    consume('L');  // Python 2's long suffix, which numpy once wrote
    if (!at_end() && (is_word_char(text_[pos_]) || text_[pos_] == '.')) {
      fail("'shape' entries must be non-negative integers, not " + token_at(start));
    }
    return value;
  }

  const char* text_;
  std::size_t length_;
  const std::string& path_;
  std::size_t pos_ = 0;
};

}  // namespace detail

/// Parses and validates a .npy preamble. `bytes` points at the start of the
/// file and `size` is the file's total size: only bytes before the data are
/// read (never more than `size`), so `bytes` must hold min(size, preamble).
/// Checks that the data that follows is exactly element_count * item_size
/// bytes. Every problem throws std::runtime_error starting with `path_for_messages`.
inline NpyHeader parse_npy_header(const unsigned char* bytes, std::size_t size, const std::string& path_for_messages) {
  const std::string& path = path_for_messages;
  const detail::NpyPreamble preamble = detail::parse_npy_preamble(bytes, size, path);

  NpyHeader header;
  detail::NpyHeaderParser(reinterpret_cast<const char*>(bytes) + preamble.header_offset,
                          static_cast<std::size_t>(preamble.header_length), path)
      .parse_into(header);
  header.data_offset = preamble.data_offset;

  // Like numpy, a zero dimension makes the array empty but the other
  // dimensions must still multiply without overflow. Checked before multiplying.
  constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t product = static_cast<std::uint64_t>(header.item_size);
  bool empty = false;
  for (const std::uint64_t dimension : header.shape) {
    if (dimension == 0) {
      empty = true;
      continue;
    }
    if (product > max_u64 / dimension) {
      detail::npy_fail(path, "shape " + detail::format_shape(header.shape) + " of " + detail::quote_bytes(header.descr) +
                                 " is too large (its size in bytes overflows 64 bits)");
    }
    product *= dimension;
  }
  header.data_bytes = empty ? 0 : product;
  header.element_count = header.data_bytes / static_cast<std::uint64_t>(header.item_size);

  const std::uint64_t available = size - header.data_offset;
  if (available != header.data_bytes) {
    detail::npy_fail(path, "data is " + std::to_string(available) + " bytes, expected " +
                               std::to_string(header.data_bytes) + " for shape " + detail::format_shape(header.shape) +
                               " of " + detail::quote_bytes(header.descr));
  }
  return header;
}

namespace detail {

inline std::string system_error_text(int error_number) { return std::system_category().message(error_number); }

inline std::ifstream open_for_reading(const std::string& path) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) npy_fail(path, "is a directory, not a .npy file");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error_number = errno;
    npy_fail(path, "cannot open for reading: " + system_error_text(error_number));
  }
  return in;
}

/// Reads `count` bytes or fails naming what was being read.
inline void read_exactly(std::ifstream& in, unsigned char* out, std::size_t count, const std::string& path) {
  if (count == 0) return;
  in.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(count));
  if (in.bad() || static_cast<std::size_t>(in.gcount()) != count) {
    npy_fail(path, "read failed after " + std::to_string(in.gcount()) + " of " + std::to_string(count) +
                       " bytes (the file changed while being read?)");
  }
}

/// Everything left in `in`, the file at `path`. Sized from the file system
/// when it can be, then read on to the end, so a special file or a file that
/// changes size still reads right. A read error throws std::runtime_error
/// "<path>: read error after N bytes".
inline std::vector<unsigned char> read_to_end(std::ifstream& in, const std::string& path) {
  std::vector<unsigned char> bytes;
  std::error_code size_error;
  const std::uintmax_t expected_size = std::filesystem::file_size(path, size_error);
  if (!size_error && expected_size > 0 && expected_size < std::numeric_limits<std::size_t>::max() / 2) {
    bytes.resize(static_cast<std::size_t>(expected_size));
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    bytes.resize(static_cast<std::size_t>(in.gcount()));
  }
  constexpr std::size_t chunk = std::size_t{1} << 16;
  while (in && in.peek() != std::ifstream::traits_type::eof()) {
    const std::size_t old_size = bytes.size();
    bytes.resize(old_size + chunk);
    in.read(reinterpret_cast<char*>(bytes.data() + old_size), static_cast<std::streamsize>(chunk));
    bytes.resize(old_size + static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) npy_fail(path, "read error after " + std::to_string(bytes.size()) + " bytes");
  return bytes;
}

/// The whole .npy file.
inline std::vector<unsigned char> read_whole_file(const std::string& path) {
  std::ifstream in = open_for_reading(path);
  return read_to_end(in, path);
}

// ---------------------------------------------------------------------------
// Element decoding: bytes in either order -> Scalar, portable to any host.

template <std::size_t Bytes> struct unsigned_of_size;
template <> struct unsigned_of_size<1> { using type = std::uint8_t; };
template <> struct unsigned_of_size<2> { using type = std::uint16_t; };
template <> struct unsigned_of_size<4> { using type = std::uint32_t; };
template <> struct unsigned_of_size<8> { using type = std::uint64_t; };

template <typename UInt>
UInt load_unsigned(const unsigned char* bytes, bool big_endian) {
  UInt value = 0;
  for (std::size_t i = 0; i < sizeof(UInt); ++i) {
    const unsigned char byte = big_endian ? bytes[i] : bytes[sizeof(UInt) - 1 - i];
    value = static_cast<UInt>((static_cast<std::uint64_t>(value) << 8) | byte);
  }
  return value;
}

template <typename To, typename From>
To bit_cast(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast needs types of the same size");
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
}

/// IEEE 754 binary16 bits -> float, exact for every input (binary16 is a
/// subset of binary32): subnormals normalised, inf kept, NaN payload kept.
inline float half_to_float(std::uint16_t half) {
  const std::uint32_t sign = (half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1fu;
  std::uint32_t mantissa = half & 0x3ffu;
  std::uint32_t bits = 0;
  if (exponent == 0x1f) {  // inf or NaN
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal: rebias the exponent from 15 to 127
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal, mantissa * 2^-24: shift the leading 1 into the implicit bit
    std::uint32_t float_exponent = 127 - 14;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --float_exponent;
    }
    bits = sign | (float_exponent << 23) | ((mantissa & 0x3ffu) << 13);
  }
  return bit_cast<float>(bits);
}

/// Source element types; Half and Bool8 stand for numpy's f2 and b1.
struct Half {};
struct Bool8 {};

template <typename Source>
struct ElementDecoder {
  static constexpr std::size_t size = sizeof(Source);
  static Source decode(const unsigned char* bytes, bool big_endian) {
    return bit_cast<Source>(load_unsigned<typename unsigned_of_size<sizeof(Source)>::type>(bytes, big_endian));
  }
};
template <>
struct ElementDecoder<Half> {
  static constexpr std::size_t size = 2;
  static float decode(const unsigned char* bytes, bool big_endian) {
    return half_to_float(load_unsigned<std::uint16_t>(bytes, big_endian));
  }
};
template <>
struct ElementDecoder<Bool8> {
  static constexpr std::size_t size = 1;
  static bool decode(const unsigned char* bytes, bool) { return *bytes != 0; }
};

/// Converts rows x cols elements into row-major `out`.
template <typename Source, typename Scalar>
void convert_elements(const unsigned char* src, bool big_endian, bool fortran_order, Index rows, Index cols,
                      Scalar* out) {
  using Decoder = ElementDecoder<Source>;
  if (!fortran_order) {
    const Index count = rows * cols;
    for (Index k = 0; k < count; ++k, src += Decoder::size) {
      out[k] = static_cast<Scalar>(Decoder::decode(src, big_endian));
    }
  } else {
    // Fortran order stores column by column: element (r, c) is number c * rows + r.
    for (Index c = 0; c < cols; ++c) {
      for (Index r = 0; r < rows; ++r, src += Decoder::size) {
        out[r * cols + c] = static_cast<Scalar>(Decoder::decode(src, big_endian));
      }
    }
  }
}

/// Decodes the data of a validated header into row-major rows x cols `out`.
template <typename Scalar>
void decode_npy_data(const NpyHeader& header, const unsigned char* src, Index rows, Index cols, Scalar* out,
                     const std::string& path) {
  if (rows == 0 || cols == 0) return;
  const bool be = header.big_endian;
  const bool fortran = header.fortran_order;
  using Kind = NpyHeader::Kind;

  // Same type, host byte order, C order: the bytes are already the result.
  const bool same_type = header.kind == Kind::Float && static_cast<std::size_t>(header.item_size) == sizeof(Scalar) &&
                         (std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>);
  if (same_type && !fortran && be != host_is_little_endian()) {
    std::memcpy(out, src, static_cast<std::size_t>(rows * cols) * sizeof(Scalar));
    return;
  }

  switch (header.kind) {
    case Kind::Float:
      if (header.item_size == 2) return convert_elements<Half>(src, be, fortran, rows, cols, out);
      if (header.item_size == 4) return convert_elements<float>(src, be, fortran, rows, cols, out);
      if (header.item_size == 8) return convert_elements<double>(src, be, fortran, rows, cols, out);
      break;
    case Kind::SignedInt:
      if (header.item_size == 1) return convert_elements<std::int8_t>(src, be, fortran, rows, cols, out);
      if (header.item_size == 2) return convert_elements<std::int16_t>(src, be, fortran, rows, cols, out);
      if (header.item_size == 4) return convert_elements<std::int32_t>(src, be, fortran, rows, cols, out);
      if (header.item_size == 8) return convert_elements<std::int64_t>(src, be, fortran, rows, cols, out);
      break;
    case Kind::UnsignedInt:
      if (header.item_size == 1) return convert_elements<std::uint8_t>(src, be, fortran, rows, cols, out);
      if (header.item_size == 2) return convert_elements<std::uint16_t>(src, be, fortran, rows, cols, out);
      if (header.item_size == 4) return convert_elements<std::uint32_t>(src, be, fortran, rows, cols, out);
      if (header.item_size == 8) return convert_elements<std::uint64_t>(src, be, fortran, rows, cols, out);
      break;
    case Kind::Bool:
      if (header.item_size == 1) return convert_elements<Bool8>(src, be, fortran, rows, cols, out);
      break;
  }
  npy_fail(path, "unsupported dtype " + quote_bytes(header.descr));  // only for a hand-made NpyHeader
}

// ---------------------------------------------------------------------------
// Writing

/// The preamble numpy would write (up to its optional growth padding): version
/// 1.0 unless the header needs more than 65535 bytes, padded with spaces and
/// '\n' so the data starts at a multiple of 64.
inline std::string npy_preamble(const std::string& descr, bool fortran_order, const std::vector<std::uint64_t>& shape) {
  const std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran_order ? "True" : "False") +
                           ", 'shape': " + format_shape(shape) + ", }";
  constexpr std::size_t alignment = 64;
  const auto padded_length = [&](std::size_t header_offset) {
    const std::size_t unpadded = header_offset + dict.size() + 1;  // + '\n'
    return dict.size() + 1 + (alignment - unpadded % alignment) % alignment;
  };
  const bool version2 = padded_length(10) > 0xffff;
  const std::size_t header_length = padded_length(version2 ? 12 : 10);

  std::string preamble(reinterpret_cast<const char*>(npy_magic), sizeof npy_magic);
  preamble += static_cast<char>(version2 ? 2 : 1);
  preamble += '\0';
  for (std::size_t i = 0; i < (version2 ? 4u : 2u); ++i) {
    preamble += static_cast<char>((header_length >> (8 * i)) & 0xff);
  }
  preamble += dict;
  preamble.append(header_length - dict.size() - 1, ' ');
  preamble += '\n';
  return preamble;
}

template <typename Scalar>
void write_little_endian(std::ostream& out, const Scalar* values, std::size_t count) {
  if (count == 0) return;
  if (host_is_little_endian()) {
    out.write(reinterpret_cast<const char*>(values), static_cast<std::streamsize>(count * sizeof(Scalar)));
    return;
  }
  // Big-endian host: reverse each element's bytes, a block at a time.
  constexpr std::size_t block = 512;
  char buffer[block * sizeof(Scalar)];
  for (std::size_t start = 0; start < count; start += block) {
    const std::size_t n = std::min(block, count - start);
    for (std::size_t k = 0; k < n; ++k) {
      const auto* bytes = reinterpret_cast<const char*>(values + start + k);
      for (std::size_t b = 0; b < sizeof(Scalar); ++b) buffer[k * sizeof(Scalar) + b] = bytes[sizeof(Scalar) - 1 - b];
    }
    out.write(buffer, static_cast<std::streamsize>(n * sizeof(Scalar)));
  }
}

/// A name for a temporary file that no other writer, thread or process, picks.
inline std::string unique_temp_suffix() {
  static std::atomic<std::uint64_t> counter{0};
  std::random_device device;
  const std::uint64_t random = (static_cast<std::uint64_t>(device()) << 32) ^ device();
  char text[48];
  std::snprintf(text, sizeof text, "%016llx.%llu", static_cast<unsigned long long>(random),
                static_cast<unsigned long long>(counter.fetch_add(1)));
  return text;
}

/// Writes through `write_contents(std::ostream&)` to a temporary file next to
/// `path`, then renames it over `path`: readers see the old file or the whole
/// new one, never a part. On any failure the temporary file is removed.
template <typename WriteContents>
void write_file_atomically(const std::string& path, WriteContents write_contents) {
  if (path.empty()) throw std::runtime_error("save_npy: the path is empty");
  const std::string temp_path = path + ".tmp." + unique_temp_suffix();
  std::ofstream out(temp_path, std::ios::binary | std::ios::trunc);
  if (!out) {
    const int error_number = errno;
    npy_fail(path, "cannot create the temporary file " + temp_path + ": " + system_error_text(error_number));
  }
  try {
    write_contents(out);
    out.flush();
    if (!out) npy_fail(path, "writing " + temp_path + " failed (disk full?)");
    out.close();
    if (out.fail()) npy_fail(path, "closing " + temp_path + " failed (disk full?)");
    if (std::rename(temp_path.c_str(), path.c_str()) != 0) {
      const int error_number = errno;
      npy_fail(path, "cannot rename " + temp_path + " over it: " + system_error_text(error_number));
    }
  } catch (...) {
    if (out.is_open()) out.close();
    std::remove(temp_path.c_str());
    throw;
  }
}

}  // namespace detail

/// Reads and validates the header of the .npy file at `path` (the preamble
/// only; the data is not read, but its size is checked against the file's).
inline NpyHeader read_npy_header(const std::string& path) {
  std::ifstream in = detail::open_for_reading(path);
  std::error_code size_error;
  const std::uintmax_t size = std::filesystem::file_size(path, size_error);
  if (size_error) detail::npy_fail(path, "cannot determine the file size: " + size_error.message());

  // The fixed part says how long the header is; then read exactly the preamble.
  std::vector<unsigned char> preamble(static_cast<std::size_t>(std::min<std::uintmax_t>(size, 12)));
  detail::read_exactly(in, preamble.data(), preamble.size(), path);
  const detail::NpyPreamble layout = detail::parse_npy_preamble(preamble.data(), size, path);
  const std::size_t read_so_far = preamble.size();
  preamble.resize(static_cast<std::size_t>(layout.data_offset));
  if (preamble.size() > read_so_far) {
    detail::read_exactly(in, preamble.data() + read_so_far, preamble.size() - read_so_far, path);
  }
  return parse_npy_header(preamble.data(), static_cast<std::size_t>(size), path);
}

/// load_npy for a whole .npy file held in memory, bytes [0, size) (an .npz
/// member, say); `path_for_messages` starts every error message.
template <typename Scalar>
Batch<Scalar> load_npy_from_memory(const unsigned char* bytes, std::size_t size, const std::string& path_for_messages) {
  static_assert(std::is_floating_point_v<Scalar>,
                "load_npy_from_memory<Scalar>: Scalar must be a floating-point type (float, double, long double)");
  const std::string& path = path_for_messages;
  const NpyHeader header = parse_npy_header(bytes, size, path);
  if (header.shape.size() > 2) {
    detail::npy_fail(path, "array has " + std::to_string(header.shape.size()) + " dimensions, shape " +
                               detail::format_shape(header.shape) + "; load_npy reads 0-, 1- or 2-D arrays");
  }
  // Each dimension fits in Index: the header parser refuses larger ones.
  const auto rows = header.shape.empty() ? Index{1} : static_cast<Index>(header.shape[0]);
  const auto cols = header.shape.size() < 2 ? Index{1} : static_cast<Index>(header.shape[1]);
  Batch<Scalar> result(rows, cols);
  detail::decode_npy_data(header, bytes + header.data_offset, rows, cols, result.data(), path);
  return result;
}

/// Loads a 0-, 1- or 2-D .npy array as an R x C row-major matrix: shape
/// (R, C) -> R x C, (N,) -> N x 1, () -> 1 x 1. Float, integer and bool
/// dtypes in either byte order and C or Fortran order are converted to Scalar.
/// Throws std::runtime_error, naming the file, on anything else.
template <typename Scalar>
Batch<Scalar> load_npy(const std::string& path) {
  static_assert(std::is_floating_point_v<Scalar>,
                "load_npy<Scalar>: Scalar must be a floating-point type (float, double, long double)");
  const std::vector<unsigned char> bytes = detail::read_whole_file(path);
  return load_npy_from_memory<Scalar>(bytes.data(), bytes.size(), path);
}

/// Writes `m` as a little-endian float32 ('<f4') or float64 ('<f8') C-order
/// .npy file: shape (R, C), or (N,) when `m` is a compile-time column vector.
/// Any expression works (evaluated once when its rows are not contiguous).
/// The file is replaced atomically; throws std::runtime_error naming the path.
template <typename Derived>
void save_npy(const std::string& path, const Eigen::DenseBase<Derived>& m) {
  using Scalar = typename Derived::Scalar;
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>,
                "save_npy writes float32 or float64 only: convert first, e.g. "
                "save_npy(path, m.template cast<float>())");
  using RowMajorMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  // Binds row-major storage (and vectors) in place; anything else is evaluated into it.
  const Eigen::Ref<const RowMajorMatrix, 0, Eigen::OuterStride<>> values(m.derived());

  std::vector<std::uint64_t> shape{static_cast<std::uint64_t>(values.rows())};
  if constexpr (Derived::ColsAtCompileTime != 1) shape.push_back(static_cast<std::uint64_t>(values.cols()));
  const std::string preamble = detail::npy_preamble(std::is_same_v<Scalar, float> ? "<f4" : "<f8", false, shape);

  detail::write_file_atomically(path, [&](std::ostream& out) {
    out.write(preamble.data(), static_cast<std::streamsize>(preamble.size()));
    if (values.rows() <= 1 || values.outerStride() == values.cols()) {
      detail::write_little_endian(out, values.data(), static_cast<std::size_t>(values.size()));
    } else {  // rows of a larger matrix: write them one by one
      for (Index r = 0; r < values.rows(); ++r) {
        detail::write_little_endian(out, values.data() + r * values.outerStride(),
                                    static_cast<std::size_t>(values.cols()));
      }
    }
  });
}

}  // namespace sae
