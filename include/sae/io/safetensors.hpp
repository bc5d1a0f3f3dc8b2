// sae/io/safetensors.hpp: safetensors files (Hugging Face) to and from Eigen.
//
// The format: an 8-byte little-endian u64 N, then N bytes of JSON,
//     {"W_enc": {"dtype": "F32", "shape": [16, 64], "data_offsets": [0, 4096]}, ...,
//      "__metadata__": {"format": "pt"}}
// then the data buffer. Offsets are relative to the buffer's start; tensors
// are row-major (C order) and little-endian.
//
//   SafetensorsFile f("sae_weights.safetensors");   // memory-mapped, validated
//   f.names(); f.metadata(); f.info("W_enc").shape;
//   sae::Batch<float> W = f.read<float>("W_enc");   // 0-D -> 1 x 1, [N] -> N x 1, [R, C] -> R x C
//   f.read_into("b_enc", p.b_enc);                  // fixed sizes checked, dynamic ones resized
//
//   SafetensorsWriter w;
//   w.add("W_enc", p.W_enc);                        // F32 or F64, from the Scalar
//   w.add("W_dec", p.W_dec, SafetensorsDtype::BF16);  // rounded to nearest, ties to even
//   w.set_metadata("format", "pt");
//   w.write("out.safetensors");                     // atomic: temp file, then rename
//
// Reading converts F64, F32, F16, BF16, the integer dtypes (I8..I64, U8..U64;
// 64-bit values beyond 2^53 round) and BOOL to float or double. The 8-bit and
// smaller float formats (F8_*, F6_*, F4) and C64 are validated and listed, but
// reading them throws: sae has no use for them yet.
//
// Validation follows the official library (safetensors 0.8, Rust): the header
// is at most 100,000,000 bytes, JSON, an object; each entry has a known dtype,
// a shape of non-negative integers whose byte size does not overflow, and
// data_offsets [begin, end] holding exactly that many bytes; sorted by offset,
// the tensors must cover the data buffer exactly, with no gap or overlap, to
// the end of the file. `__metadata__` is null or an object of strings. We are
// stricter in one place: a key that appears twice in one JSON object (two
// tensors of the same name, say) is an error, where serde_json keeps the last.
// Every problem is a std::runtime_error whose message starts with the path,
// e.g. "model.safetensors: tensor 'W_enc' has data_offsets [0, 12] ...".
//
// Needs nlohmann/json (CMake: link sae::io instead of sae::sae) and POSIX mmap
// for reading without a copy (elsewhere the file is read into memory).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../config.hpp"
#include "../core/types.hpp"
#include "file_bytes.hpp"
#include "npy.hpp"  // detail::half_to_float, convert_elements, quote_bytes, write_file_atomically

