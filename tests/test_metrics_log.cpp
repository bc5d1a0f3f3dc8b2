// Tests for sae/train/metrics_log.hpp: exact text written by hand, and, when
// /usr/bin/python3 is there, Python's json module as the independent reader.
#include <catch2/catch.hpp>

#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>
#include <type_traits>
#include <string>
#include <vector>

#include <sae/train/metrics_log.hpp>

#include "temp_dir.hpp"

namespace fs = std::filesystem;

using sae_test::read_bytes;
using sae_test::TempDir;

namespace {


void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  REQUIRE(out.good());
}

std::string json(const sae::JsonValue& value) { return value.json(); }

// %a: the exact value, for Python's float.fromhex.
std::string hex(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%a", value);
  return buffer;
}

bool python_has_json() {
  return std::system("/usr/bin/python3 -c \"import json, struct\" >/dev/null 2>&1") == 0;
}

}  // namespace

// ---------------------------------------------------------------------------
// Values

TEST_CASE("JsonValue writes integers exactly", "[metrics_log]") {
  CHECK(json(100) == "100");
  CHECK(json(-3) == "-3");
  CHECK(json(0) == "0");
  CHECK(json(std::numeric_limits<std::int64_t>::min()) == "-9223372036854775808");
  CHECK(json(std::numeric_limits<std::uint64_t>::max()) == "18446744073709551615");
  CHECK(json(static_cast<short>(-7)) == "-7");
  CHECK(json(static_cast<std::uint8_t>(200)) == "200");  // uint8_t is a number, not a character
  CHECK(json(static_cast<std::int8_t>(-5)) == "-5");
  CHECK(json(std::size_t{42}) == "42");
  CHECK(json(true) == "true");
  CHECK(json(false) == "false");
  CHECK(json(nullptr) == "null");
  CHECK(json(sae::JsonValue()) == "null");
  // char is ambiguous (a letter or a small number) and does not convert.
  CHECK_FALSE(std::is_convertible<char, sae::JsonValue>::value);
  CHECK_FALSE(std::is_convertible<char32_t, sae::JsonValue>::value);
  CHECK(std::is_convertible<int, sae::JsonValue>::value);
  CHECK(std::is_convertible<float, sae::JsonValue>::value);
  CHECK(std::is_convertible<std::string, sae::JsonValue>::value);
}

TEST_CASE("JsonValue writes doubles with the fewest digits that read back", "[metrics_log]") {
  CHECK(json(0.5) == "0.5");
  CHECK(json(0.1) == "0.1");
  CHECK(json(0.1 + 0.2) == "0.30000000000000004");  // 17 digits needed
  CHECK(json(1.0 / 3.0) == "0.3333333333333333");   // 16 digits
  CHECK(json(2.0 / 3.0) == "0.6666666666666666");   // 16 digits
  CHECK(json(1.0 + DBL_EPSILON) == "1.0000000000000002");  // 17 digits
  CHECK(json(-1.25) == "-1.25");
  CHECK(json(1e-300) == "1e-300");
  CHECK(json(1e20) == "1e+20");
  CHECK(json(123456.0) == "123456.0");  // looks like an integer: ".0" keeps it a float
  CHECK(json(2.0) == "2.0");
  CHECK(json(-0.0) == "-0.0");
  CHECK(json(DBL_MAX) == "1.7976931348623157e+308");
  CHECK(json(static_cast<long double>(0.25)) == "0.25");
  // Subnormals read back exactly (the exact text may be shortest or 17 digits).
  for (double tiny : {5e-324, 1e-310, DBL_MIN}) {
    INFO(tiny);
    CHECK(std::strtod(json(tiny).c_str(), nullptr) == tiny);
  }
  // JSON has no NaN or infinity.
  CHECK(json(std::nan("")) == "null");
  CHECK(json(std::numeric_limits<double>::infinity()) == "null");
  CHECK(json(-std::numeric_limits<double>::infinity()) == "null");
  CHECK(json(std::numeric_limits<float>::quiet_NaN()) == "null");
}

TEST_CASE("JsonValue writes floats with the fewest digits that read back as the float", "[metrics_log]") {
  CHECK(json(0.1f) == "0.1");  // not 0.10000000149011612, the double of 0.1f
  CHECK(json(0.5f) == "0.5");
  CHECK(json(16777216.0f) == "16777216.0");
  CHECK(json(3.4028235e38f) == "3.4028235e+38");
  CHECK(json(1.0f / 3.0f) == "0.33333334");
  CHECK(json(-std::numeric_limits<float>::infinity()) == "null");
}

