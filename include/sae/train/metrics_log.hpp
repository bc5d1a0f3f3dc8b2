// sae/train/metrics_log.hpp: a JSON-lines metrics file for plotting (one JSON
// object per line), and the small JSON writer behind it.
//
//   sae::MetricsLog log("metrics.jsonl");
//   log.write({{"step", 100}, {"loss", 0.5}, {"phase", "train"}});
//       -> {"step": 100, "loss": 0.5, "phase": "train"}
//
//   pandas.read_json("metrics.jsonl", lines=True)   # or json.loads per line
//
// Values (sae::JsonValue, converted implicitly):
//   - integers (any integral type but bool and char: int8_t is a number) are
//     written as integers, exactly: 100, -3, 18446744073709551615;
//   - double (and long double, converted to double) with the fewest digits
//     that read back as the same double (at most 17): 0.5, 0.1,
//     0.30000000000000004, 1e-300; float with the fewest that read back as
//     the same float (at most 9): 0.1f -> 0.1. A number that would look like an
//     integer gets ".0" (2.0 -> 2.0, not 2), so readers see a float;
//   - NaN and ±infinity are written as null: JSON has no NaN (Python's
//     json.dumps writes NaN, which strict parsers reject);
//   - strings (const char*, std::string, std::string_view) are escaped:
//     \" and \\, every control character below 0x20 as \u00XX; bytes that
//     are not valid UTF-8 become \ufffd, so every line is valid JSON;
//   - bool as true / false, nullptr as null.
// Numbers are formatted in the "C" locale whatever the global locale.
//
// No dependency beyond the standard library (writing JSON is simple; reading
// it is what needs a library).
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <locale>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace sae {
namespace detail {
namespace json {

/// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no
/// overlong forms, no surrogates, nothing above U+10FFFF), or 0 if there is none.
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  const auto continuation = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
    const unsigned b = byte(k);
    return i + k < s.size() && b >= lo && b <= hi;
  };
  const unsigned c = byte(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return continuation(1) ? 2 : 0;
  if (c == 0xE0) return continuation(1, 0xA0) && continuation(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return continuation(1) && continuation(2) ? 3 : 0;
  if (c == 0xED) return continuation(1, 0x80, 0x9F) && continuation(2) ? 3 : 0;  // not a surrogate
  if (c == 0xF0) return continuation(1, 0x90) && continuation(2) && continuation(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return continuation(1) && continuation(2) && continuation(3) ? 4 : 0;
  if (c == 0xF4) return continuation(1, 0x80, 0x8F) && continuation(2) && continuation(3) ? 4 : 0;
  return 0;
}

/// Appends `s` as a JSON string literal, quotes included.
inline void append_string(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned>(c));
      out += escape;
      ++i;
    } else if (const std::size_t n = utf8_sequence_length(s, i); n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\\ufffd";  // not UTF-8: the replacement character
      ++i;
    }
  }
  out += '"';
}

/// `value` in the "C" locale with `precision` significant digits (%g style).
template <typename Real>
std::string format_real(Real value, int precision) {
  std::ostringstream stream;
  stream.imbue(std::locale::classic());
  stream.precision(precision);
  stream << value;
  return stream.str();
}

template <typename Real>
bool reads_back_as(const std::string& text, Real value) {
  std::istringstream stream(text);
  stream.imbue(std::locale::classic());
  Real parsed{};
  stream >> parsed;
  return !stream.fail() && parsed == value;
}

/// The shortest JSON number that reads back as `value` (as a Real), or null.
template <typename Real>
std::string number(Real value) {
  if (!std::isfinite(value)) return "null";
  constexpr int shortest = std::numeric_limits<Real>::digits10;       // always exact that far
  constexpr int enough = std::numeric_limits<Real>::max_digits10;     // always round-trips
  std::string text;
  for (int precision = shortest; precision <= enough; ++precision) {
    text = format_real(value, precision);
    if (precision == enough || reads_back_as(text, value)) break;
  }
  if (text.find_first_not_of("-0123456789") == std::string::npos) text += ".0";  // keep it a float
  return text;
}

}  // namespace json
}  // namespace detail

/// One JSON value, already formatted (see the top of this file).
class JsonValue {
  template <typename T>
  static constexpr bool is_character =
      std::is_same_v<T, char> || std::is_same_v<T, wchar_t> || std::is_same_v<T, char16_t> ||
      std::is_same_v<T, char32_t>;  // (signed char and unsigned char, i.e. int8_t and uint8_t, are numbers)

 public:
  /// null
  JsonValue(std::nullptr_t = nullptr) : json_("null") {}

  /// char is ambiguous (a letter or a small number): cast it to int, or make it a string.
  template <typename T, std::enable_if_t<is_character<T>, int> = 0>
  JsonValue(T) = delete;

  /// An integer, written exactly.
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> && !is_character<T>, int> = 0>
  JsonValue(T value) : json_(std::to_string(value)) {}

  /// true / false
  template <typename T, std::enable_if_t<std::is_same_v<T, bool>, int> = 0>
  JsonValue(T value) : json_(value ? "true" : "false") {}