namespace sae {

/// The element types of the format, in the official library's order (by
/// alignment): the writer sorts tensors by this order, largest first.
enum class SafetensorsDtype {
  BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0,
  I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64,
};

/// What the header says about one tensor, validated.
struct SafetensorsTensorInfo {
  SafetensorsDtype dtype = SafetensorsDtype::F32;
  std::vector<std::uint64_t> shape;   ///< empty for a 0-d (scalar) tensor
  std::uint64_t element_count = 0;    ///< product of `shape` (1 for 0-d)
  std::uint64_t begin = 0;            ///< data_offsets, relative to the data buffer
  std::uint64_t end = 0;
};

namespace detail {

struct SafetensorsDtypeTraits {
  SafetensorsDtype dtype;
  const char* name;
  unsigned bits;
};

inline constexpr SafetensorsDtypeTraits safetensors_dtypes[] = {
    {SafetensorsDtype::BOOL, "BOOL", 8},       {SafetensorsDtype::F4, "F4", 4},
    {SafetensorsDtype::F6_E2M3, "F6_E2M3", 6}, {SafetensorsDtype::F6_E3M2, "F6_E3M2", 6},
    {SafetensorsDtype::U8, "U8", 8},           {SafetensorsDtype::I8, "I8", 8},
    {SafetensorsDtype::F8_E5M2, "F8_E5M2", 8}, {SafetensorsDtype::F8_E4M3, "F8_E4M3", 8},
    {SafetensorsDtype::F8_E8M0, "F8_E8M0", 8}, {SafetensorsDtype::I16, "I16", 16},
    {SafetensorsDtype::U16, "U16", 16},        {SafetensorsDtype::F16, "F16", 16},
    {SafetensorsDtype::BF16, "BF16", 16},      {SafetensorsDtype::I32, "I32", 32},
    {SafetensorsDtype::U32, "U32", 32},        {SafetensorsDtype::F32, "F32", 32},
    {SafetensorsDtype::C64, "C64", 64},        {SafetensorsDtype::F64, "F64", 64},
    {SafetensorsDtype::I64, "I64", 64},        {SafetensorsDtype::U64, "U64", 64},
};

inline const SafetensorsDtypeTraits& safetensors_dtype_traits(SafetensorsDtype dtype) {
  return safetensors_dtypes[static_cast<std::size_t>(dtype)];
}

/// The official library refuses headers above this size (and so do we).
inline constexpr std::uint64_t safetensors_max_header_bytes = 100'000'000;

/// Real headers nest three levels; this only stops pathological input.
inline constexpr std::size_t safetensors_max_json_depth = 64;

/// "[16, 64]"
inline std::string format_list(const std::vector<std::uint64_t>& values) {
  std::string text = "[";
  for (std::size_t i = 0; i < values.size(); ++i) text += (i > 0 ? ", " : "") + std::to_string(values[i]);
  return text + "]";
}

// ---------------------------------------------------------------------------
// 16-bit floats

/// bfloat16 bits -> float: the top half of a binary32, so exact for every input.
inline float bfloat16_to_float(std::uint16_t bits) { return bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }

/// Rounds `value` to a 16-bit binary float with `mantissa_bits` stored
/// fraction bits and `exponent_bits` exponent bits (binary16: 10, 5; bfloat16:
/// 7, 8), to nearest with ties to even, as IEEE 754 does by default: values
/// past the largest finite one by half a step or more become infinity, tiny
/// ones become subnormals or signed zero. NaN stays NaN (quiet, top payload
/// bits kept). Rounding straight from double avoids double rounding through float.
inline std::uint16_t round_to_float16_format(double value, int mantissa_bits, int exponent_bits) {
  const std::uint32_t sign = std::signbit(value) ? 0x8000u : 0u;
  const std::uint32_t infinity_bits = ((1u << exponent_bits) - 1u) << mantissa_bits;
  if (std::isnan(value)) {
    const std::uint64_t payload = (bit_cast<std::uint64_t>(value) & 0x000fffffffffffffull) >> (52 - mantissa_bits);
    return static_cast<std::uint16_t>(sign | infinity_bits | (1u << (mantissa_bits - 1)) | payload);
  }
  const double magnitude = std::fabs(value);
  if (std::isinf(magnitude)) return static_cast<std::uint16_t>(sign | infinity_bits);
  if (magnitude == 0) return static_cast<std::uint16_t>(sign);

  const int bias = (1 << (exponent_bits - 1)) - 1;
  int frexp_exponent = 0;
  std::frexp(magnitude, &frexp_exponent);
  const int exponent = frexp_exponent - 1;  // magnitude in [2^exponent, 2^(exponent + 1))
  if (exponent > bias) return static_cast<std::uint16_t>(sign | infinity_bits);
  const int min_normal_exponent = 1 - bias;
  // The spacing of representable values around `magnitude` is 2^quantum.
  const int quantum = std::max(exponent, min_normal_exponent) - mantissa_bits;
  const double scaled = std::ldexp(magnitude, -quantum);  // exact: a power-of-two scaling within range
  double steps = std::floor(scaled);
  const double remainder = scaled - steps;                // exact
  if (remainder > 0.5 || (remainder == 0.5 && std::fmod(steps, 2.0) != 0.0)) steps += 1.0;
  const auto n = static_cast<std::uint32_t>(steps);       // at most 2^(mantissa_bits + 1)
  if (exponent < min_normal_exponent) {
    // Subnormal: the bits are n itself (n == 2^mantissa_bits is the smallest normal, same bits).
    return static_cast<std::uint16_t>(sign | n);
  }
  // Normal: n's leading 1 adds into the exponent field, and so does a carry from rounding up.
  const std::uint32_t bits = (static_cast<std::uint32_t>(exponent + bias - 1) << mantissa_bits) + n;
  return static_cast<std::uint16_t>(sign | std::min(bits, infinity_bits));
}

/// IEEE binary16 bits nearest to `value` (ties to even).
inline std::uint16_t float_to_half(double value) { return round_to_float16_format(value, 10, 5); }

/// bfloat16 bits nearest to `value` (ties to even), as torch's .to(torch.bfloat16).
inline std::uint16_t float_to_bfloat16(double value) { return round_to_float16_format(value, 7, 8); }

/// Decodes `count` little-endian elements of `dtype` from `src` into `out`.
/// Returns false for a dtype it cannot convert.
template <typename Scalar>
bool decode_safetensors_elements(SafetensorsDtype dtype, const unsigned char* src, Index count, Scalar* out) {
  if (count == 0) return true;
  using D = SafetensorsDtype;
  const bool same_type = (dtype == D::F32 && std::is_same_v<Scalar, float>) ||
                         (dtype == D::F64 && std::is_same_v<Scalar, double>);
  if (same_type && host_is_little_endian()) {
    std::memcpy(out, src, static_cast<std::size_t>(count) * sizeof(Scalar));
    return true;
  }
  // convert_elements (npy.hpp) handles one row of `count` little-endian elements.
  switch (dtype) {
    case D::F64: convert_elements<double>(src, false, false, 1, count, out); return true;
    case D::F32: convert_elements<float>(src, false, false, 1, count, out); return true;
    case D::F16: convert_elements<Half>(src, false, false, 1, count, out); return true;
    case D::BF16:
      for (Index k = 0; k < count; ++k, src += 2) {
        out[k] = static_cast<Scalar>(bfloat16_to_float(load_unsigned<std::uint16_t>(src, false)));
      }
      return true;
    case D::I8: convert_elements<std::int8_t>(src, false, false, 1, count, out); return true;
    case D::I16: convert_elements<std::int16_t>(src, false, false, 1, count, out); return true;
    case D::I32: convert_elements<std::int32_t>(src, false, false, 1, count, out); return true;
    case D::I64: convert_elements<std::int64_t>(src, false, false, 1, count, out); return true;
    case D::U8: convert_elements<std::uint8_t>(src, false, false, 1, count, out); return true;
    case D::U16: convert_elements<std::uint16_t>(src, false, false, 1, count, out); return true;
    case D::U32: convert_elements<std::uint32_t>(src, false, false, 1, count, out); return true;
    case D::U64: convert_elements<std::uint64_t>(src, false, false, 1, count, out); return true;
    case D::BOOL: convert_elements<Bool8>(src, false, false, 1, count, out); return true;
    default: return false;
  }
}

}  // namespace detail

/// The dtype's name as the format writes it: "F32", "BF16", ...
inline const char* safetensors_dtype_name(SafetensorsDtype dtype) { return detail::safetensors_dtype_traits(dtype).name; }

/// Bits per element: 64, 32, 16, 8, 6 or 4.
inline unsigned safetensors_dtype_bits(SafetensorsDtype dtype) { return detail::safetensors_dtype_traits(dtype).bits; }

/// The dtype called `name` ("F32", ...), or false if the format has none.
inline bool parse_safetensors_dtype(const std::string& name, SafetensorsDtype& dtype) {
  for (const auto& traits : detail::safetensors_dtypes) {
    if (name == traits.name) {
      dtype = traits.dtype;
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------
// Reading

/// A validated safetensors file, memory-mapped; tensors are decoded on request.
class SafetensorsFile {
 public:
  /// Maps and validates the file at `path`.
  explicit SafetensorsFile(const std::string& path) : SafetensorsFile(detail::FileBytes::map(path)) {}

  /// The same as the constructor.
  static SafetensorsFile open(const std::string& path) { return SafetensorsFile(path); }

  /// Validates a file held in memory; `name_for_messages` starts every error message.
  static SafetensorsFile from_bytes(std::vector<unsigned char> bytes, std::string name_for_messages) {
    return SafetensorsFile(detail::FileBytes::own(std::move(bytes), std::move(name_for_messages)));
  }

  /// The path (or the name given to from_bytes).
  const std::string& path() const { return bytes_.path(); }

  /// The tensors' names in the order of their data in the file.
  std::vector<std::string> names() const {
    std::vector<std::string> result;
    result.reserve(tensors_.size());
    for (const auto& tensor : tensors_) result.push_back(tensor.first);
    return result;
  }

  std::size_t size() const { return tensors_.size(); }
  bool has(const std::string& name) const { return index_.count(name) != 0; }

  /// `__metadata__`: free-form strings (empty when the file has none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  /// The dtype, shape and offsets of tensor `name`; throws if there is none.
  const SafetensorsTensorInfo& info(const std::string& name) const { return find(name); }

  /// Throws std::runtime_error unless tensor `name` has exactly `shape`.
  void check_shape(const std::string& name, const std::vector<std::uint64_t>& shape) const {
    const SafetensorsTensorInfo& tensor = find(name);
    if (tensor.shape != shape) {
      fail("tensor " + detail::quote_bytes(name) + " has shape " + detail::format_list(tensor.shape) + ", expected " +
           detail::format_list(shape));
    }
  }

  /// A 0-, 1- or 2-D tensor as a row-major matrix: [] -> 1 x 1, [N] -> N x 1,
  /// [R, C] -> R x C, converted to Scalar.
  template <typename Scalar>
  Batch<Scalar> read(const std::string& name) const {
    static_assert(std::is_floating_point_v<Scalar>, "SafetensorsFile::read<Scalar>: Scalar must be floating point");
    Batch<Scalar> result;
    read_into(name, result);
    return result;
  }

  /// A tensor's elements in row-major order, whatever its rank, as a vector.
  template <typename Scalar>
  Vector<Scalar> read_flat(const std::string& name) const {
    static_assert(std::is_floating_point_v<Scalar>, "SafetensorsFile::read_flat<Scalar>: Scalar must be floating point");
    const SafetensorsTensorInfo& tensor = find(name);
    Vector<Scalar> result(static_cast<Index>(tensor.element_count));
    decode(name, tensor, result.data());
    return result;
  }

  /// Reads a 0-, 1- or 2-D tensor into an Eigen matrix, vector or array of any
  /// storage order. Fixed dimensions must match (else std::runtime_error);
  /// dynamic ones are resized. A 1-D tensor [N] is N x 1, or 1 x N for a
  /// compile-time row vector; a compile-time vector also takes [1, N] or [N, 1].
  template <typename Derived>
  void read_into(const std::string& name, Eigen::PlainObjectBase<Derived>& out) const {
    using Scalar = typename Derived::Scalar;
    static_assert(std::is_floating_point_v<Scalar>, "SafetensorsFile::read_into: the target must hold floating point");
    const SafetensorsTensorInfo& tensor = find(name);
    if (tensor.shape.size() > 2) {
      fail("tensor " + detail::quote_bytes(name) + " has " + std::to_string(tensor.shape.size()) + " dimensions, shape " +
           detail::format_list(tensor.shape) + "; read and read_into take 0-, 1- or 2-D tensors (read_flat takes any)");
    }
    // Each dimension fits in Index: the header validation refuses larger ones.
    Index rows = tensor.shape.empty() ? 1 : static_cast<Index>(tensor.shape[0]);
    Index cols = tensor.shape.size() < 2 ? 1 : static_cast<Index>(tensor.shape[1]);
    constexpr int fixed_rows = Derived::RowsAtCompileTime;
    constexpr int fixed_cols = Derived::ColsAtCompileTime;
    if ((fixed_rows == 1 || fixed_cols == 1) && (rows == 1 || cols == 1)) {  // same element order either way
      const Index length = rows * cols;
      rows = fixed_rows == 1 ? 1 : length;
      cols = fixed_rows == 1 ? length : 1;
    }
    if ((fixed_rows != Eigen::Dynamic && fixed_rows != rows) || (fixed_cols != Eigen::Dynamic && fixed_cols != cols)) {
      const auto dimension = [](int n) { return n == Eigen::Dynamic ? std::string("any") : std::to_string(n); };
      fail("tensor " + detail::quote_bytes(name) + " has shape " + detail::format_list(tensor.shape) +
           ", but the target's fixed size is [" + dimension(fixed_rows) + ", " + dimension(fixed_cols) + "]");
    }
    out.resize(rows, cols);
    if (Derived::IsRowMajor || rows == 1 || cols == 1) {  // the storage is row-major order already
      decode(name, tensor, out.data());
    } else {
      Batch<Scalar> row_major(rows, cols);
      decode(name, tensor, row_major.data());
      out = row_major;
    }
  }

 private:
  explicit SafetensorsFile(detail::FileBytes bytes) : bytes_(std::move(bytes)) { parse(); }

  [[noreturn]] void fail(const std::string& what) const { detail::npy_fail(path(), what); }

  const SafetensorsTensorInfo& find(const std::string& name) const {
    const auto it = index_.find(name);
    if (it == index_.end()) {
      std::string known;
      for (std::size_t i = 0; i < tensors_.size() && i < 20; ++i) {
        known += (i > 0 ? ", " : "") + detail::quote_bytes(tensors_[i].first);
      }
      if (tensors_.size() > 20) known += ", ...";
      fail("no tensor named " + detail::quote_bytes(name) +
           (tensors_.empty() ? std::string(" (the file has no tensors)") : " (the file has " + known + ")"));
    }
    return tensors_[it->second].second;
  }

  template <typename Scalar>
  void decode(const std::string& name, const SafetensorsTensorInfo& tensor, Scalar* out) const {
    const unsigned char* src = bytes_.data() + data_start_ + tensor.begin;
    if (!detail::decode_safetensors_elements(tensor.dtype, src, static_cast<Index>(tensor.element_count), out)) {
      fail("tensor " + detail::quote_bytes(name) + " has dtype " + safetensors_dtype_name(tensor.dtype) +
           ", which sae does not convert to floating point (it reads F64, F32, F16, BF16, the integer dtypes and BOOL)");
    }
  }

  /// Parses the JSON, refusing a key repeated within one object (nlohmann
  /// would keep the last silently) and absurd nesting.
  nlohmann::json parse_json(const char* text, std::size_t length) const {
    std::vector<std::unordered_set<std::string>> open_objects;  // keys seen so far in each enclosing object
    const auto callback = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      using Event = nlohmann::json::parse_event_t;
      switch (event) {
        case Event::object_start:
        case Event::array_start:
          if (open_objects.size() >= detail::safetensors_max_json_depth) {
            fail("header nests JSON more than " + std::to_string(detail::safetensors_max_json_depth) + " levels deep");
          }
          open_objects.emplace_back();  // arrays get an (unused) entry too, to count depth
          break;
        case Event::object_end:
        case Event::array_end:
          if (!open_objects.empty()) open_objects.pop_back();
          break;
        case Event::key: {
          const std::string& key = parsed.get_ref<const std::string&>();
          if (!open_objects.back().insert(key).second) {
            fail(open_objects.size() == 1 ? "header names tensor " + detail::quote_bytes(key) + " twice"
                                          : "header repeats key " + detail::quote_bytes(key) + " inside one object");
          }
          break;
        }
        case Event::value:
          break;
      }
      return true;
    };
    try {
      return nlohmann::json::parse(text, text + length, callback);
    } catch (const nlohmann::json::exception& error) {
      // "[json.exception.parse_error.101] parse error at ..." -> "parse error at ..."
      std::string message = error.what();
      const std::size_t bracket = message.find("] ");
      if (message.rfind("[json.exception.", 0) == 0 && bracket != std::string::npos) message.erase(0, bracket + 2);
      fail("the header is not valid JSON: " + message);
    }
  }

  static bool as_non_negative(const nlohmann::json& value, std::uint64_t& out) {
    if (value.is_number_unsigned()) {
      out = value.get<std::uint64_t>();
      return true;
    }
    if (value.is_number_integer() && value.get<std::int64_t>() == 0) {  // "-0"
      out = 0;
      return true;
    }
    return false;
  }

  static std::string json_excerpt(const nlohmann::json& value) {
    const std::string text = value.dump();
    return text.size() > 60 ? text.substr(0, 60) + "..." : text;
  }

  SafetensorsTensorInfo parse_entry(const std::string& name, const nlohmann::json& entry) const {
    const std::string tensor = "tensor " + detail::quote_bytes(name);
    if (!entry.is_object()) fail(tensor + ": its entry is a JSON " + entry.type_name() + ", not an object");
    const auto field = [&](const char* key) -> const nlohmann::json& {
      const auto it = entry.find(key);
      if (it == entry.end()) fail(tensor + " has no \"" + key + "\"");
      return *it;
    };

    SafetensorsTensorInfo info;
    const nlohmann::json& dtype = field("dtype");
    if (!dtype.is_string()) fail(tensor + ": \"dtype\" is a JSON " + dtype.type_name() + ", not a string");
    if (!parse_safetensors_dtype(dtype.get_ref<const std::string&>(), info.dtype)) {
      fail(tensor + " has unsupported dtype " + detail::quote_bytes(dtype.get_ref<const std::string&>()));
    }

    const nlohmann::json& shape = field("shape");
    if (!shape.is_array()) fail(tensor + ": \"shape\" is a JSON " + shape.type_name() + ", not an array");
    const auto max_dimension = static_cast<std::uint64_t>(std::numeric_limits<Index>::max());
    for (const nlohmann::json& dimension : shape) {
      std::uint64_t value = 0;
      if (!as_non_negative(dimension, value)) {
        fail(tensor + ": \"shape\" entries must be non-negative integers, not " + json_excerpt(dimension));
      }
      if (value > max_dimension) fail(tensor + ": dimension " + std::to_string(value) + " in \"shape\" is too large");
      info.shape.push_back(value);
    }

    const nlohmann::json& offsets = field("data_offsets");
    if (!offsets.is_array() || offsets.size() != 2 || !as_non_negative(offsets[0], info.begin) ||
        !as_non_negative(offsets[1], info.end)) {
      fail(tensor + ": \"data_offsets\" must be [begin, end], two non-negative integers, not " + json_excerpt(offsets));
    }

    // Bits, as the official library counts (sub-byte dtypes must fill whole bytes).
    // A zero dimension makes the tensor empty, but the others must still multiply without overflow.
    const std::uint64_t bits = safetensors_dtype_bits(info.dtype);
    constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t product = 1;
    bool empty = false;
    for (const std::uint64_t dimension : info.shape) {
      if (dimension == 0) {
        empty = true;
      } else if (product > max_u64 / bits / dimension) {
        fail(tensor + " is too large: shape " + detail::format_list(info.shape) + " of " +
             safetensors_dtype_name(info.dtype) + " overflows 64 bits");
      } else {
        product *= dimension;
      }
    }
    info.element_count = empty ? 0 : product;
    const std::uint64_t total_bits = info.element_count * bits;
    if (total_bits % 8 != 0) {
      fail(tensor + ": shape " + detail::format_list(info.shape) + " of " + safetensors_dtype_name(info.dtype) +
           " is " + std::to_string(total_bits) + " bits, not a whole number of bytes");
    }
    if (info.begin > info.end) {
      fail(tensor + " has data_offsets " + detail::format_list({info.begin, info.end}) + ": the end is before the beginning");
    }
    if (info.end - info.begin != total_bits / 8) {
      fail(tensor + " has data_offsets " + detail::format_list({info.begin, info.end}) + " (" +
           std::to_string(info.end - info.begin) + " bytes), but shape " + detail::format_list(info.shape) + " of " +
           safetensors_dtype_name(info.dtype) + " needs " + std::to_string(total_bits / 8) + " bytes");
    }
    return info;
  }

  void parse() {
    const std::uint64_t size = bytes_.size();
    const unsigned char* data = bytes_.data();
    if (size < 8) {
      fail("not a safetensors file: it is " + std::to_string(size) +
           " bytes, too short for the 8-byte header length");
    }
    std::uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | data[i];
    if (header_length > detail::safetensors_max_header_bytes) {
      fail("header length " + std::to_string(header_length) + " is over the limit of " +
           std::to_string(detail::safetensors_max_header_bytes) + " bytes (not a safetensors file?)");
    }
    if (header_length > size - 8) {
      fail("header length " + std::to_string(header_length) + " runs past the end of the file (" +
           std::to_string(size) + " bytes)");
    }
    data_start_ = 8 + header_length;
    const char* text = reinterpret_cast<const char*>(data + 8);
    // nlohmann skips a UTF-8 byte order mark; the format (and serde_json) has none.
    if (header_length >= 3 && std::memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
      fail("the header starts with a UTF-8 byte order mark, which the format does not allow");
    }
    // nlohmann stops at a NUL as if the input ended there; JSON (and serde_json) has no NUL outside strings.
    if (const void* nul = std::memchr(text, 0, static_cast<std::size_t>(header_length))) {
      fail("the header is not valid JSON: it has a NUL byte at offset " +
           std::to_string(static_cast<const char*>(nul) - text));
    }
    const nlohmann::json header = parse_json(text, static_cast<std::size_t>(header_length));
    if (!header.is_object()) fail(std::string("the header is a JSON ") + header.type_name() + ", not an object");

    for (const auto& [key, value] : header.items()) {
      if (key == "__metadata__") {
        if (value.is_null()) continue;
        if (!value.is_object()) fail(std::string("\"__metadata__\" is a JSON ") + value.type_name() + ", not an object");
        for (const auto& [meta_key, meta_value] : value.items()) {
          if (!meta_value.is_string()) {
            fail("\"__metadata__\" value for " + detail::quote_bytes(meta_key) + " is a JSON " + meta_value.type_name() +
                 ", not a string");
          }
          metadata_.emplace(meta_key, meta_value.get<std::string>());
        }
        continue;
      }
      tensors_.emplace_back(key, parse_entry(key, value));
    }

    // Sorted by offsets, the tensors must tile the data buffer exactly.
    std::sort(tensors_.begin(), tensors_.end(), [](const auto& a, const auto& b) {
      return std::tie(a.second.begin, a.second.end, a.first) < std::tie(b.second.begin, b.second.end, b.first);
    });
    const std::uint64_t buffer_size = size - data_start_;
    std::uint64_t covered = 0;  // the end of the previous tensor
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      const auto& [name, info] = tensors_[i];
      const std::string where = detail::format_list({info.begin, info.end});
      if (info.begin < covered) {
        fail("tensor " + detail::quote_bytes(name) + " at data_offsets " + where + " overlaps tensor " +
             detail::quote_bytes(tensors_[i - 1].first) + " (which ends at " + std::to_string(covered) + ")");
      }
      if (info.begin > covered) {
        fail("bytes [" + std::to_string(covered) + ", " + std::to_string(info.begin) +
             ") of the data buffer belong to no tensor (a gap before tensor " + detail::quote_bytes(name) +
             "); the tensors must cover the buffer exactly");
      }
      if (info.end > buffer_size) {
        fail("tensor " + detail::quote_bytes(name) + " has data_offsets " + where +
             " past the end of the data buffer (" + std::to_string(buffer_size) + " bytes)");
      }
      covered = info.end;
    }
    if (covered != buffer_size) {
      fail("the last " + std::to_string(buffer_size - covered) + " bytes of the data buffer belong to no tensor (" +
           (tensors_.empty() ? std::string("there are no tensors") : "the last tensor ends at " + std::to_string(covered)) +
           ", the buffer at " + std::to_string(buffer_size) + "); the tensors must cover the buffer exactly");
    }
    for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].first, i);
  }