TEST_CASE("Random doubles and floats read back exactly", "[metrics_log]") {
  std::mt19937_64 bits(12345);
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t pattern = bits();
    double d;
    std::memcpy(&d, &pattern, sizeof d);
    const auto pattern32 = static_cast<std::uint32_t>(pattern >> 16);
    float f;
    std::memcpy(&f, &pattern32, sizeof f);
    if (std::isfinite(d)) {
      const std::string text = json(d);
      INFO(text << " for " << hex(d));
      REQUIRE(std::strtod(text.c_str(), nullptr) == d);
      REQUIRE(text.size() <= 24);
    }
    if (std::isfinite(f)) {
      const std::string text = json(f);
      INFO(text << " for " << hex(f));
      REQUIRE(std::strtof(text.c_str(), nullptr) == f);
      REQUIRE(text.size() <= 16);
    }
  }
}

TEST_CASE("JsonValue escapes strings", "[metrics_log]") {
  CHECK(json("train") == "\"train\"");
  CHECK(json(std::string("a\"b\\c/d")) == R"("a\"b\\c/d")");
  CHECK(json(std::string_view("")) == "\"\"");
  // Every control character as \u00XX; DEL (0x7f) needs no escape.
  CHECK(json(std::string("\n\t\r\b\f\x01\x1f\x7f", 8)) == "\"\\u000a\\u0009\\u000d\\u0008\\u000c\\u0001\\u001f\x7f\"");
  CHECK(json(std::string("a\0b", 3)) == "\"a\\u0000b\"");
  // Valid UTF-8 passes through: é (2 bytes), € (3), 😀 (4), U+10FFFF.
  CHECK(json("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf") ==
        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"");
  // Not UTF-8 -> U+FFFD per bad byte: a stray byte, an overlong '/', a surrogate,
  // a truncated sequence, a code point above U+10FFFF.
  CHECK(json("\xff") == "\"\\ufffd\"");
  CHECK(json("\xc0\xaf") == "\"\\ufffd\\ufffd\"");
  CHECK(json("\xed\xa0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");
  CHECK(json("x\xe2\x82") == "\"x\\ufffd\\ufffd\"");
  CHECK(json("\xf4\x90\x80\x80") == "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
  const char* no_string = nullptr;
  CHECK(json(no_string) == "null");
}

TEST_CASE("to_json_object writes one object on one line", "[metrics_log]") {
  CHECK(sae::to_json_object({{"step", 100}, {"loss", 0.5}, {"phase", "train"}}) ==
        R"({"step": 100, "loss": 0.5, "phase": "train"})");
  CHECK(sae::to_json_object({}) == "{}");
  CHECK(sae::to_json_object({{"key \"q\"\n", 1}}) == R"({"key \"q\"\u000a": 1})");
  const std::vector<sae::JsonField> fields = {{"a", 1}, {"b", std::string("x")}, {"c", nullptr}};
  CHECK(sae::to_json_object(fields) == R"({"a": 1, "b": "x", "c": null})");

  try {
    sae::to_json_object({{"loss", 1.0}, {"step", 1}, {"loss", 2.0}});
    FAIL("a repeated key was accepted");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("\"loss\" appears twice") != std::string::npos);
  }
}

// ---------------------------------------------------------------------------
// The file

TEST_CASE("MetricsLog writes and flushes one line per write", "[metrics_log]") {
  const TempDir dir("sae_test_metrics_log");
  const std::string path = dir.file("metrics.jsonl");
  sae::MetricsLog log(path);
  CHECK(log.path() == path);
  CHECK(read_bytes(path).empty());
  log.write({{"step", 100}, {"loss", 0.5}, {"phase", "train"}});
  // Flushed: on disk while the log is still open.
  CHECK(read_bytes(path) == "{\"step\": 100, \"loss\": 0.5, \"phase\": \"train\"}\n");
  log.write({{"step", 200}, {"loss", std::nan("")}, {"fvu", 0.1f}});
  CHECK(read_bytes(path) ==
        "{\"step\": 100, \"loss\": 0.5, \"phase\": \"train\"}\n"
        "{\"step\": 200, \"loss\": null, \"fvu\": 0.1}\n");
  // A rejected record writes nothing.
  CHECK_THROWS_AS(log.write({{"a", 1}, {"a", 2}}), std::invalid_argument);
  CHECK(read_bytes(path).size() == 85);

  // Moving keeps the file open.
  sae::MetricsLog moved = std::move(log);
  moved.write({});
  CHECK(read_bytes(path).substr(85) == "{}\n");
}