  /// A float: fewest digits that read back as the same float; NaN and ±inf -> null.
  template <typename T, std::enable_if_t<std::is_same_v<T, float>, int> = 0>
  JsonValue(T value) : json_(detail::json::number(value)) {}
  /// A double (or long double, rounded to double): fewest digits that read back exactly; NaN and ±inf -> null.
  template <typename T, std::enable_if_t<std::is_same_v<T, double> || std::is_same_v<T, long double>, int> = 0>
  JsonValue(T value) : json_(detail::json::number(static_cast<double>(value))) {}

  /// A string, escaped. A null pointer is null.
  JsonValue(const char* text) : json_(text ? std::string() : std::string("null")) {
    if (text) detail::json::append_string(json_, text);
  }
  JsonValue(std::string_view text) { detail::json::append_string(json_, text); }
  JsonValue(const std::string& text) { detail::json::append_string(json_, text); }

  /// The value as JSON text.
  const std::string& json() const { return json_; }

 private:
  std::string json_;
};

/// A key and its value.
using JsonField = std::pair<std::string, JsonValue>;

/// `{"key": value, ...}` on one line (no newline), keys escaped as strings,
/// in the given order. Throws std::invalid_argument on a repeated key (JSON
/// readers disagree on which copy wins).
inline std::string to_json_object(const JsonField* begin, const JsonField* end) {
  std::string line = "{";
  for (const JsonField* field = begin; field != end; ++field) {
    for (const JsonField* earlier = begin; earlier != field; ++earlier)
      if (earlier->first == field->first)
        throw std::invalid_argument("sae::to_json_object: the key \"" + field->first + "\" appears twice");
    if (field != begin) line += ", ";
    detail::json::append_string(line, field->first);
    line += ": ";
    line += field->second.json();
  }
  line += '}';
  return line;
}
inline std::string to_json_object(std::initializer_list<JsonField> fields) {
  return to_json_object(fields.begin(), fields.end());
}
inline std::string to_json_object(const std::vector<JsonField>& fields) {
  return to_json_object(fields.data(), fields.data() + fields.size());
}

/// A JSON-lines file: each write() appends one object and a '\n' and flushes
/// it to the operating system, so a crash of the process loses at most the
/// line being written (flushed is not fsync'ed: a power cut may lose more).
/// Not thread-safe: one writer per object.
///
/// Mode::truncate (default) starts an empty file. Mode::append keeps what is
/// there (resuming a run) and first removes an unterminated last line, left
/// by a process that died mid-write, so that every line stays one object.
///
/// Throws std::runtime_error naming the file if it cannot be opened or a
/// line cannot be written (disk full, ...); std::invalid_argument on a
/// repeated key.
class MetricsLog {
 public:
  enum class Mode { truncate, append };

  explicit MetricsLog(const std::string& path, Mode mode = Mode::truncate) : path_(path) {
    if (path.empty()) throw std::runtime_error("sae::MetricsLog: the path is empty");
    if (mode == Mode::append) drop_unterminated_line();
    errno = 0;
    out_.open(path, std::ios::out | std::ios::binary | (mode == Mode::append ? std::ios::app : std::ios::trunc));
    if (!out_.is_open()) {
      const int error = errno;
      throw std::runtime_error("sae::MetricsLog: cannot open '" + path + "' for writing" +
                               (error != 0 ? ": " + std::generic_category().message(error) : std::string()));
    }
  }

  MetricsLog(MetricsLog&&) = default;
  MetricsLog& operator=(MetricsLog&&) = default;

  /// Appends `{"key": value, ...}\n` and flushes.
  void write(std::initializer_list<JsonField> fields) { write_line(to_json_object(fields)); }
  void write(const std::vector<JsonField>& fields) { write_line(to_json_object(fields)); }

  const std::string& path() const { return path_; }

 private:
  void write_line(std::string line) {
    line += '\n';
    out_.write(line.data(), static_cast<std::streamsize>(line.size()));
    out_.flush();
    if (!out_) throw std::runtime_error("sae::MetricsLog: writing to '" + path_ + "' failed");
  }

  // Cuts the file back to just after its last '\n' (or to nothing).
  void drop_unterminated_line() const {
    namespace fs = std::filesystem;
    std::error_code error;
    const auto size = fs::file_size(path_, error);
    if (error || size == 0) return;  // absent (created by open) or empty
    std::ifstream in(path_, std::ios::binary);
    if (!in) throw std::runtime_error("sae::MetricsLog: cannot read '" + path_ + "' to append to it");
    std::uintmax_t keep = 0;
    std::uintmax_t end = size;
    char buffer[4096];
    while (end > 0) {
      const std::uintmax_t start = end > sizeof buffer ? end - sizeof buffer : 0;
      const auto n = static_cast<std::size_t>(end - start);
      in.seekg(static_cast<std::streamoff>(start));
      if (!in.read(buffer, static_cast<std::streamsize>(n)))
        throw std::runtime_error("sae::MetricsLog: cannot read '" + path_ + "' to append to it");
      bool found = false;
      for (std::size_t k = n; k-- > 0 && !found;)
        if (buffer[k] == '\n') {
          found = true;
          keep = start + k + 1;
        }
      if (found) break;
      end = start;
    }
    in.close();
    if (keep == size) return;
    fs::resize_file(path_, keep, error);
    if (error)
      throw std::runtime_error("sae::MetricsLog: cannot remove the unterminated last line of '" + path_ +
                               "': " + error.message());
  }

  std::string path_;
  std::ofstream out_;
};

}  // namespace sae