  detail::FileBytes bytes_;
  std::uint64_t data_start_ = 0;  ///< 8 + header length
  std::map<std::string, std::string> metadata_;
  std::vector<std::pair<std::string, SafetensorsTensorInfo>> tensors_;  ///< in offset order
  std::unordered_map<std::string, std::size_t> index_;
};

// ---------------------------------------------------------------------------
// Writing

/// Collects named tensors and writes them as one safetensors file, laid out
/// as the official library's save_file does: tensors sorted by dtype (larger
/// alignment first) then by name, compact JSON with "__metadata__" first
/// (its keys sorted), padded with spaces to a multiple of 8 bytes.
///
/// `add` copies the values (encoded), so the sources may go away before `write`.
class SafetensorsWriter {
 public:
  /// Adds `values` as F32 (float) or F64 (double). A compile-time column
  /// vector is stored 1-D, [N]; anything else 2-D, [R, C].
  template <typename Derived>
  SafetensorsWriter& add(const std::string& name, const Eigen::DenseBase<Derived>& values) {
    using Scalar = typename Derived::Scalar;
    return add(name, values, std::is_same_v<Scalar, float> ? SafetensorsDtype::F32 : SafetensorsDtype::F64);
  }

  /// Adds `values` stored as `dtype`: F64, F32, F16 or BF16 (rounded to nearest, ties to even).
  template <typename Derived>
  SafetensorsWriter& add(const std::string& name, const Eigen::DenseBase<Derived>& values, SafetensorsDtype dtype) {
    std::vector<std::uint64_t> shape{static_cast<std::uint64_t>(values.rows())};
    if constexpr (Derived::ColsAtCompileTime != 1) shape.push_back(static_cast<std::uint64_t>(values.cols()));
    return add(name, values, std::move(shape), dtype);
  }

