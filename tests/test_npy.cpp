// tests/test_npy.cpp: the .npy reader and writer (sae/io/npy.hpp).
//
// Expected values never come from our own writer: files are assembled byte by
// byte here from the format's description (NEP 1), or written by NumPy itself.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <sae/io/npy.hpp>

#include "temp_dir.hpp"

using sae_test::read_bytes;
using sae_test::TempDir;

namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// Assembling .npy files by hand

template <typename UInt>
void put_little_endian(std::string& out, UInt bits) {
  for (std::size_t i = 0; i < sizeof(UInt); ++i) out += static_cast<char>((bits >> (8 * i)) & 0xff);
}

template <typename UInt>
void put_big_endian(std::string& out, UInt bits) {
  for (std::size_t i = sizeof(UInt); i-- > 0;) out += static_cast<char>((bits >> (8 * i)) & 0xff);
}

std::uint32_t bits_of(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

std::uint64_t bits_of(double value) {
  std::uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

template <typename T>
std::string little_endian(std::initializer_list<T> values) {
  std::string out;
  for (const T v : values) {
    if constexpr (std::is_floating_point_v<T>) put_little_endian(out, bits_of(v));
    else put_little_endian(out, static_cast<std::make_unsigned_t<T>>(v));
  }
  return out;
}

template <typename T>
std::string big_endian(std::initializer_list<T> values) {
  std::string out;
  for (const T v : values) {
    if constexpr (std::is_floating_point_v<T>) put_big_endian(out, bits_of(v));
    else put_big_endian(out, static_cast<std::make_unsigned_t<T>>(v));
  }
  return out;
}

/// magic + version + header length + `header_text` exactly as given + `data`.
std::string raw_npy(const std::string& header_text, const std::string& data, int major = 1, int minor = 0) {
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += static_cast<char>(minor);
  if (major == 1) put_little_endian(out, static_cast<std::uint16_t>(header_text.size()));
  else put_little_endian(out, static_cast<std::uint32_t>(header_text.size()));
  return out + header_text + data;
}

/// A well-formed file: `dict` padded with spaces and '\n' to a 64-byte boundary, as numpy does.
std::string npy(const std::string& dict, const std::string& data, int major = 1, int minor = 0) {
  const std::size_t header_offset = major == 1 ? 10 : 12;
  std::string header = dict;
  while ((header_offset + header.size() + 1) % 64 != 0) header += ' ';
  return raw_npy(header + "\n", data, major, minor);
}

std::string dict(const std::string& descr, const std::string& shape, bool fortran = false) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + shape +
         ", }";
}

// ---------------------------------------------------------------------------
// Files

/// Matches a std::runtime_error whose message starts with "<path>: " and contains `phrase`.
class ErrorMessage : public Catch::MatcherBase<std::runtime_error> {
 public:
  ErrorMessage(std::string path, std::string phrase) : path_(std::move(path)), phrase_(std::move(phrase)) {}
  bool match(const std::runtime_error& error) const override {
    return (Catch::Matchers::StartsWith(path_ + ": ") && Catch::Matchers::Contains(phrase_)).match(error.what());
  }
  std::string describe() const override { return "starts with \"" + path_ + ": \" and contains \"" + phrase_ + "\""; }

 private:
  std::string path_, phrase_;
};

// The formula the NumPy cross-check also uses.
double formula(int i, int j) { return ((i * 7) % 13) - 6 + 0.25 * j; }

}  // namespace

// ---------------------------------------------------------------------------
// Reading hand-made files

TEST_CASE("load_npy reads little-endian f4 and f8 in C order", "[npy]") {
  const TempDir dir("sae_test_npy");
  const std::string f4 = dir.write("f4.npy", npy(dict("<f4", "(2, 3)"), little_endian<float>({1.5f, -2.0f, 0.1f, 3e38f, -0.0f, 7.0f})));
  const sae::Batch<float> a = sae::load_npy<float>(f4);
  REQUIRE(a.rows() == 2);
  REQUIRE(a.cols() == 3);
  CHECK(a(0, 0) == 1.5f);
  CHECK(a(0, 1) == -2.0f);
  CHECK(a(0, 2) == 0.1f);
  CHECK(a(1, 0) == 3e38f);
  CHECK(a(1, 1) == 0.0f);
  CHECK(std::signbit(a(1, 1)));
  CHECK(a(1, 2) == 7.0f);

  // The same file converted to double: exact, float -> double widening.
  const sae::Batch<double> a_double = sae::load_npy<double>(f4);
  CHECK(a_double(0, 2) == static_cast<double>(0.1f));

  const std::string f8 = dir.write("f8.npy", npy(dict("<f8", "(3, 2)"), little_endian<double>({0.1, 2.0, -3.25, 1e300, 5e-324, 6.0})));
  const sae::Batch<double> b = sae::load_npy<double>(f8);
  REQUIRE(b.rows() == 3);
  REQUIRE(b.cols() == 2);
  CHECK(b(0, 0) == 0.1);
  CHECK(b(0, 1) == 2.0);
  CHECK(b(1, 0) == -3.25);
  CHECK(b(1, 1) == 1e300);
  CHECK(b(2, 0) == 5e-324);
  CHECK(b(2, 1) == 6.0);
  CHECK(sae::load_npy<float>(f8)(0, 0) == static_cast<float>(0.1));

  // '=' is native byte order (little-endian on the machines we test on) and no order char means native too.
  if (sae::detail::host_is_little_endian()) {
    const std::string native = dir.write("native.npy", npy(dict("=f4", "(1, 2)"), little_endian<float>({4.0f, -8.0f})));
    CHECK(sae::load_npy<float>(native)(0, 1) == -8.0f);
    const std::string bare = dir.write("bare.npy", npy(dict("f4", "(1, 2)"), little_endian<float>({4.0f, -8.0f})));
    CHECK(sae::load_npy<float>(bare)(0, 1) == -8.0f);
  }
}