TEST_CASE("MetricsLog truncates by default and appends on request", "[metrics_log]") {
  const TempDir dir("sae_test_metrics_log");
  const std::string path = dir.file("m.jsonl");
  write_file(path, "{\"old\": 1}\n");
  { sae::MetricsLog log(path); }
  CHECK(read_bytes(path).empty());

  write_file(path, "{\"old\": 1}\n");
  {
    sae::MetricsLog log(path, sae::MetricsLog::Mode::append);
    log.write({{"new", 2}});
  }
  CHECK(read_bytes(path) == "{\"old\": 1}\n{\"new\": 2}\n");

  // Append to a file that does not exist yet: created.
  const std::string fresh = dir.file("fresh.jsonl");
  {
    sae::MetricsLog log(fresh, sae::MetricsLog::Mode::append);
    log.write({{"x", 1}});
  }
  CHECK(read_bytes(fresh) == "{\"x\": 1}\n");
}

TEST_CASE("MetricsLog in append mode drops an unterminated last line", "[metrics_log]") {
  const TempDir dir("sae_test_metrics_log");
  const std::string path = dir.file("crashed.jsonl");

  // A process died in the middle of line 3.
  write_file(path, "{\"step\": 1}\n{\"step\": 2}\n{\"step\": 3, \"lo");
  {
    sae::MetricsLog log(path, sae::MetricsLog::Mode::append);
    log.write({{"step", 3}});
  }
  CHECK(read_bytes(path) == "{\"step\": 1}\n{\"step\": 2}\n{\"step\": 3}\n");

  // Only a partial line: the file starts over.
  write_file(path, "{\"step\": 1, ");
  { sae::MetricsLog log(path, sae::MetricsLog::Mode::append); }
  CHECK(read_bytes(path).empty());

  // A partial line longer than the 4096-byte read buffer, after more than a buffer of good lines.
  std::string good;
  while (good.size() < 10000) good += "{\"step\": " + std::to_string(good.size()) + "}\n";
  write_file(path, good + "{\"note\": \"" + std::string(9000, 'x'));
  {
    sae::MetricsLog log(path, sae::MetricsLog::Mode::append);
    log.write({{"resumed", true}});
  }
  CHECK(read_bytes(path) == good + "{\"resumed\": true}\n");
}

TEST_CASE("MetricsLog names the file it cannot open", "[metrics_log]") {
  const TempDir dir("sae_test_metrics_log");
  const std::string missing_dir = dir.file("no/such/dir/m.jsonl");
  try {
    sae::MetricsLog log(missing_dir);
    FAIL("opened a file in a missing directory");
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    CHECK(message.find(missing_dir) != std::string::npos);
    CHECK(message.find("No such file or directory") != std::string::npos);
  }
  CHECK_THROWS_AS(sae::MetricsLog(dir.path().string()), std::runtime_error);  // a directory
  CHECK_THROWS_AS(sae::MetricsLog(dir.path().string(), sae::MetricsLog::Mode::append), std::runtime_error);
  CHECK_THROWS_AS(sae::MetricsLog(""), std::runtime_error);
}

// ---------------------------------------------------------------------------
// Python's json module as the reader