  /// Adds `values` with an explicit `shape` (e.g. {} for a scalar, or 3-D),
  /// whose product must be values.size(); elements are taken in row-major order.
  template <typename Derived>
  SafetensorsWriter& add(const std::string& name, const Eigen::DenseBase<Derived>& values,
                         std::vector<std::uint64_t> shape, SafetensorsDtype dtype) {
    using Scalar = typename Derived::Scalar;
    static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>,
                  "SafetensorsWriter::add takes float or double values: convert first, e.g. m.template cast<float>()");
    check_new_name(name);
    const auto size = static_cast<std::uint64_t>(values.size());
    const bool has_zero = std::find(shape.begin(), shape.end(), std::uint64_t{0}) != shape.end();
    bool fits = size == 0 ? has_zero : !has_zero;
    if (fits && size > 0) {  // multiply without overflow: stop once the product passes `size`
      std::uint64_t count = 1;
      for (const std::uint64_t dimension : shape) {
        fits = count <= size / dimension;
        if (!fits) break;
        count *= dimension;
      }
      fits = fits && count == size;
    }
    if (!fits) {
      throw std::invalid_argument("SafetensorsWriter::add: shape " + detail::format_list(shape) + " of tensor " +
                                  detail::quote_bytes(name) + " does not hold its " + std::to_string(values.size()) +
                                  " values");
    }
    const unsigned width = safetensors_dtype_bits(dtype) / 8;
    if (dtype != SafetensorsDtype::F64 && dtype != SafetensorsDtype::F32 && dtype != SafetensorsDtype::F16 &&
        dtype != SafetensorsDtype::BF16) {
      throw std::invalid_argument(std::string("SafetensorsWriter::add: cannot write dtype ") +
                                  safetensors_dtype_name(dtype) + " (it writes F64, F32, F16 and BF16)");
    }