TEST_CASE("load_npy reads big-endian f4 and f8", "[npy]") {
  const TempDir dir("sae_test_npy");
  // 1.0f is 3f 80 00 00 and -2.5f is c0 20 00 00, most significant byte first.
  std::string f4_data = {'\x3f', '\x80', '\x00', '\x00', '\xc0', '\x20', '\x00', '\x00'};
  f4_data += big_endian<float>({0.1f, 1e-45f});
  const auto a = sae::load_npy<float>(dir.write("f4.npy", npy(dict(">f4", "(2, 2)"), f4_data)));
  REQUIRE((a.rows() == 2 && a.cols() == 2));
  CHECK(a(0, 0) == 1.0f);
  CHECK(a(0, 1) == -2.5f);
  CHECK(a(1, 0) == 0.1f);
  CHECK(a(1, 1) == 1e-45f);

  // 1.0 is 3f f0 00 .. 00.
  std::string f8_data = {'\x3f', '\xf0', '\0', '\0', '\0', '\0', '\0', '\0'};
  f8_data += big_endian<double>({-0.3, 123456789.125});
  const auto b = sae::load_npy<double>(dir.write("f8.npy", npy(dict(">f8", "(3,)"), f8_data)));
  REQUIRE((b.rows() == 3 && b.cols() == 1));
  CHECK(b(0, 0) == 1.0);
  CHECK(b(1, 0) == -0.3);
  CHECK(b(2, 0) == 123456789.125);
}

TEST_CASE("load_npy places Fortran-order elements by column", "[npy]") {
  const TempDir dir("sae_test_npy");
  // The 2 x 3 array [[11, 12, 13], [21, 22, 23]] stored column by column.
  const std::string data = little_endian<float>({11, 21, 12, 22, 13, 23});
  const auto a = sae::load_npy<float>(dir.write("f.npy", npy(dict("<f4", "(2, 3)", true), data)));
  REQUIRE((a.rows() == 2 && a.cols() == 3));
  CHECK(a(0, 0) == 11);
  CHECK(a(0, 1) == 12);
  CHECK(a(0, 2) == 13);
  CHECK(a(1, 0) == 21);
  CHECK(a(1, 1) == 22);
  CHECK(a(1, 2) == 23);

  // Also through the converting path (f8 -> float) and with big-endian bytes.
  const auto b = sae::load_npy<float>(
      dir.write("g.npy", npy(dict(">f8", "(2, 3)", true), big_endian<double>({11, 21, 12, 22, 13, 23}))));
  CHECK(b == a);

  // A 1-D array is the same in either order.
  const auto v = sae::load_npy<double>(dir.write("v.npy", npy(dict("<f4", "(3,)", true), little_endian<float>({1, 2, 3}))));
  REQUIRE((v.rows() == 3 && v.cols() == 1));
  CHECK(v(2, 0) == 3);
}

TEST_CASE("load_npy converts f2 half precision, with subnormals, inf and nan", "[npy]") {
  const TempDir dir("sae_test_npy");
  const std::initializer_list<std::uint16_t> halves = {
      0x3C00,  // 1.0
      0xC000,  // -2.0
      0x7BFF,  // 65504, the largest half
      0x0001,  // 2^-24, the smallest subnormal
      0x03FF,  // 1023 * 2^-24, the largest subnormal
      0x0400,  // 2^-14, the smallest normal
      0x8000,  // -0.0
      0x3555,  // 0.333251953125
      0x7C00,  // +inf
      0xFC00,  // -inf
      0x7E00,  // nan
      0xFE01,  // nan with sign and payload
  };
  const auto check = [](const auto& h) {
    REQUIRE((h.rows() == 3 && h.cols() == 4));
    CHECK(h(0, 0) == 1.0);
    CHECK(h(0, 1) == -2.0);
    CHECK(h(0, 2) == 65504.0);
    CHECK(h(0, 3) == std::ldexp(1.0, -24));
    CHECK(h(1, 0) == std::ldexp(1023.0, -24));
    CHECK(h(1, 1) == std::ldexp(1.0, -14));
    CHECK(h(1, 2) == 0.0);
    CHECK(std::signbit(h(1, 2)));
    CHECK(h(1, 3) == 0.333251953125);
    CHECK(h(2, 0) == std::numeric_limits<double>::infinity());
    CHECK(h(2, 1) == -std::numeric_limits<double>::infinity());
    CHECK(std::isnan(h(2, 2)));
    CHECK(std::isnan(h(2, 3)));
  };
  check(sae::load_npy<float>(dir.write("le.npy", npy(dict("<f2", "(3, 4)"), little_endian<std::uint16_t>(halves)))));
  check(sae::load_npy<double>(dir.write("be.npy", npy(dict(">f2", "(3, 4)"), big_endian<std::uint16_t>(halves)))));
}