TEST_CASE("Python's json module reads every line back", "[metrics_log]") {
  if (!python_has_json()) {
    WARN("/usr/bin/python3 with json is not available: skipping the Python cross-check");
    return;
  }
  const TempDir dir("sae_test_metrics_log");
  const std::string path = dir.file("metrics.jsonl");
  // Random doubles and floats from bit patterns (all magnitudes, subnormals included),
  // with their exact values passed to Python as hex.
  std::string randoms = "randoms = [\n";
  std::vector<sae::JsonField> random_fields;
  std::mt19937_64 bits(2024);
  while (random_fields.size() < 400) {
    const std::uint64_t pattern = bits();
    const bool single = random_fields.size() % 2 == 1;
    double value;
    if (single) {
      const auto pattern32 = static_cast<std::uint32_t>(pattern);
      float f;
      std::memcpy(&f, &pattern32, sizeof f);
      if (!std::isfinite(f)) continue;
      value = f;
      random_fields.emplace_back("v" + std::to_string(random_fields.size()), f);
    } else {
      std::memcpy(&value, &pattern, sizeof value);
      if (!std::isfinite(value)) continue;
      random_fields.emplace_back("v" + std::to_string(random_fields.size()), value);
    }
    randoms += "  ('" + random_fields.back().first + "', H('" + hex(value) + "'), " + (single ? "True" : "False") +
               "),\n";
  }
  randoms += "]\n";

  {
    sae::MetricsLog log(path);
    log.write({{"step", 100}, {"loss", 0.5}, {"phase", "train"}});
    log.write({{"tenth", 0.1}, {"sum", 0.1 + 0.2}, {"third", 1.0 / 3.0}, {"tiny", 5e-324}, {"huge", DBL_MAX},
               {"neg_zero", -0.0}, {"two", 2.0}, {"big", 1e20}, {"f", 0.1f}, {"f_big", 16777216.0f}});
    log.write({{"nan", std::nan("")}, {"inf", HUGE_VAL}, {"minus_inf", -HUGE_VAL}, {"none", nullptr},
               {"yes", true}, {"no", false}});
    log.write({{"i64_min", std::numeric_limits<std::int64_t>::min()},
               {"u64_max", std::numeric_limits<std::uint64_t>::max()},
               {"u8", static_cast<std::uint8_t>(200)},
               {"short", static_cast<short>(-7)}});
    log.write({{"quote", "a\"b\\c/d"},
               {"control", std::string("\n\t\r\b\f\x01\x1f\x7f", 8)},
               {"nul", std::string("a\0b", 3)},
               {"utf8", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"},
               {"invalid", "\xff x \xc0\xaf \xed\xa0\x80 \xe2\x82"},
               {"key \"with\"\n escapes", 1}});
    log.write({});
    log.write(random_fields);
  }

  const std::string script = R"PY(
import json, struct, sys

def reject(name):
    raise ValueError('not strict JSON: ' + name)

data = open(sys.argv[1], 'rb').read()
assert data.endswith(b'\n'), 'the file must end with a newline'
lines = data[:-1].split(b'\n')
objects = [json.loads(line.decode('utf-8'), parse_constant=reject) for line in lines]

H = float.fromhex
def f32(x):
    return struct.unpack('<f', struct.pack('<f', x))[0]

def same(a, b):
    return type(a) is type(b) and a == b and (not isinstance(a, float) or str(a) == str(b))

expected = [
    {'step': 100, 'loss': 0.5, 'phase': 'train'},
    {'tenth': 0.1, 'sum': 0.1 + 0.2, 'third': 1.0 / 3.0, 'tiny': 5e-324, 'huge': H('0x1.fffffffffffffp+1023'),
     'neg_zero': -0.0, 'two': 2.0, 'big': 1e20, 'f': 0.1, 'f_big': 16777216.0},
    {'nan': None, 'inf': None, 'minus_inf': None, 'none': None, 'yes': True, 'no': False},
    {'i64_min': -2**63, 'u64_max': 2**64 - 1, 'u8': 200, 'short': -7},
    {'quote': 'a"b\\c/d', 'control': '\n\t\r\b\f\x01\x1f\x7f', 'nul': 'a\x00b', 'utf8': '\u00e9\u20ac\U0001F600',
     'invalid': '\ufffd x \ufffd\ufffd \ufffd\ufffd\ufffd \ufffd\ufffd', 'key "with"\n escapes': 1},
    {},
]
)PY";
  const std::string check = R"PY(
failed = False
if len(objects) != len(expected) + 1:
    print('expected', len(expected) + 1, 'lines, got', len(objects))
    sys.exit(1)
for i, (got, want) in enumerate(zip(objects, expected)):
    if list(got) != list(want) or not all(same(got[k], want[k]) for k in want):
        print('line', i + 1, 'differs:', got, 'expected', want)
        failed = True
last = objects[-1]
if list(last) != [name for name, _, _ in randoms]:
    print('random keys differ')
    failed = True
for name, value, single in randoms:
    got = last[name]
    if type(got) is not float or (f32(got) != value if single else got != value):
        print('random value', name, 'read as', repr(got), 'expected', value.hex(), 'single' if single else 'double')
        failed = True
sys.exit(1 if failed else 0)
)PY";
  {
    std::ofstream out(dir.file("check.py"));
    out << script << randoms << check;
  }
  const std::string command = "/usr/bin/python3 '" + dir.file("check.py") + "' '" + path + "'";
  REQUIRE(std::system(command.c_str()) == 0);
}