    using RowMajorMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    // Binds row-major storage in place; anything else (expressions too) is evaluated once.
    const Eigen::Ref<const RowMajorMatrix, 0, Eigen::OuterStride<>> matrix(values.derived());

    Tensor tensor;
    tensor.name = name;
    tensor.dtype = dtype;
    tensor.shape = std::move(shape);
    tensor.bytes.resize(static_cast<std::size_t>(values.size()) * width);
    unsigned char* out = tensor.bytes.data();
    const auto put = [&out](std::uint64_t bits, unsigned bytes) {
      for (unsigned b = 0; b < bytes; ++b) *out++ = static_cast<unsigned char>((bits >> (8 * b)) & 0xffu);
    };
    for (Index r = 0; r < matrix.rows(); ++r) {
      for (Index c = 0; c < matrix.cols(); ++c) {
        const Scalar value = matrix(r, c);
        switch (dtype) {
          case SafetensorsDtype::F64: put(detail::bit_cast<std::uint64_t>(static_cast<double>(value)), 8); break;
          case SafetensorsDtype::F32: put(detail::bit_cast<std::uint32_t>(static_cast<float>(value)), 4); break;
          case SafetensorsDtype::F16: put(detail::float_to_half(static_cast<double>(value)), 2); break;
          default: put(detail::float_to_bfloat16(static_cast<double>(value)), 2); break;
        }
      }
    }
    tensors_.push_back(std::move(tensor));
    return *this;
  }

  /// Sets a `__metadata__` entry (written only if there is at least one).
  SafetensorsWriter& set_metadata(const std::string& key, const std::string& value) {
    check_utf8(key, "metadata key");
    check_utf8(value, "metadata value");
    metadata_[key] = value;
    return *this;
  }

  /// The whole file, in memory.
  std::vector<unsigned char> to_bytes() const {
    const std::vector<const Tensor*> order = sorted();
    const std::string header = header_json(order);
    std::vector<unsigned char> file;
    append_length(file, header.size());
    file.insert(file.end(), header.begin(), header.end());
    for (const Tensor* tensor : order) file.insert(file.end(), tensor->bytes.begin(), tensor->bytes.end());
    return file;
  }

  /// Writes the file at `path` atomically (a temporary file, then a rename).
  /// Throws std::runtime_error naming the path.
  void write(const std::string& path) const {
    if (path.empty()) throw std::runtime_error("SafetensorsWriter::write: the path is empty");
    const std::vector<const Tensor*> order = sorted();
    const std::string header = header_json(order);
    detail::write_file_atomically(path, [&](std::ostream& out) {
      std::vector<unsigned char> length;
      append_length(length, header.size());
      out.write(reinterpret_cast<const char*>(length.data()), 8);
      out.write(header.data(), static_cast<std::streamsize>(header.size()));
      for (const Tensor* tensor : order) {
        out.write(reinterpret_cast<const char*>(tensor->bytes.data()), static_cast<std::streamsize>(tensor->bytes.size()));
      }
    });
  }

 private:
  struct Tensor {
    std::string name;
    SafetensorsDtype dtype = SafetensorsDtype::F32;
    std::vector<std::uint64_t> shape;
    std::vector<unsigned char> bytes;  ///< little-endian elements, row-major
  };

  static void check_utf8(const std::string& text, const char* what) {
    try {
      (void)nlohmann::json(text).dump();
    } catch (const nlohmann::json::exception&) {
      throw std::invalid_argument(std::string("SafetensorsWriter: ") + what + " " + detail::quote_bytes(text) +
                                  " is not valid UTF-8");
    }
  }

  void check_new_name(const std::string& name) const {
    check_utf8(name, "tensor name");
    if (name == "__metadata__") throw std::invalid_argument("SafetensorsWriter::add: \"__metadata__\" is reserved");
    for (const Tensor& tensor : tensors_) {
      if (tensor.name == name) {
        throw std::invalid_argument("SafetensorsWriter::add: tensor " + detail::quote_bytes(name) + " added twice");
      }
    }
  }

  std::vector<const Tensor*> sorted() const {
    std::vector<const Tensor*> order;
    for (const Tensor& tensor : tensors_) order.push_back(&tensor);
    std::sort(order.begin(), order.end(), [](const Tensor* a, const Tensor* b) {
      if (a->dtype != b->dtype) return a->dtype > b->dtype;
      return a->name < b->name;  // byte order, as Rust compares strings
    });
    return order;
  }

  std::string header_json(const std::vector<const Tensor*>& order) const {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    std::uint64_t offset = 0;
    for (const Tensor* tensor : order) {
      const std::uint64_t end = offset + tensor->bytes.size();
      nlohmann::ordered_json entry = nlohmann::ordered_json::object();
      entry["dtype"] = safetensors_dtype_name(tensor->dtype);
      entry["shape"] = tensor->shape;
      entry["data_offsets"] = {offset, end};
      header[tensor->name] = std::move(entry);
      offset = end;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
    if (text.size() > detail::safetensors_max_header_bytes) {
      throw std::runtime_error("SafetensorsWriter: the header would be " + std::to_string(text.size()) +
                               " bytes, over the format's limit of " +
                               std::to_string(detail::safetensors_max_header_bytes));
    }
    return text;
  }

  static void append_length(std::vector<unsigned char>& out, std::uint64_t length) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<unsigned char>((length >> (8 * i)) & 0xffu));
  }

  std::vector<Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace sae