TEST_CASE("load_npy reads format versions 2.0 and 3.0", "[npy]") {
  const TempDir dir("sae_test_npy");
  const std::string data = little_endian<double>({1, 2, 3, 4, 5, 6});
  for (const int major : {2, 3}) {
    INFO("version " << major << ".0");
    const std::string file = dir.write("v" + std::to_string(major) + ".npy", npy(dict("<f8", "(3, 2)"), data, major));
    const auto a = sae::load_npy<double>(file);
    REQUIRE((a.rows() == 3 && a.cols() == 2));
    CHECK(a(2, 1) == 6);
    const sae::NpyHeader header = sae::read_npy_header(file);
    CHECK(header.data_offset == 128);  // 12 + 60-byte dict + '\n', padded to 64
    CHECK(header.data_bytes == 48);
  }
}

TEST_CASE("load_npy maps 0-d, 1-d and empty shapes", "[npy]") {
  const TempDir dir("sae_test_npy");
  const auto scalar = sae::load_npy<double>(dir.write("s.npy", npy(dict("<f8", "()"), little_endian<double>({3.5}))));
  REQUIRE((scalar.rows() == 1 && scalar.cols() == 1));
  CHECK(scalar(0, 0) == 3.5);

  const auto vec = sae::load_npy<float>(dir.write("v.npy", npy(dict("<f4", "(5,)"), little_endian<float>({1, 2, 3, 4, 5}))));
  REQUIRE((vec.rows() == 5 && vec.cols() == 1));
  CHECK(vec(4, 0) == 5);

  const auto empty_rows = sae::load_npy<float>(dir.write("e.npy", npy(dict("<f4", "(0, 3)"), "")));
  CHECK((empty_rows.rows() == 0 && empty_rows.cols() == 3));
  const auto empty_vec = sae::load_npy<float>(dir.write("e1.npy", npy(dict("<f2", "(0,)"), "")));
  CHECK((empty_vec.rows() == 0 && empty_vec.cols() == 1));
  // A zero dimension makes the others irrelevant to the byte count, as in numpy.
  const auto wide = sae::load_npy<double>(dir.write("e2.npy", npy(dict("<f8", "(0, 1000000000000)"), "")));
  CHECK((wide.rows() == 0 && wide.cols() == 1000000000000));
}

TEST_CASE("load_npy converts integer and bool dtypes", "[npy]") {
  const TempDir dir("sae_test_npy");
  const auto i4 = sae::load_npy<double>(
      dir.write("i4.npy", npy(dict("<i4", "(2, 2)"), little_endian<std::int32_t>({-1, 2147483647, -2147483647 - 1, 7}))));
  CHECK(i4(0, 0) == -1);
  CHECK(i4(0, 1) == 2147483647.0);
  CHECK(i4(1, 0) == -2147483648.0);
  CHECK(i4(1, 1) == 7);

  const auto u1 = sae::load_npy<float>(dir.write("u1.npy", npy(dict("|u1", "(4,)"), std::string{'\x00', '\x01', '\x7f', '\xff'})));
  CHECK(u1(0, 0) == 0);
  CHECK(u1(1, 0) == 1);
  CHECK(u1(2, 0) == 127);
  CHECK(u1(3, 0) == 255);

  const auto b1 = sae::load_npy<float>(dir.write("b1.npy", npy(dict("|b1", "(1, 3)"), std::string{'\x01', '\x00', '\x01'})));
  CHECK(b1(0, 0) == 1);
  CHECK(b1(0, 1) == 0);
  CHECK(b1(0, 2) == 1);

  const auto i1 = sae::load_npy<float>(dir.write("i1.npy", npy(dict("|i1", "(2,)"), std::string{'\x80', '\x7f'})));
  CHECK(i1(0, 0) == -128);
  CHECK(i1(1, 0) == 127);

  const auto i2 = sae::load_npy<float>(dir.write("i2.npy", npy(dict(">i2", "(2,)"), big_endian<std::int16_t>({-300, 32767}))));
  CHECK(i2(0, 0) == -300);
  CHECK(i2(1, 0) == 32767);

  const auto i8 = sae::load_npy<double>(
      dir.write("i8.npy", npy(dict("<i8", "(2,)"), little_endian<std::int64_t>({-(std::int64_t{1} << 53), 42}))));
  CHECK(i8(0, 0) == -9007199254740992.0);
  CHECK(i8(1, 0) == 42);

  const auto u2 = sae::load_npy<float>(dir.write("u2.npy", npy(dict("<u2", "(1,)"), little_endian<std::uint16_t>({65535}))));
  CHECK(u2(0, 0) == 65535);
  const auto u4 = sae::load_npy<double>(dir.write("u4.npy", npy(dict(">u4", "(1,)"), big_endian<std::uint32_t>({4294967295u}))));
  CHECK(u4(0, 0) == 4294967295.0);
  const auto u8 = sae::load_npy<double>(
      dir.write("u8.npy", npy(dict("<u8", "(1,)"), little_endian<std::uint64_t>({std::uint64_t{1} << 63}))));
  CHECK(u8(0, 0) == 9223372036854775808.0);

  // Fortran-ordered integers take the converting path with transposition.
  const auto fi = sae::load_npy<float>(
      dir.write("fi.npy", npy(dict("<i2", "(2, 2)", true), little_endian<std::int16_t>({1, 3, 2, 4}))));
  CHECK(fi(0, 1) == 2);
  CHECK(fi(1, 0) == 3);
}

