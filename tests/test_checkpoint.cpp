// tests/test_checkpoint.cpp: the checkpoint writer and reader (sae/io/checkpoint.hpp).
//
// Expected values never come from the code under test: files are assembled
// byte by byte here from the format's description (the top of checkpoint.hpp),
// with a bit-by-bit CRC-32 written here, and values read back are compared
// with the literals that were stored.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <sae/core/parameters.hpp>
#include <sae/io/checkpoint.hpp>

#include "temp_dir.hpp"

using sae_test::TempDir;

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;
using u64 = std::uint64_t;

// ---------------------------------------------------------------------------
// Independent encoders

/// CRC-32 (IEEE, reflected 0xEDB88320), one bit at a time: the textbook definition.
std::uint32_t reference_crc32(const unsigned char* bytes, std::size_t size) {
  std::uint32_t crc = 0xffffffffu;
  for (std::size_t i = 0; i < size; ++i) {
    crc ^= bytes[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void append_le(Bytes& out, u64 value, int size) {
  for (int i = 0; i < size; ++i) out.push_back(static_cast<unsigned char>((value >> (8 * i)) & 0xffu));
}

u64 bits_of(double value) {
  u64 bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

std::uint32_t bits_of(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

Bytes f32_data(std::initializer_list<float> values) {
  Bytes out;
  for (const float v : values) append_le(out, bits_of(v), 4);
  return out;
}

Bytes f64_data(std::initializer_list<double> values) {
  Bytes out;
  for (const double v : values) append_le(out, bits_of(v), 8);
  return out;
}

Bytes u64_data(std::initializer_list<u64> values) {
  Bytes out;
  for (const u64 v : values) append_le(out, v, 8);
  return out;
}

/// One entry: name length, name, kind, dtype, rows, cols, data.
Bytes entry(const std::string& name, int kind, int dtype, u64 rows, u64 cols, const Bytes& data,
            std::uint32_t name_length_field = 0xffffffffu) {
  Bytes out;
  append_le(out, name_length_field == 0xffffffffu ? name.size() : name_length_field, 4);
  out.insert(out.end(), name.begin(), name.end());
  out.push_back(static_cast<unsigned char>(kind));
  out.push_back(static_cast<unsigned char>(dtype));
  append_le(out, rows, 8);
  append_le(out, cols, 8);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

constexpr int kTensor = 1, kU64s = 2, kDouble = 3, kString = 4;
constexpr int dF32 = 1, dF64 = 2, dU64 = 3, dU8 = 4;

/// Rewrites the size field and the CRC trailer of a whole file image.
void refresh(Bytes& file) {
  if (file.size() < 36) return;
  for (int i = 0; i < 8; ++i) file[16 + i] = static_cast<unsigned char>((file.size() >> (8 * i)) & 0xffu);
  const std::uint32_t crc = reference_crc32(file.data(), file.size() - 4);
  for (int i = 0; i < 4; ++i) file[file.size() - 4 + i] = static_cast<unsigned char>((crc >> (8 * i)) & 0xffu);
}

/// A whole file: header, the entries as given, CRC trailer.
Bytes checkpoint_file(const std::vector<Bytes>& entries, u64 count, std::uint32_t version = 1,
                      std::uint32_t flags = 0) {
  Bytes out = {0x89, 'S', 'A', 'E', 'C', 'K', 'P', 'T'};
  append_le(out, version, 4);
  append_le(out, flags, 4);
  append_le(out, 0, 8);  // size, set by refresh
  append_le(out, count, 8);
  for (const Bytes& e : entries) out.insert(out.end(), e.begin(), e.end());
  append_le(out, 0, 4);  // CRC, set by refresh
  refresh(out);
  return out;
}

Bytes checkpoint_file(const std::vector<Bytes>& entries) { return checkpoint_file(entries, entries.size()); }

// ---------------------------------------------------------------------------
// Files


Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

/// The message of the std::runtime_error that `f` throws (fails the test if none).
template <typename F>
std::string runtime_error_message(F&& f) {
  try {
    f();
  } catch (const std::runtime_error& error) {
    return error.what();
  }
  FAIL("no std::runtime_error was thrown");
  return {};
}

std::string rejection(const Bytes& file) {
  return runtime_error_message([&] { sae::CheckpointReader::from_bytes(file, "bad.sae"); });
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

using Catch::Matchers::Contains;

// A small checkpoint with one entry of each kind; its values are checked by `check_small`.
sae::CheckpointWriter small_checkpoint(float base) {
  Eigen::MatrixXf m(2, 3);  // column-major
  m << base, base + 1, base + 2, base + 3, base + 4, base + 5;
  sae::CheckpointWriter writer;
  writer.put("m", m);
  writer.put_u64s("step", {static_cast<u64>(base), 99});
  writer.put_double("lr", base / 4.0);
  writer.put_string("recipe", "r" + std::to_string(static_cast<int>(base)));
  return writer;
}

void check_small(const sae::CheckpointReader& reader, float base) {
  const auto m = reader.matrix<float>("m");
  REQUIRE(m.rows() == 2);
  REQUIRE(m.cols() == 3);
  CHECK(m(0, 0) == base);
  CHECK(m(0, 1) == base + 1);
  CHECK(m(0, 2) == base + 2);
  CHECK(m(1, 0) == base + 3);
  CHECK(m(1, 1) == base + 4);
  CHECK(m(1, 2) == base + 5);
  CHECK(reader.u64s("step") == std::vector<u64>{static_cast<u64>(base), 99});
  CHECK(reader.scalar("lr") == base / 4.0);
  CHECK(reader.string("recipe") == "r" + std::to_string(static_cast<int>(base)));
}

/// Reads every entry according to its kind; returns how many elements were read.
std::size_t read_everything(const sae::CheckpointReader& reader) {
  std::size_t total = 0;
  for (const sae::CheckpointEntryInfo& info : reader.entries()) {
    switch (info.kind) {
      case sae::CheckpointKind::Tensor:
        total += static_cast<std::size_t>(reader.matrix<double>(info.name).size());
        break;
      case sae::CheckpointKind::U64Array:
        total += reader.u64s(info.name).size();
        break;
      case sae::CheckpointKind::Double:
        static_cast<void>(reader.scalar(info.name));
        total += 1;
        break;
      case sae::CheckpointKind::String:
        total += reader.string(info.name).size();
        break;
    }
  }
  return total;
}

}  // namespace

TEST_CASE("CRC-32 is the standard one (zlib.crc32)", "[checkpoint]") {
  const std::string check = "123456789";
  const auto* bytes = reinterpret_cast<const unsigned char*>(check.data());
  CHECK(sae::detail::crc32(bytes, check.size()) == 0xCBF43926u);  // the CRC-32 catalogue's check value
  CHECK(sae::detail::crc32(bytes, 0) == 0u);

  std::mt19937 rng(7);
  Bytes data(100);
  for (auto& b : data) b = static_cast<unsigned char>(rng());
  for (std::size_t n = 0; n <= data.size(); ++n) {
    const std::uint32_t whole = sae::detail::crc32(data.data(), n);
    REQUIRE(whole == reference_crc32(data.data(), n));
    const std::size_t split = n / 3;
    REQUIRE(sae::detail::crc32_update(sae::detail::crc32(data.data(), split), data.data() + split, n - split) == whole);
  }
}

TEST_CASE("The writer's bytes follow the documented format", "[checkpoint]") {
  Eigen::MatrixXf m(2, 3);  // column-major storage; the file holds row-major order
  m << 1, 2, 3, 4, 5, 6;
  sae::CheckpointWriter writer;
  writer.put("m", m);
  writer.put_u64s("steps", {7, std::numeric_limits<u64>::max()});
  writer.put_double("lr", 0.25);
  writer.put_string("recipe", "std");

  const Bytes expected = checkpoint_file({
      entry("m", kTensor, dF32, 2, 3, f32_data({1, 2, 3, 4, 5, 6})),
      entry("steps", kU64s, dU64, 2, 1, u64_data({7, 0xffffffffffffffffull})),
      entry("lr", kDouble, dF64, 1, 1, f64_data({0.25})),
      entry("recipe", kString, dU8, 3, 1, Bytes{'s', 't', 'd'}),
  });
  CHECK(writer.size() == 4);
  CHECK(writer.has("lr"));
  CHECK_FALSE(writer.has("LR"));
  REQUIRE(writer.to_bytes() == expected);

  const TempDir dir("sae_test_checkpoint");
  const std::string path = dir.file("format.sae");
  writer.write(path);
  CHECK(read_bytes(path) == expected);
  CHECK(dir.listing() == std::vector<std::string>{"format.sae"});

  // A hand-made file with no entries is valid.
  const auto empty = sae::CheckpointReader::from_bytes(checkpoint_file({}), "empty.sae");
  CHECK(empty.names().empty());
  CHECK(sae::CheckpointWriter().to_bytes() == checkpoint_file({}));
}

TEST_CASE("Every kind of entry round-trips through a file", "[checkpoint]") {
  Eigen::MatrixXf col_major(3, 4);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) col_major(r, c) = static_cast<float>(r * 10 + c) + 0.5f;
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major(2, 3);
  row_major << 1.0 / 3, -2.0 / 7, 1e-300, 1e300, -5.5, 0.1;
  Eigen::VectorXf column(4);
  column << 1.0f, -2.0f, 3.5f, -0.0f;
  Eigen::RowVectorXd row(3);
  row << 0.5, 0.25, 0.125;
  Eigen::ArrayXXd array(2, 2);
  array << 1, 2, 3, 4;
  Eigen::MatrixXd a(2, 2), b(2, 2);
  a << 1, 2, 3, 4;
  b << 10, 20, 30, 40;
  Eigen::MatrixXd big(4, 4);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) big(r, c) = r * 4 + c;
  const double nan_with_payload = [] {
    const u64 bits = 0x7ff8000000012345ull;
    double value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
  }();
  Eigen::VectorXd special(6);
  special << nan_with_payload, std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
      -0.0, std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::max();
  const std::string long_text(10000, 'x');
  const std::string binary("a\0b\xff", 4);

  sae::CheckpointWriter writer;
  writer.put("W_enc", col_major);
  writer.put("W_dec", row_major);
  writer.put("b_enc", column);
  writer.put("row", row);
  writer.put("adam/m", array);
  writer.put("sum", a + b);                       // an expression, evaluated
  writer.put("block", big.block(1, 2, 3, 2));     // strided view of a column-major matrix
  writer.put("transposed", big.transpose().topRows(2));
  writer.put("empty", Eigen::MatrixXf(0, 5));
  writer.put("special", special);
  writer.put_u64s("rng", {0, 1, 0x0123456789abcdefull, std::numeric_limits<u64>::max()});
  writer.put_u64s("none", {});
  writer.put_double("lr", 3e-4);
  writer.put_double("neg0", -0.0);
  writer.put_double("nan", nan_with_payload);
  writer.put_string("recipe", "standard");
  writer.put_string("empty_string", "");
  writer.put_string("binary", binary);
  writer.put_string("config", long_text);

  const TempDir dir("sae_test_checkpoint");
  const std::string path = dir.file("all.sae");
  writer.write(path);
  const sae::CheckpointReader reader(path);
  CHECK(reader.path() == path);

  CHECK(reader.names() == std::vector<std::string>{"W_enc", "W_dec", "b_enc", "row", "adam/m", "sum", "block",
                                                   "transposed", "empty", "special", "rng", "none", "lr", "neg0",
                                                   "nan", "recipe", "empty_string", "binary", "config"});
  CHECK(reader.has("W_enc"));
  CHECK_FALSE(reader.has("w_enc"));

  SECTION("tensors, element by element") {
    const auto& info = reader.info("W_enc");
    CHECK(info.kind == sae::CheckpointKind::Tensor);
    CHECK(info.dtype == sae::CheckpointDtype::F32);
    CHECK(info.rows == 3);
    CHECK(info.cols == 4);
    const auto w_enc = reader.matrix<float>("W_enc");
    REQUIRE(w_enc.rows() == 3);
    REQUIRE(w_enc.cols() == 4);
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c) CHECK(w_enc(r, c) == static_cast<float>(r * 10 + c) + 0.5f);
    Eigen::MatrixXf col_major_back;
    reader.read_into("W_enc", col_major_back);
    REQUIRE(col_major_back.rows() == 3);
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c) CHECK(col_major_back(r, c) == static_cast<float>(r * 10 + c) + 0.5f);

    CHECK(reader.info("W_dec").dtype == sae::CheckpointDtype::F64);
    const auto w_dec = reader.matrix<double>("W_dec");
    REQUIRE(w_dec.rows() == 2);
    REQUIRE(w_dec.cols() == 3);
    CHECK(w_dec(0, 0) == 1.0 / 3);
    CHECK(w_dec(0, 1) == -2.0 / 7);
    CHECK(w_dec(0, 2) == 1e-300);
    CHECK(w_dec(1, 0) == 1e300);
    CHECK(w_dec(1, 1) == -5.5);
    CHECK(w_dec(1, 2) == 0.1);
    // f64 read as float rounds; f32 read as double is exact.
    CHECK(reader.matrix<float>("W_dec")(0, 0) == static_cast<float>(1.0 / 3));
    CHECK(reader.matrix<double>("W_enc")(2, 3) == 23.5);

    CHECK(reader.info("b_enc").rows == 4);
    CHECK(reader.info("b_enc").cols == 1);
    Eigen::VectorXf column_back;
    reader.read_into("b_enc", column_back);
    REQUIRE(column_back.size() == 4);
    CHECK(column_back(0) == 1.0f);
    CHECK(column_back(1) == -2.0f);
    CHECK(column_back(2) == 3.5f);
    CHECK(bits_of(column_back(3)) == 0x80000000u);  // -0 kept

    CHECK(reader.info("row").rows == 1);
    CHECK(reader.info("row").cols == 3);
    CHECK(reader.matrix<double>("row") == (Eigen::MatrixXd(1, 3) << 0.5, 0.25, 0.125).finished());

    Eigen::ArrayXXd array_back;
    reader.read_into("adam/m", array_back);
    REQUIRE(array_back.rows() == 2);
    CHECK(array_back(0, 0) == 1);
    CHECK(array_back(0, 1) == 2);
    CHECK(array_back(1, 0) == 3);
    CHECK(array_back(1, 1) == 4);

    CHECK(reader.matrix<double>("sum") == (Eigen::MatrixXd(2, 2) << 11, 22, 33, 44).finished());
    CHECK(reader.matrix<double>("block") == (Eigen::MatrixXd(3, 2) << 6, 7, 10, 11, 14, 15).finished());
    CHECK(reader.matrix<double>("transposed") == (Eigen::MatrixXd(2, 4) << 0, 4, 8, 12, 1, 5, 9, 13).finished());

    const auto empty = reader.matrix<float>("empty");
    CHECK(empty.rows() == 0);
    CHECK(empty.cols() == 5);

    const auto special_back = reader.matrix<double>("special");
    REQUIRE(special_back.size() == 6);
    CHECK(bits_of(special_back(0)) == 0x7ff8000000012345ull);
    CHECK(special_back(1) == std::numeric_limits<double>::infinity());
    CHECK(special_back(2) == -std::numeric_limits<double>::infinity());
    CHECK(bits_of(special_back(3)) == 0x8000000000000000ull);
    CHECK(special_back(4) == std::numeric_limits<double>::denorm_min());
    CHECK(special_back(5) == std::numeric_limits<double>::max());
  }

  SECTION("integers, doubles and strings") {
    CHECK(reader.u64s("rng") == std::vector<u64>{0, 1, 0x0123456789abcdefull, 0xffffffffffffffffull});
    CHECK(reader.u64s("none").empty());
    CHECK(reader.scalar("lr") == 3e-4);
    CHECK(bits_of(reader.scalar("neg0")) == 0x8000000000000000ull);
    CHECK(bits_of(reader.scalar("nan")) == 0x7ff8000000012345ull);
    CHECK(reader.string("recipe") == "standard");
    CHECK(reader.string("empty_string").empty());
    CHECK(reader.string("binary") == binary);
    CHECK(reader.string("config") == long_text);
    CHECK(reader.info("config").kind == sae::CheckpointKind::String);
    CHECK(reader.info("config").rows == 10000);
  }
}

TEST_CASE("read_into checks fixed sizes, resizes dynamic ones and fills any storage order", "[checkpoint]") {
  Eigen::MatrixXd m32(3, 2);
  m32 << 1, 2, 3, 4, 5, 6;
  Eigen::RowVectorXf row4(4);
  row4 << 1, 2, 3, 4;
  Eigen::VectorXf col4(4);
  col4 << 5, 6, 7, 8;
  sae::CheckpointWriter writer;
  writer.put("m32", m32);
  writer.put("row4", row4);
  writer.put("col4", col4);
  writer.put_u64s("step", {3});
  const auto reader = sae::CheckpointReader::from_bytes(writer.to_bytes(), "mem.sae");

  Eigen::Matrix<double, 3, 2> fixed_col_major;
  reader.read_into("m32", fixed_col_major);
  CHECK(fixed_col_major == (Eigen::Matrix<double, 3, 2>() << 1, 2, 3, 4, 5, 6).finished());

  Eigen::Matrix<float, 3, 2, Eigen::RowMajor> fixed_row_major;
  reader.read_into("m32", fixed_row_major);
  CHECK(fixed_row_major == (Eigen::Matrix<float, 3, 2, Eigen::RowMajor>() << 1, 2, 3, 4, 5, 6).finished());

  Eigen::Matrix<float, 3, Eigen::Dynamic> fixed_rows;
  reader.read_into("m32", fixed_rows);
  CHECK(fixed_rows.cols() == 2);
  CHECK(fixed_rows(2, 1) == 6.0f);

  Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic> array(7, 7);  // resized
  reader.read_into("m32", array);
  CHECK(array.rows() == 3);
  CHECK(array.cols() == 2);
  CHECK(array(1, 0) == 3.0f);

  // A compile-time vector takes a stored vector of either orientation.
  Eigen::Matrix<float, 4, 1> fixed_column;
  reader.read_into("row4", fixed_column);
  CHECK(fixed_column == Eigen::Vector4f(1, 2, 3, 4));
  reader.read_into("col4", fixed_column);
  CHECK(fixed_column == Eigen::Vector4f(5, 6, 7, 8));
  Eigen::RowVectorXd dynamic_row;
  reader.read_into("col4", dynamic_row);
  CHECK(dynamic_row == Eigen::RowVector4d(5, 6, 7, 8));

  // Wrong fixed sizes are refused, naming the file, the entry and both shapes.
  Eigen::Matrix<double, 2, 3> transposed_shape;
  const std::string message = runtime_error_message([&] { reader.read_into("m32", transposed_shape); });
  CHECK(starts_with(message, "mem.sae: "));
  CHECK_THAT(message, Contains("'m32'") && Contains("[3, 2]") && Contains("[2, 3]"));
  Eigen::Matrix<float, 2, Eigen::Dynamic> two_rows;
  CHECK_THAT(runtime_error_message([&] { reader.read_into("m32", two_rows); }), Contains("[2, any]"));
  Eigen::VectorXf vector;
  CHECK_THAT(runtime_error_message([&] { reader.read_into("m32", vector); }), Contains("[3, 2]"));
  Eigen::Vector3f short_vector;
  CHECK_THAT(runtime_error_message([&] { reader.read_into("col4", short_vector); }), Contains("[4, 1]"));
  CHECK_THAT(runtime_error_message([&] { reader.read_into("step", vector); }),
             Contains("'step' is a u64 array, not a tensor"));
}

TEST_CASE("A model's parameters round-trip, float file into a double fixed-size model", "[checkpoint]") {
  sae::Parameters<float> p(5, 7);
  for (int i = 0; i < p.W_enc.size(); ++i) p.W_enc.data()[i] = 0.25f * static_cast<float>(i) - 3.0f;
  for (int i = 0; i < p.W_dec.size(); ++i) p.W_dec.data()[i] = 1.0f / static_cast<float>(i + 1);
  for (int i = 0; i < p.b_enc.size(); ++i) p.b_enc(i) = -static_cast<float>(i);
  for (int i = 0; i < p.b_dec.size(); ++i) p.b_dec(i) = 0.5f * static_cast<float>(i);
  sae::CheckpointWriter writer;
  writer.put("W_enc", p.W_enc);  // column-major D x F
  writer.put("W_dec", p.W_dec);  // row-major F x D
  writer.put("b_enc", p.b_enc);
  writer.put("b_dec", p.b_dec);
  const auto reader = sae::CheckpointReader::from_bytes(writer.to_bytes(), "model.sae");

  sae::Parameters<double, 5, 7> q;
  reader.read_into("W_enc", q.W_enc);
  reader.read_into("W_dec", q.W_dec);
  reader.read_into("b_enc", q.b_enc);
  reader.read_into("b_dec", q.b_dec);
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 7; ++c) {
      CHECK(q.W_enc(r, c) == static_cast<double>(p.W_enc(r, c)));
      CHECK(q.W_dec(c, r) == static_cast<double>(p.W_dec(c, r)));
    }
  CHECK(q.b_enc == p.b_enc.cast<double>());
  CHECK(q.b_dec == p.b_dec.cast<double>());

  sae::Parameters<float, 7, 5> wrong;  // D and F swapped
  CHECK_THROWS_AS(reader.read_into("W_enc", wrong.W_enc), std::runtime_error);
}

TEST_CASE("Missing entries, wrong kinds and bad names are reported clearly", "[checkpoint]") {
  const auto reader = sae::CheckpointReader::from_bytes(small_checkpoint(4).to_bytes(), "run/ckpt.sae");
  check_small(reader, 4);

  const std::string missing = runtime_error_message([&] { reader.u64s("rng"); });
  CHECK(starts_with(missing, "run/ckpt.sae: "));
  CHECK_THAT(missing, Contains("no entry 'rng'") && Contains("'step'"));
  CHECK_THAT(runtime_error_message([&] { reader.matrix<float>("nope"); }), Contains("no entry 'nope'"));
  CHECK_THAT(runtime_error_message([&] { reader.scalar("nope"); }), Contains("no entry 'nope'"));
  CHECK_THAT(runtime_error_message([&] { reader.string("nope"); }), Contains("no entry 'nope'"));
  CHECK_THAT(runtime_error_message([&] { reader.info("nope"); }), Contains("no entry 'nope'"));

  CHECK_THAT(runtime_error_message([&] { reader.matrix<double>("lr"); }), Contains("'lr' is a double, not a tensor"));
  CHECK_THAT(runtime_error_message([&] { reader.u64s("m"); }), Contains("'m' is a tensor, not a u64 array"));
  CHECK_THAT(runtime_error_message([&] { reader.scalar("recipe"); }), Contains("'recipe' is a string, not a double"));
  CHECK_THAT(runtime_error_message([&] { reader.string("step"); }), Contains("'step' is a u64 array, not a string"));

  sae::CheckpointWriter writer;
  writer.put_double("x", 1.0);
  CHECK_THROWS_AS(writer.put_double("x", 2.0), std::invalid_argument);
  CHECK_THROWS_AS(writer.put_string("x", ""), std::invalid_argument);
  CHECK_THROWS_AS(writer.put_u64s("x", {}), std::invalid_argument);
  CHECK_THROWS_AS(writer.put("x", Eigen::MatrixXf(1, 1)), std::invalid_argument);
  CHECK_THROWS_AS(writer.put_double("", 2.0), std::invalid_argument);
  CHECK_THROWS_AS(writer.put_double(std::string(4097, 'n'), 2.0), std::invalid_argument);
  writer.put_double(std::string(4096, 'n'), 2.0);
  CHECK(writer.size() == 2);  // the refused puts added nothing
  const auto back = sae::CheckpointReader::from_bytes(writer.to_bytes(), "names.sae");
  CHECK(back.scalar("x") == 1.0);
  CHECK(back.scalar(std::string(4096, 'n')) == 2.0);
}

TEST_CASE("A crash while writing keeps the previous checkpoint", "[checkpoint]") {
  const TempDir dir("sae_test_checkpoint");
  const std::string path = dir.file("ckpt.sae");
  small_checkpoint(1).write(path);
  const Bytes old_bytes = read_bytes(path);

  const sae::CheckpointWriter next = small_checkpoint(2);
  const u64 total = next.to_bytes().size();
  const std::vector<u64> offsets = {0, 1, 2, 7, 8, 31, 32, 33, total / 2, total - 5, total - 4, total - 1, total,
                                    total + 100};
  for (const u64 after : offsets) {
    INFO("simulated crash after " << after << " of " << total << " bytes");
    const std::string message =
        runtime_error_message([&] { next.write_with_simulated_crash(path, {after, false}); });
    CHECK(starts_with(message, path + ": "));
    CHECK(dir.listing() == std::vector<std::string>{"ckpt.sae"});  // the temporary file is gone
    CHECK(read_bytes(path) == old_bytes);
    check_small(sae::CheckpointReader(path), 1);
  }

  // A real crash: no cleanup runs, the partial temporary file stays behind.
  // Readers of `path` do not see it, and the next write succeeds beside it.
  CHECK_THROWS_AS(next.write_with_simulated_crash(path, {total / 2, true}), std::runtime_error);
  const std::vector<std::string> after_crash = dir.listing();
  REQUIRE(after_crash.size() == 2);
  CHECK(after_crash[0] == "ckpt.sae");
  CHECK(starts_with(after_crash[1], "ckpt.sae.tmp."));
  CHECK(fs::file_size(dir.path() / after_crash[1]) == total / 2);
  check_small(sae::CheckpointReader(path), 1);
  CHECK_THAT(runtime_error_message([&] { sae::CheckpointReader(dir.file(after_crash[1])); }),
             Contains("truncated"));

  next.write(path);
  check_small(sae::CheckpointReader(path), 2);
  CHECK(dir.listing() == after_crash);  // the new file replaced the old; the leftover is untouched
}

TEST_CASE("Failed writes name the path and leave nothing behind", "[checkpoint]") {
  const TempDir dir("sae_test_checkpoint");
  const sae::CheckpointWriter writer = small_checkpoint(3);

  const std::string no_directory = dir.file("missing/ckpt.sae");
  const std::string message = runtime_error_message([&] { writer.write(no_directory); });
  CHECK(starts_with(message, no_directory + ": "));
  CHECK_THAT(message, Contains("cannot create the temporary file"));

  fs::create_directory(dir.path() / "a_directory");
  const std::string onto_directory = dir.file("a_directory");
  CHECK_THAT(runtime_error_message([&] { writer.write(onto_directory); }), Contains("cannot rename"));
  CHECK(dir.listing() == std::vector<std::string>{"a_directory"});
  CHECK(fs::is_empty(dir.path() / "a_directory"));

  CHECK_THROWS_AS(writer.write(""), std::runtime_error);
}

TEST_CASE("Every truncation of a valid file is rejected", "[checkpoint]") {
  sae::CheckpointWriter writer = small_checkpoint(5);
  writer.put("v", Eigen::VectorXd::LinSpaced(5, 0.0, 1.0));
  writer.put_string("empty", "");
  writer.put_u64s("none", {});
  const Bytes file = writer.to_bytes();
  check_small(sae::CheckpointReader::from_bytes(file, "whole.sae"), 5);

  for (std::size_t length = 0; length < file.size(); ++length) {
    INFO("truncated to " << length << " of " << file.size() << " bytes");
    const std::string message = rejection(Bytes(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(length)));
    REQUIRE(starts_with(message, "bad.sae: "));
  }
  Bytes longer = file;
  longer.push_back(0);
  CHECK_THAT(rejection(longer), Contains("extra bytes at the end"));

  const TempDir dir("sae_test_checkpoint");
  const std::string path = dir.file("torn.sae");
  write_bytes(path, Bytes(file.begin(), file.begin() + 100));
  const std::string message = runtime_error_message([&] { sae::CheckpointReader{path}; });
  CHECK(starts_with(message, path + ": "));
  CHECK_THAT(message, Contains("truncated"));
}

TEST_CASE("Seeded byte flips give a valid checkpoint or a runtime_error, never a crash", "[checkpoint]") {
  sae::CheckpointWriter writer = small_checkpoint(6);
  writer.put("t", Eigen::MatrixXd::Constant(2, 2, 1.5));
  writer.put_string("s", "hello");
  const Bytes file = writer.to_bytes();
  const unsigned seed = 20240611;
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  const auto random_below = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };

  SECTION("raw flips: the checksum catches them") {
    for (int trial = 0; trial < 3000; ++trial) {
      Bytes copy = file;
      const std::size_t flips = 1 + random_below(4);
      for (std::size_t k = 0; k < flips; ++k) {
        copy[random_below(copy.size())] ^= static_cast<unsigned char>(1 + random_below(255));
      }
      if (copy == file) continue;
      try {
        const auto reader = sae::CheckpointReader::from_bytes(copy, "fuzz.sae");
        // Possible only if the flips leave a consistent checksum (CRC-32 catches every 1-byte change).
        REQUIRE(flips > 1);
        const std::uint32_t stored = copy[copy.size() - 4] | (copy[copy.size() - 3] << 8) |
                                     (copy[copy.size() - 2] << 16) | (std::uint32_t{copy[copy.size() - 1]} << 24);
        REQUIRE(stored == reference_crc32(copy.data(), copy.size() - 4));
        read_everything(reader);
      } catch (const std::runtime_error& error) {
        REQUIRE(starts_with(error.what(), "fuzz.sae: "));
      }
    }
  }

  SECTION("flips with a recomputed checksum: the structure checks catch them") {
    int accepted = 0, rejected = 0;
    for (int trial = 0; trial < 4000; ++trial) {
      Bytes copy = file;
      const std::size_t flips = 1 + random_below(3);
      for (std::size_t k = 0; k < flips; ++k) {
        copy[random_below(copy.size() - 4)] ^= static_cast<unsigned char>(1u << random_below(8));
      }
      if (trial % 4 == 0) {  // also cut or grow the entries, then re-close the file
        const std::size_t at = 32 + random_below(copy.size() - 36);
        const auto position = copy.begin() + static_cast<std::ptrdiff_t>(at);
        if (trial % 8 == 0) {
          copy.erase(position, position + static_cast<std::ptrdiff_t>(1 + random_below(copy.size() - 4 - at)));
        } else {
          copy.insert(position, 1 + random_below(16), static_cast<unsigned char>(rng()));
        }
      }
      const bool keep_size_field = trial % 3 == 0;
      const Bytes size_field(copy.begin() + 16, copy.begin() + 24);
      refresh(copy);
      if (keep_size_field) {  // a flipped size field, then a matching CRC
        std::copy(size_field.begin(), size_field.end(), copy.begin() + 16);
        const std::uint32_t crc = reference_crc32(copy.data(), copy.size() - 4);
        for (int i = 0; i < 4; ++i) copy[copy.size() - 4 + i] = static_cast<unsigned char>((crc >> (8 * i)) & 0xffu);
      }
      try {
        const auto reader = sae::CheckpointReader::from_bytes(copy, "fuzz.sae");
        read_everything(reader);  // every entry the reader accepted can be read
        ++accepted;
      } catch (const std::runtime_error& error) {
        REQUIRE(starts_with(error.what(), "fuzz.sae: "));
        ++rejected;
      }
    }
    CHECK(accepted > 100);  // flips inside the data make valid files
    CHECK(rejected > 100);
  }
}