TEST_CASE("load_npy accepts any header numpy could read the same way", "[npy]") {
  const TempDir dir("sae_test_npy");
  const std::string data = little_endian<float>({1, 2, 3, 4, 5, 6});
  const char* const headers[] = {
      "{'shape': (2, 3), 'descr': '<f4', 'fortran_order': False}",  // any key order, no trailing comma
      "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,3)}",  // double quotes, no spaces
      "  {  'descr' :'<f4' ,\n 'fortran_order':False,'shape':( 2 , 3 , ) , }  \t",  // whitespace, trailing commas
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }",  // Python 2 long suffix
  };
  for (const char* header : headers) {
    INFO(header);
    const auto a = sae::load_npy<float>(dir.write("h.npy", npy(header, data)));
    REQUIRE((a.rows() == 2 && a.cols() == 3));
    CHECK(a(1, 2) == 6);
  }
  // Unpadded, without the '\n': numpy writes neither, but reads it.
  const auto bare = sae::load_npy<float>(dir.write("bare.npy", raw_npy(dict("<f4", "(2, 3)"), data)));
  CHECK(bare(1, 0) == 4);
}

TEST_CASE("parse_npy_header and read_npy_header report the layout", "[npy]") {
  const TempDir dir("sae_test_npy");
  const std::string bytes = npy(dict(">i2", "(3, 4)", true), std::string(24, '\0'));
  const std::string file = dir.write("h.npy", bytes);
  const std::vector<unsigned char> buffer(bytes.begin(), bytes.end());

  for (const sae::NpyHeader& h : {sae::read_npy_header(file), sae::parse_npy_header(buffer.data(), buffer.size(), file)}) {
    CHECK(h.kind == sae::NpyHeader::Kind::SignedInt);
    CHECK(h.item_size == 2);
    CHECK(h.big_endian);
    CHECK(h.fortran_order);
    CHECK(h.shape == std::vector<std::uint64_t>{3, 4});
    CHECK(h.data_offset == bytes.size() - 24);
    CHECK(h.element_count == 12);
    CHECK(h.data_bytes == 24);
    CHECK(h.descr == ">i2");
  }

  // read_npy_header validates the header but leaves the data to the caller: 3-D is fine here.
  const sae::NpyHeader cube = sae::read_npy_header(dir.write("c.npy", npy(dict("|b1", "(2, 0, 5)"), "")));
  CHECK(cube.kind == sae::NpyHeader::Kind::Bool);
  CHECK(cube.element_count == 0);
  CHECK(cube.shape.size() == 3);
  const sae::NpyHeader scalar = sae::read_npy_header(dir.write("s.npy", npy(dict("<u8", "()"), std::string(8, '\0'))));
  CHECK(scalar.shape.empty());
  CHECK(scalar.element_count == 1);
  CHECK(scalar.data_bytes == 8);
}

// ---------------------------------------------------------------------------
// Writing

TEST_CASE("save_npy then load_npy gives the values back exactly", "[npy]") {
  const TempDir dir("sae_test_npy");
  sae::Batch<float> a(4, 3);
  for (Eigen::Index i = 0; i < a.size(); ++i) a.data()[i] = static_cast<float>(formula(static_cast<int>(i), 3)) / 7.0f;
  a(0, 0) = std::numeric_limits<float>::infinity();
  a(0, 1) = std::numeric_limits<float>::denorm_min();
  a(0, 2) = -0.0f;
  sae::save_npy(dir.file("a.npy"), a);
  const auto a_back = sae::load_npy<float>(dir.file("a.npy"));
  REQUIRE((a_back.rows() == 4 && a_back.cols() == 3));
  CHECK(std::memcmp(a_back.data(), a.data(), sizeof(float) * 12) == 0);  // bit for bit, -0.0 included

  Eigen::MatrixXd col_major(3, 5);  // column-major: must still be written in C order
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 5; ++j) col_major(i, j) = formula(i, j) / 3.0;
  col_major(2, 4) = std::numeric_limits<double>::quiet_NaN();
  sae::save_npy(dir.file("b.npy"), col_major);
  const auto b_back = sae::load_npy<double>(dir.file("b.npy"));
  REQUIRE((b_back.rows() == 3 && b_back.cols() == 5));
  CHECK(b_back.topLeftCorner(3, 4) == col_major.topLeftCorner(3, 4));
  CHECK(b_back.topRightCorner(2, 1) == col_major.topRightCorner(2, 1));
  CHECK(std::isnan(b_back(2, 4)));

  // Expressions are evaluated: a product, a strided block of a row-major matrix, a transpose, an array.
  sae::save_npy(dir.file("expr.npy"), col_major * 2.0);
  CHECK(sae::load_npy<double>(dir.file("expr.npy")).topLeftCorner(3, 4) == (col_major * 2.0).topLeftCorner(3, 4));
  sae::save_npy(dir.file("block.npy"), a.block(1, 1, 3, 2));
  CHECK(sae::load_npy<float>(dir.file("block.npy")) == a.block(1, 1, 3, 2));
  sae::save_npy(dir.file("t.npy"), a.transpose());
  CHECK(sae::load_npy<float>(dir.file("t.npy")) == a.transpose());
  const Eigen::ArrayXXf array = Eigen::ArrayXXf::Constant(2, 2, 0.5f);
  sae::save_npy(dir.file("array.npy"), array);
  CHECK(sae::load_npy<float>(dir.file("array.npy")) == array.matrix());

  // Fixed sizes and an empty matrix.
  const Eigen::Matrix<double, 2, 3, Eigen::RowMajor> fixed = (Eigen::Matrix<double, 2, 3>() << 1, 2, 3, 4, 5, 6).finished();
  sae::save_npy(dir.file("fixed.npy"), fixed);
  CHECK(sae::load_npy<double>(dir.file("fixed.npy")) == fixed);
  sae::save_npy(dir.file("empty.npy"), sae::Batch<float>(0, 7));
  const auto empty = sae::load_npy<float>(dir.file("empty.npy"));
  CHECK((empty.rows() == 0 && empty.cols() == 7));
}

TEST_CASE("save_npy writes numpy's header layout", "[npy]") {
  const TempDir dir("sae_test_npy");
  const auto header_text = [](const std::string& bytes) {
    REQUIRE(bytes.size() >= 10);
    const std::size_t length = static_cast<unsigned char>(bytes[8]) + 256u * static_cast<unsigned char>(bytes[9]);
    REQUIRE(bytes.size() >= 10 + length);
    return bytes.substr(10, length);
  };

  const Eigen::VectorXf column = Eigen::VectorXf::LinSpaced(5, 0, 4);  // compile-time column vector: 1-D
  sae::save_npy(dir.file("v.npy"), column);
  const std::string v = read_bytes(dir.file("v.npy"));
  CHECK(v.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
  const std::string v_header = header_text(v);
  CHECK(v_header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 0) == 0);
  CHECK(v_header.back() == '\n');
  CHECK((10 + v_header.size()) % 64 == 0);
  CHECK(v.size() == 10 + v_header.size() + 5 * 4);
  const auto v_back = sae::load_npy<float>(dir.file("v.npy"));
  REQUIRE((v_back.rows() == 5 && v_back.cols() == 1));
  CHECK(v_back.col(0) == column);

  // A run-time N x 1 matrix and a row vector keep both dimensions.
  sae::save_npy(dir.file("m.npy"), Eigen::MatrixXd::Zero(3, 1));
  CHECK(header_text(read_bytes(dir.file("m.npy"))).find("'descr': '<f8'") != std::string::npos);
  CHECK(header_text(read_bytes(dir.file("m.npy"))).find("'shape': (3, 1)") != std::string::npos);
  sae::save_npy(dir.file("r.npy"), Eigen::RowVectorXf::Ones(4));
  CHECK(header_text(read_bytes(dir.file("r.npy"))).find("'shape': (1, 4)") != std::string::npos);

  // The preamble is a multiple of 64 for every header length.
  for (int cols = 1; cols < 100000; cols *= 7) {
    const std::string p = sae::detail::npy_preamble("<f4", false, {1, static_cast<std::uint64_t>(cols)});
    CHECK(p.size() % 64 == 0);
    CHECK(p.back() == '\n');
  }
  // A header over 65535 bytes switches to version 2.0 and its 4-byte length (no real dtype is that long).
  const std::string long_preamble = sae::detail::npy_preamble(std::string(70000, 'x'), false, {1});
  CHECK(long_preamble.substr(6, 2) == std::string("\x02\x00", 2));
  const std::size_t long_length = static_cast<unsigned char>(long_preamble[8]) +
                                  256u * static_cast<unsigned char>(long_preamble[9]) +
                                  65536u * static_cast<unsigned char>(long_preamble[10]);
  CHECK(long_preamble[11] == '\0');
  CHECK(long_length == long_preamble.size() - 12);
  CHECK(long_preamble.size() % 64 == 0);
}