TEST_CASE("Malformed files are rejected with a message saying what is wrong", "[checkpoint]") {
  const Bytes good_entry = entry("x", kDouble, dF64, 1, 1, f64_data({2.5}));
  CHECK(sae::CheckpointReader::from_bytes(checkpoint_file({good_entry}), "good.sae").scalar("x") == 2.5);

  CHECK_THAT(rejection({}), Contains("empty"));
  Bytes wrong_magic = checkpoint_file({good_entry});
  wrong_magic[7] = 'X';
  CHECK_THAT(rejection(wrong_magic), Contains("bad magic"));
  CHECK_THAT(rejection(Bytes{0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}), Contains("bad magic"));
  CHECK_THAT(rejection(Bytes{0x89, 'S', 'A'}), Contains("bad magic"));
  CHECK_THAT(rejection(checkpoint_file({good_entry}, 1, 2)), Contains("unsupported checkpoint format version 2"));
  CHECK_THAT(rejection(checkpoint_file({good_entry}, 1, 1, 4)), Contains("unsupported flags"));

  Bytes wrong_size = checkpoint_file({good_entry});
  wrong_size[16] ^= 1;
  CHECK_THAT(rejection(wrong_size), Contains("header says"));
  Bytes flipped = checkpoint_file({good_entry});
  flipped[flipped.size() - 6] ^= 0x10;
  CHECK_THAT(rejection(flipped), Contains("checksum mismatch"));

  CHECK_THAT(rejection(checkpoint_file({entry("t", kTensor, 9, 1, 1, f64_data({1}))})),
             Contains("entry 0 't': unknown dtype code 9"));
  CHECK_THAT(rejection(checkpoint_file({entry("t", 7, dF64, 1, 1, f64_data({1}))})),
             Contains("unknown entry kind code 7"));
  CHECK_THAT(rejection(checkpoint_file({entry("t", 0, dF64, 1, 1, f64_data({1}))})),
             Contains("unknown entry kind code 0"));
  CHECK_THAT(rejection(checkpoint_file({entry("t", kTensor, dU64, 1, 1, u64_data({1}))})),
             Contains("a tensor must be f32 or f64"));
  CHECK_THAT(rejection(checkpoint_file({entry("d", kDouble, dF64, 2, 1, f64_data({1, 2}))})),
             Contains("a double must have shape [1, 1]"));
  CHECK_THAT(rejection(checkpoint_file({entry("d", kDouble, dF32, 1, 1, f32_data({1}))})),
             Contains("a double must have dtype f64"));
  CHECK_THAT(rejection(checkpoint_file({entry("u", kU64s, dU64, 1, 2, u64_data({1, 2}))})),
             Contains("a u64 array must have 1 column"));
  CHECK_THAT(rejection(checkpoint_file({entry("s", kString, dU8, 1, 2, Bytes{'a', 'b'})})),
             Contains("a string must have 1 column"));

  CHECK_THAT(rejection(checkpoint_file({good_entry, entry("y", kU64s, dU64, 0, 1, {}), good_entry})),
             Contains("entry 2 'x': duplicate entry name"));
  CHECK_THAT(rejection(checkpoint_file({entry("", kDouble, dF64, 1, 1, f64_data({1}))})), Contains("empty name"));
  CHECK_THAT(rejection(checkpoint_file({entry("x", kDouble, dF64, 1, 1, f64_data({1}), 5000)})),
             Contains("name length 5000 exceeds"));
  CHECK_THAT(rejection(checkpoint_file({entry("x", kDouble, dF64, 1, 1, f64_data({1}), 4000)})),
             Contains("the name") && Contains("runs past the end"));

  const u64 two32 = u64{1} << 32;
  CHECK_THAT(rejection(checkpoint_file({entry("t", kTensor, dF64, two32, two32, {})})), Contains("too large"));
  CHECK_THAT(rejection(checkpoint_file({entry("t", kTensor, dF64, u64{1} << 63, 0, {})})), Contains("too large"));
  CHECK_THAT(rejection(checkpoint_file({entry("t", kTensor, dF64, ~u64{0}, ~u64{0}, {})})), Contains("too large"));
  CHECK_THAT(rejection(checkpoint_file({entry("t", kTensor, dF64, u64{1} << 40, 1, f64_data({1}))})),
             Contains("the data of 't'") && Contains("runs past the end"));
  CHECK_THAT(rejection(checkpoint_file({entry("t", kTensor, dF32, 2, 2, f32_data({1, 2, 3}))})),
             Contains("runs past the end"));
  CHECK_THAT(rejection(checkpoint_file({entry("s", kString, dU8, 10, 1, Bytes{'a'})})), Contains("runs past the end"));

  const Bytes long_string = entry("s", kString, dU8, 30, 1, Bytes(30, 'a'));  // room for 2 entries' fixed parts
  CHECK_THAT(rejection(checkpoint_file({long_string}, 2)),
             Contains("entry 1: the name length") && Contains("runs past the end"));
  CHECK_THAT(rejection(checkpoint_file({good_entry, entry("y", kDouble, dF64, 1, 1, f64_data({1}))}, 1)),
             Contains("unexpected bytes after the last of the 1 entries"));
  CHECK_THAT(rejection(checkpoint_file({good_entry}, u64{1} << 60)), Contains("the header claims"));

  // Every message starts with the name given for the buffer.
  CHECK(starts_with(rejection(checkpoint_file({good_entry}, 1, 3)), "bad.sae: "));
}

TEST_CASE("Reading a missing file or a directory names the path", "[checkpoint]") {
  const TempDir dir("sae_test_checkpoint");
  const std::string missing = dir.file("nope.sae");
  const std::string message = runtime_error_message([&] { sae::CheckpointReader{missing}; });
  CHECK(starts_with(message, missing + ": "));
  CHECK_THAT(message, Contains("cannot open"));
  CHECK_THAT(runtime_error_message([&] { sae::CheckpointReader{dir.path().string()}; }), Contains("is a directory"));
  write_bytes(dir.file("empty.sae"), {});
  CHECK_THAT(runtime_error_message([&] { sae::CheckpointReader{dir.file("empty.sae")}; }), Contains("empty"));
}