TEST_CASE("save_npy replaces the file atomically and cleans up on failure", "[npy]") {
  const TempDir dir("sae_test_npy");
  const std::string target = dir.file("out.npy");
  sae::save_npy(target, Eigen::MatrixXf::Constant(2, 2, 1.0f));
  sae::save_npy(target, Eigen::MatrixXf::Constant(3, 1, 2.0f));  // overwrite a longer file with a shorter one
  const auto back = sae::load_npy<float>(target);
  CHECK((back.rows() == 3 && back.cols() == 1 && back(2, 0) == 2.0f));

  // Renaming onto a directory fails: the error names the target and nothing is left behind.
  const std::string blocked = dir.file("blocked.npy");
  fs::create_directory(blocked);
  CHECK_THROWS_MATCHES(sae::save_npy(blocked, Eigen::MatrixXf::Zero(2, 2)), std::runtime_error,
                       ErrorMessage(blocked, "cannot rename"));
  const std::string missing_dir = dir.file("no/such/dir.npy");
  CHECK_THROWS_MATCHES(sae::save_npy(missing_dir, Eigen::MatrixXf::Zero(2, 2)), std::runtime_error,
                       ErrorMessage(missing_dir, "cannot create the temporary file"));

  CHECK(dir.listing() == std::vector<std::string>{"blocked.npy", "out.npy"});
}

// ---------------------------------------------------------------------------
// NumPy as the independent reference

TEST_CASE("npy files agree with NumPy in both directions", "[npy]") {
  // Asks for numpy without importing it, which alone takes most of a second.
  if (std::system("/usr/bin/python3 -c \"import importlib.util, sys; "
                  "sys.exit(importlib.util.find_spec('numpy') is None)\" >/dev/null 2>&1") != 0) {
    WARN("/usr/bin/python3 with numpy is not available: skipping the NumPy cross-check");
    return;
  }
  const TempDir dir("sae_test_npy");

  // Our files for np.load to check.
  sae::Batch<float> row_major(5, 7);
  Eigen::MatrixXd col_major(4, 6);
  Eigen::VectorXd vector(6);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 7; ++j) row_major(i, j) = static_cast<float>(formula(i, j));
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 6; ++j) col_major(i, j) = formula(i, j) + j / 3.0;
  for (int i = 0; i < 6; ++i) vector(i) = formula(i, 0) / 7.0;
  sae::save_npy(dir.file("ours_row_major.npy"), row_major);
  sae::save_npy(dir.file("ours_col_major.npy"), col_major);
  sae::save_npy(dir.file("ours_vector.npy"), vector);

  // One Python run (numpy's import is the slow part): check ours, then write numpy's own.
  const std::string script = R"(
import sys
import numpy as np
d = sys.argv[1]
def f(i, j): return (i * 7 % 13) - 6 + 0.25 * j
def table(rows, cols, g): return [[g(i, j) for j in range(cols)] for i in range(rows)]

failed = False
for name, expected in [
    ('ours_row_major.npy', np.array(table(5, 7, f), dtype='<f4')),
    ('ours_col_major.npy', np.array(table(4, 6, lambda i, j: f(i, j) + j / 3.0), dtype='<f8')),
    ('ours_vector.npy', np.array([f(i, 0) / 7.0 for i in range(6)], dtype='<f8')),
]:
    a = np.load(d + '/' + name)
    if a.dtype != expected.dtype or a.shape != expected.shape or not np.array_equal(a, expected):
        print('np.load disagrees on', name, a.dtype, a.shape, a)
        failed = True

np.save(d + '/f4.npy', np.array(table(5, 7, f), dtype=np.float32))
fortran = np.asfortranarray(np.array(table(4, 6, lambda i, j: f(i, j) + j / 3.0), dtype=np.float64))
assert fortran.flags.f_contiguous and not fortran.flags.c_contiguous
np.save(d + '/f8_fortran.npy', fortran)
np.save(d + '/f8_big.npy', np.array(table(3, 2, lambda i, j: f(i, j) / 7.0), dtype='>f8'))
np.save(d + '/f2.npy', np.array(table(3, 4, f), dtype=np.float16))
np.save(d + '/i4.npy', np.array(table(2, 5, lambda i, j: (i * 7 % 13) - 6 + 1000 * j), dtype=np.int32))
np.save(d + '/b1.npy', np.array(table(2, 3, lambda i, j: (i + j) % 2 == 0)))
np.save(d + '/vec.npy', np.arange(6, dtype=np.float32) * 0.5)
np.save(d + '/scalar.npy', np.float64(3.5))
sys.exit(1 if failed else 0)
)";
  std::ofstream(dir.file("cross_check.py")) << script;
  REQUIRE(std::system(("/usr/bin/python3 '" + dir.file("cross_check.py") + "' '" + dir.path().string() + "'").c_str()) == 0);

  const auto check_table = [](const auto& m, int rows, int cols, auto expected) {
    REQUIRE((m.rows() == rows && m.cols() == cols));
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) {
        INFO("(" << i << ", " << j << ")");
        CHECK(m(i, j) == expected(i, j));
      }
  };
  CHECK(read_bytes(dir.file("f8_fortran.npy")).find("'fortran_order': True") != std::string::npos);
  check_table(sae::load_npy<float>(dir.file("f4.npy")), 5, 7, [](int i, int j) { return static_cast<float>(formula(i, j)); });
  check_table(sae::load_npy<double>(dir.file("f8_fortran.npy")), 4, 6, [](int i, int j) { return formula(i, j) + j / 3.0; });
  check_table(sae::load_npy<double>(dir.file("f8_big.npy")), 3, 2, [](int i, int j) { return formula(i, j) / 7.0; });
  check_table(sae::load_npy<float>(dir.file("f2.npy")), 3, 4, [](int i, int j) { return static_cast<float>(formula(i, j)); });
  check_table(sae::load_npy<double>(dir.file("i4.npy")), 2, 5, [](int i, int j) { return ((i * 7) % 13) - 6 + 1000.0 * j; });
  check_table(sae::load_npy<float>(dir.file("b1.npy")), 2, 3, [](int i, int j) { return (i + j) % 2 == 0 ? 1.0f : 0.0f; });
  check_table(sae::load_npy<float>(dir.file("vec.npy")), 6, 1, [](int i, int) { return 0.5f * static_cast<float>(i); });
  check_table(sae::load_npy<double>(dir.file("scalar.npy")), 1, 1, [](int, int) { return 3.5; });
}

// ---------------------------------------------------------------------------
// Malformed input

TEST_CASE("load_npy rejects malformed files, naming the file and the problem", "[npy]") {
  const TempDir dir("sae_test_npy");
  const std::string f4_4x8 = std::string(128, '\0');
  const std::string good_dict = dict("<f4", "(4, 8)");
  std::string huge_header = raw_npy("", "", 2);
  huge_header[8] = '\x00';  // header length 4000000 = 0x003d0900, little-endian
  huge_header[9] = '\x09';
  huge_header[10] = '\x3d';
  huge_header[11] = '\x00';
  huge_header += std::string(108, ' ');  // 120 bytes in all
  std::string sixty_five_ones = "(";
  for (int i = 0; i < 65; ++i) sixty_five_ones += "1, ";
  sixty_five_ones += ")";

  struct Case {
    const char* name;
    std::string bytes;
    std::string phrase;
    bool header_level;  // read_npy_header must reject it too
  };
  const std::vector<Case> cases = {
      {"empty.npy", "", "not a NumPy file (the file is empty)", true},
      {"magic.npy", "\x93NUMPX\x01\x00" + std::string(100, ' '), "not a NumPy file (bad magic)", true},
      {"zip.npy", std::string("PK\x03\x04", 4) + std::string(60, '\0'), "bad magic", true},
      {"short.npy", "\x93NUM", "bad magic", true},
      {"preamble.npy", std::string("\x93NUMPY\x01\x00\x05", 9), "truncated preamble", true},
      {"version.npy", npy(good_dict, f4_4x8, 9, 9), "unsupported .npy format version 9.9", true},
      {"minor.npy", npy(good_dict, f4_4x8, 1, 1), "unsupported .npy format version 1.1", true},
      {"eof.npy", huge_header, "header length 4000000 runs past the end of the file (120 bytes)", true},
      {"v1eof.npy", std::string("\x93NUMPY\x01\x00\xff\xff{}", 12), "header length 65535 runs past the end", true},
      {"list.npy", npy("['descr', '<f4']", ""), "not a dict literal", true},
      {"nodict.npy", npy("", ""), "not a dict literal", true},
      {"noshape.npy", npy("{'descr': '<f4', 'fortran_order': False}", f4_4x8), "header has no 'shape' key", true},
      {"nodescr.npy", npy("{'shape': (4, 8), 'fortran_order': False}", f4_4x8), "header has no 'descr' key", true},
      {"unknown.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 8), 'foo': 1}", f4_4x8),
       "unexpected key 'foo'", true},
      {"repeat.npy", npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4, 8)}", f4_4x8),
       "repeats key 'descr'", true},
      {"c8.npy", npy(dict("<c8", "(4, 8)"), f4_4x8 + f4_4x8), "unsupported dtype '<c8'", true},
      {"object.npy", npy(dict("|O", "(4, 8)"), f4_4x8), "unsupported dtype '|O'", true},
      {"string.npy", npy(dict("<U4", "(4, 8)"), f4_4x8), "unsupported dtype '<U4'", true},
      {"datetime.npy", npy(dict("<M8[ns]", "(2,)"), std::string(16, '\0')), "unsupported dtype '<M8[ns]'", true},
      {"pipe_f4.npy", npy(dict("|f4", "(4, 8)"), f4_4x8), "unsupported dtype '|f4'", true},
      {"structured.npy", npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4, 8)}", f4_4x8),
       "structured", true},
      {"fortran.npy", npy("{'descr': '<f4', 'fortran_order': 1, 'shape': (4, 8)}", f4_4x8),
       "'fortran_order' must be True or False", true},
      {"negative.npy", npy(dict("<f4", "(-3, 4)"), ""), "negative dimension '-3'", true},
      {"float_dim.npy", npy(dict("<f4", "(4.0, 8)"), f4_4x8), "non-negative integers", true},
      {"not_tuple.npy", npy(dict("<f4", "[4, 8]"), f4_4x8), "'shape' is not a tuple", true},
      {"paren_int.npy", npy(dict("<f4", "(32)"), f4_4x8), "'shape' is not a tuple", true},
      {"big_dim.npy", npy(dict("<f4", "(99999999999999999999,)"), ""), "is too large", true},
      {"overflow.npy", npy(dict("<f4", "(4294967296, 4294967296, 16)"), f4_4x8), "is too large", true},
      {"beyond_file.npy", npy(dict("<f8", "(1099511627776, 1024)"), f4_4x8),
       "data is 128 bytes, expected 9007199254740992 for shape (1099511627776, 1024) of '<f8'", true},
      {"many_dims.npy", npy(dict("<f4", sixty_five_ones), std::string(4, '\0')), "more than 64 dimensions", true},
      {"unterminated.npy", npy("{'descr': '<f4", ""), "unterminated string", true},
      {"junk.npy", npy(good_dict + " x", f4_4x8), "unexpected text after the closing '}'", true},
      {"nul.npy", raw_npy(good_dict + std::string(1, '\0'), f4_4x8), "malformed header", true},
      {"four_d.npy", npy(dict("<f4", "(2, 2, 2, 4)"), f4_4x8), "array has 4 dimensions, shape (2, 2, 2, 4)", false},
      {"truncated.npy", npy(good_dict, std::string(96, '\0')),
       "data is 96 bytes, expected 128 for shape (4, 8) of '<f4'", true},
      {"trailing.npy", npy(good_dict, f4_4x8 + "abcd"), "data is 132 bytes, expected 128 for shape (4, 8) of '<f4'", true},
  };

  for (const Case& c : cases) {
    const std::string file = dir.write(c.name, c.bytes);
    INFO(c.name);
    CHECK_THROWS_MATCHES(sae::load_npy<float>(file), std::runtime_error, ErrorMessage(file, c.phrase));
    if (c.header_level) {
      CHECK_THROWS_MATCHES(sae::read_npy_header(file), std::runtime_error, ErrorMessage(file, c.phrase));
    }
  }

  const std::string missing = dir.file("does_not_exist.npy");
  CHECK_THROWS_MATCHES(sae::load_npy<float>(missing), std::runtime_error, ErrorMessage(missing, "cannot open"));
  CHECK_THROWS_MATCHES(sae::read_npy_header(missing), std::runtime_error, ErrorMessage(missing, "cannot open"));
  const std::string directory = dir.path().string();
  CHECK_THROWS_MATCHES(sae::load_npy<float>(directory), std::runtime_error, ErrorMessage(directory, "is a directory"));
}

TEST_CASE("load_npy survives a deterministic mini-fuzz", "[npy]") {
  const TempDir dir("sae_test_npy");
  const std::vector<std::string> seeds = {
      npy(dict("<f4", "(3, 4)"), little_endian<float>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})),
      npy(dict(">f2", "(2, 3)", true), big_endian<std::uint16_t>({0x3C00, 0x0001, 0x7C00, 0x7E00, 0xC000, 0x7BFF}), 2),
  };
  // Characters that steer the header parser down its other paths.
  const std::string interesting = "{}()[],:'\" \n-0123456789LTrueFalsdscrhpfiub<>|=.\\";

  // Returns true if the bytes loaded; a std::runtime_error counts as a clean rejection.
  // Anything else (another exception type, a sanitizer report) fails the test.
  int file_number = 0;
  const auto loads = [&](const std::string& bytes) {
    // The header parser on an exact-size heap buffer, so ASan sees any overread.
    const std::vector<unsigned char> buffer(bytes.begin(), bytes.end());
    bool parsed = true;
    try {
      (void)sae::parse_npy_header(buffer.data(), buffer.size(), "fuzz");
    } catch (const std::runtime_error&) {
      parsed = false;
    }
    // A new file each time: rewriting one in place makes ext4 flush it to disk on close (auto_da_alloc).
    const std::string file = dir.write("fuzz" + std::to_string(file_number++) + ".npy", bytes);
    try {
      const auto m = sae::load_npy<double>(file);
      CHECK(m.size() >= 0);
      fs::remove(file);
      return true;
    } catch (const std::runtime_error& e) {
      fs::remove(file);
      // Either the header was bad, or it was fine but the array has more than 2 dimensions.
      CHECK((!parsed || std::string(e.what()).find("dimensions") != std::string::npos));
      return false;
    }
  };

  std::mt19937 random(20240611);  // fixed seed: the same variants every run
  int loaded = 0, rejected = 0;
  for (const std::string& seed : seeds) {
    REQUIRE(loads(seed));
    const std::uint64_t data_offset = sae::parse_npy_header(
        reinterpret_cast<const unsigned char*>(seed.data()), seed.size(), "seed").data_offset;

    // Every truncation is an error: numpy never writes a short file.
    for (std::size_t length = 0; length < seed.size(); ++length) {
      INFO("truncated to " << length << " bytes");
      CHECK_FALSE(loads(seed.substr(0, length)));
    }

    for (int variant = 0; variant < 1500; ++variant) {
      std::string bytes = seed;
      const int mutations = 1 + static_cast<int>(random() % 3);
      for (int k = 0; k < mutations; ++k) {
        const std::size_t pos = random() % data_offset;
        bytes[pos] = random() % 2 == 0 ? static_cast<char>(random() & 0xff) : interesting[random() % interesting.size()];
      }
      INFO("variant " << variant);
      (loads(bytes) ? loaded : rejected) += 1;
    }
  }
  // Most mutations break the file, but some (a digit, a quote style, padding) leave it valid.
  CHECK(rejected > 0);
  CHECK(loaded > 0);
}
