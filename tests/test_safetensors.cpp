// tests/test_safetensors.cpp: the safetensors reader and writer (sae/io/safetensors.hpp).
//
// Expected values come from outside our code: files written by the official
// safetensors library (tests/data/interop, with PyTorch's outputs for them),
// the official library's own test vectors, bytes assembled here by hand from
// the format's description, hand-worked 16-bit float bit patterns, and
// NumPy reading what we write.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <sae/io.hpp>

#include "support.hpp"
#include "temp_dir.hpp"

using sae::SafetensorsDtype;
using sae::SafetensorsFile;
using sae::SafetensorsWriter;
using sae_test::read_bytes;
using sae_test::TempDir;
using sae_test::to_vector;

namespace {

using MatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// 8-byte little-endian `header.size()`, `header` exactly as given, then `data`.
std::string safetensors(const std::string& header, const std::string& data = "") {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((static_cast<std::uint64_t>(header.size()) >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string raw_length(std::uint64_t length) {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((length >> (8 * i)) & 0xff);
  return out;
}

template <typename T>
std::string little_endian(std::initializer_list<T> values) {
  std::string out;
  for (const T v : values) {
    std::make_unsigned_t<std::conditional_t<std::is_floating_point_v<T>,
                                            std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>, T>>
        bits;
    std::memcpy(&bits, &v, sizeof bits);
    for (std::size_t i = 0; i < sizeof bits; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xff);
  }
  return out;
}

std::uint32_t float_bits(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

std::uint64_t double_bits(double value) {
  std::uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

/// `{"name":{"dtype":...,"shape":[...],"data_offsets":[b,e]}}` entry text.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, std::uint64_t begin,
                  std::uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(end) + "]}";
}

std::string interop(const std::string& relative) { return sae_test::data_path("interop/" + relative); }

/// The error thrown by opening `bytes` both from a file and from memory must
/// start with the path (or the name given) and contain `phrase`.
void check_refused(const std::string& bytes, const std::string& phrase) {
  CAPTURE(phrase);
  const TempDir dir("sae_test_safetensors");
  const std::string path = dir.write("bad.safetensors", bytes);
  SAE_CHECK_THROWS(SafetensorsFile{path}, std::runtime_error, Catch::StartsWith(path + ": ") && Catch::Contains(phrase));
  SAE_CHECK_THROWS(SafetensorsFile::from_bytes(to_vector(bytes), "in memory"), std::runtime_error,
                   Catch::StartsWith("in memory: ") && Catch::Contains(phrase));
}

bool python_has_numpy() { return std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0; }

// ---------------------------------------------------------------------------
// Encoding rules of the fixtures (manifest.json), computed here in double.

MatrixD relu(const MatrixD& m) { return m.cwiseMax(0.0); }

MatrixD jump_relu(const MatrixD& pre, const Eigen::VectorXd& threshold) {
  MatrixD f = pre;
  for (Eigen::Index r = 0; r < f.rows(); ++r)
    for (Eigen::Index c = 0; c < f.cols(); ++c) f(r, c) = pre(r, c) > threshold(c) ? pre(r, c) : 0.0;
  return f;
}

/// Keeps the k largest entries of each row, zeroes the rest.
MatrixD top_k(const MatrixD& m, int k) {
  MatrixD f = MatrixD::Zero(m.rows(), m.cols());
  for (Eigen::Index r = 0; r < m.rows(); ++r) {
    std::vector<Eigen::Index> order(static_cast<std::size_t>(m.cols()));
    for (Eigen::Index c = 0; c < m.cols(); ++c) order[static_cast<std::size_t>(c)] = c;
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](Eigen::Index a, Eigen::Index b) { return m(r, a) > m(r, b); });
    for (int i = 0; i < k; ++i) f(r, order[static_cast<std::size_t>(i)]) = m(r, order[static_cast<std::size_t>(i)]);
  }
  return f;
}

MatrixD rowwise_plus(MatrixD m, const Eigen::VectorXd& v) {
  m.rowwise() += v.transpose();
  return m;
}

}  // namespace

// ---------------------------------------------------------------------------
// Files written by the official library

TEST_CASE("safetensors: SAELens standard F32 weights reproduce PyTorch's codes", "[safetensors]") {
  const SafetensorsFile f(interop("saelens-standard-f32/sae_weights.safetensors"));
  CHECK(f.names() == std::vector<std::string>{"W_dec", "W_enc", "b_dec", "b_enc"});  // data order
  CHECK(f.metadata().empty());
  CHECK(f.info("W_enc").dtype == SafetensorsDtype::F32);
  CHECK(f.info("W_enc").shape == std::vector<std::uint64_t>{16, 64});
  CHECK(f.info("b_enc").shape == std::vector<std::uint64_t>{64});
  CHECK(f.info("W_enc").begin == 4096);
  CHECK(f.info("W_enc").end == 8192);

  const MatrixD W_enc = f.read<double>("W_enc");
  const Eigen::VectorXd b_enc = f.read<double>("b_enc");
  const MatrixD W_dec = f.read<double>("W_dec");
  Eigen::VectorXd b_dec;
  f.read_into("b_dec", b_dec);
  REQUIRE(W_enc.rows() == 16);
  REQUIRE(W_enc.cols() == 64);
  REQUIRE(b_enc.size() == 64);
  REQUIRE(b_dec.size() == 16);

  const MatrixD x = sae::load_npy<double>(interop("saelens-standard-f32/x.npy"));
  const MatrixD codes = relu(rowwise_plus((x.rowwise() - b_dec.transpose()) * W_enc, b_enc));
  const MatrixD recon = rowwise_plus(codes * W_dec, b_dec);
  CHECK(sae_test::relative_error(codes, sae::load_npy<double>(interop("saelens-standard-f32/expected_codes.npy"))) < 1e-12);
  CHECK(sae_test::relative_error(recon, sae::load_npy<double>(interop("saelens-standard-f32/expected_recon.npy"))) < 1e-12);

  // In float: equal to float32 rounding.
  const sae::Batch<float> W_enc_f = f.read<float>("W_enc");
  CHECK((W_enc_f.cast<double>() - W_enc).cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("safetensors: SAELens JumpReLU F32 weights reproduce PyTorch's codes", "[safetensors]") {
  const SafetensorsFile f(interop("saelens-jumprelu-f32/sae_weights.safetensors"));
  CHECK(f.names() == std::vector<std::string>{"W_dec", "W_enc", "b_dec", "b_enc", "threshold"});
  const MatrixD x = sae::load_npy<double>(interop("saelens-jumprelu-f32/x.npy"));
  const Eigen::VectorXd threshold = f.read<double>("threshold");
  const MatrixD codes = jump_relu(rowwise_plus(x * f.read<double>("W_enc"), f.read<double>("b_enc")), threshold);
  const MatrixD recon = rowwise_plus(codes * f.read<double>("W_dec"), f.read<double>("b_dec"));
  CHECK(codes.cwiseAbs().maxCoeff() > 0);
  CHECK(sae_test::relative_error(codes, sae::load_npy<double>(interop("saelens-jumprelu-f32/expected_codes.npy"))) < 1e-12);
  CHECK(sae_test::relative_error(recon, sae::load_npy<double>(interop("saelens-jumprelu-f32/expected_recon.npy"))) < 1e-12);
}

TEST_CASE("safetensors: sparsify F16 weights convert exactly and reproduce PyTorch's codes", "[safetensors]") {
  const SafetensorsFile f(interop("sparsify-topk-f16/sae.safetensors"));
  CHECK(f.names() == std::vector<std::string>{"W_dec", "b_dec", "encoder.bias", "encoder.weight"});
  CHECK(f.info("encoder.weight").dtype == SafetensorsDtype::F16);
  CHECK(f.info("encoder.weight").shape == std::vector<std::uint64_t>{64, 16});

  // The expected outputs were computed in float64 from the float16 weights, so
  // any error in the F16 -> double conversion shows up here.
  const MatrixD encoder_weight = f.read<double>("encoder.weight");  // F x D
  const Eigen::VectorXd encoder_bias = f.read<double>("encoder.bias");
  const MatrixD W_dec = f.read<double>("W_dec");
  const Eigen::VectorXd b_dec = f.read<double>("b_dec");
  const MatrixD x = sae::load_npy<double>(interop("sparsify-topk-f16/x.npy"));
  const MatrixD pre = relu(rowwise_plus((x.rowwise() - b_dec.transpose()) * encoder_weight.transpose(), encoder_bias));
  const MatrixD codes = top_k(pre, 8);
  const MatrixD recon = rowwise_plus(codes * W_dec, b_dec);
  CHECK(sae_test::relative_error(codes, sae::load_npy<double>(interop("sparsify-topk-f16/expected_codes.npy"))) < 1e-12);
  CHECK(sae_test::relative_error(recon, sae::load_npy<double>(interop("sparsify-topk-f16/expected_recon.npy"))) < 1e-12);

  // Reading as float is the same (every float16 is a float).
  CHECK(f.read<float>("encoder.weight").cast<double>() == encoder_weight);
}

TEST_CASE("safetensors: our writer reproduces the official library's files byte for byte", "[safetensors]") {
  const TempDir dir("sae_test_safetensors");
  for (const std::string fixture : {"saelens-standard-f32/sae_weights.safetensors",
                                    "saelens-jumprelu-f32/sae_weights.safetensors",
                                    "sparsify-topk-f16/sae.safetensors"}) {
    CAPTURE(fixture);
    const SafetensorsFile original(interop(fixture));
    SafetensorsWriter writer;
    // Added in reverse order: the writer sorts as the official library does.
    const std::vector<std::string> names = original.names();
    for (auto it = names.rbegin(); it != names.rend(); ++it) {
      const auto& info = original.info(*it);
      const sae::Vector<float> values = original.read_flat<float>(*it);
      writer.add(*it, values, info.shape, info.dtype);
    }
    const std::string path = dir.file("rewritten.safetensors");
    writer.write(path);
    CHECK(read_bytes(path) == read_bytes(interop(fixture)));
    const auto in_memory = writer.to_bytes();
    CHECK(std::string(in_memory.begin(), in_memory.end()) == read_bytes(interop(fixture)));
  }
}

// ---------------------------------------------------------------------------
// The official library's own test vectors (safetensors/src/tensor.rs)

TEST_CASE("safetensors: the writer matches the official library's serialization tests", "[safetensors]") {
  const Eigen::VectorXf values = (Eigen::VectorXf(6) << 0, 1, 2, 3, 4, 5).finished();
  const auto bytes_of = [](const SafetensorsWriter& w) {
    const auto v = w.to_bytes();
    return std::string(v.begin(), v.end());
  };
  const std::string data = little_endian<float>({0, 1, 2, 3, 4, 5});

  // test_serialization: a 64-byte header needs no padding.
  CHECK(bytes_of(SafetensorsWriter().add("attn.0", values, {1, 2, 3}, SafetensorsDtype::F32)) ==
        safetensors(R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})", data));
  // test_serialization_forced_alignement: 65 bytes of JSON, padded with 7 spaces.
  CHECK(bytes_of(SafetensorsWriter().add("attn0", values, {1, 1, 2, 3}, SafetensorsDtype::F32)) ==
        safetensors(R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       )", data));
  // test_empty: with and without metadata.
  CHECK(bytes_of(SafetensorsWriter()) == safetensors("{}      "));
  CHECK(bytes_of(SafetensorsWriter().set_metadata("framework", "pt")) ==
        safetensors(R"({"__metadata__":{"framework":"pt"}}     )"));

  // And the reader accepts them.
  const SafetensorsFile f = SafetensorsFile::from_bytes(
      to_vector(safetensors(R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       )", data)),
      "attn0");
  CHECK(f.read_flat<float>("attn0") == values);
  CHECK(SafetensorsFile::from_bytes(to_vector(safetensors(R"({"__metadata__":{"framework":"pt"}}     )")), "m")
            .metadata() == std::map<std::string, std::string>{{"framework", "pt"}});
}

// ---------------------------------------------------------------------------
// Writing and reading back

TEST_CASE("safetensors: float and double round-trip bit for bit, specials included", "[safetensors]") {
  const TempDir dir("sae_test_safetensors");
  const float quiet_nan_with_payload = sae::detail::bit_cast<float>(std::uint32_t{0x7fc12345});
  const double nan_with_payload = sae::detail::bit_cast<double>(std::uint64_t{0xfff0000000000abcull});

  sae::Batch<float> a(2, 4);
  a << 1.5f, -0.0f, std::numeric_limits<float>::infinity(), quiet_nan_with_payload,  //
      std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max(), 0.1f, -3e-39f;
  Eigen::MatrixXd b(3, 2);  // column-major storage: written in logical (row-major) order
  b << 0.1, -std::numeric_limits<double>::infinity(), nan_with_payload, std::numeric_limits<double>::denorm_min(),
      -0.0, 1e300;
  Eigen::VectorXf v = Eigen::VectorXf::LinSpaced(5, -1.0f, 1.0f);
  Eigen::RowVectorXd row = Eigen::RowVectorXd::LinSpaced(3, 0.0, 2.0);

  SafetensorsWriter writer;
  writer.add("a", a).add("b", b).add("v", v).add("row", row).set_metadata("format", "pt").set_metadata("note", "ünïcode");
  writer.add("scalar", Eigen::Matrix<double, 1, 1>::Constant(2.5), {}, SafetensorsDtype::F64);
  writer.add("empty", Eigen::MatrixXf(0, 5));
  writer.add("cube", Eigen::VectorXf::LinSpaced(24, 0.0f, 23.0f), {2, 3, 4}, SafetensorsDtype::F32);
  const std::string path = dir.file("round.safetensors");
  writer.write(path);
  CHECK(dir.listing() == std::vector<std::string>{"round.safetensors"});  // no temporary file left

  const std::string bytes = read_bytes(path);
  std::uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | static_cast<unsigned char>(bytes[i]);
  CHECK(header_length % 8 == 0);
  CHECK(bytes.substr(8, 16) == R"({"__metadata__":)");

  const SafetensorsFile f(path);
  CHECK(f.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"note", "ünïcode"}});
  // Sorted as the official library does: F64 tensors first, then F32, each by name.
  CHECK(f.names() == std::vector<std::string>{"b", "row", "scalar", "a", "cube", "empty", "v"});
  CHECK(f.info("a").shape == std::vector<std::uint64_t>{2, 4});
  CHECK(f.info("b").shape == std::vector<std::uint64_t>{3, 2});
  CHECK(f.info("v").shape == std::vector<std::uint64_t>{5});
  CHECK(f.info("row").shape == std::vector<std::uint64_t>{1, 3});
  CHECK(f.info("scalar").shape.empty());
  CHECK(f.info("empty").shape == std::vector<std::uint64_t>{0, 5});
  CHECK(f.info("cube").shape == std::vector<std::uint64_t>{2, 3, 4});

  const sae::Batch<float> a2 = f.read<float>("a");
  REQUIRE((a2.rows() == 2 && a2.cols() == 4));
  for (Eigen::Index i = 0; i < a.size(); ++i) CHECK(float_bits(a2.data()[i]) == float_bits(a.data()[i]));
  Eigen::MatrixXd b2;  // column-major target
  f.read_into("b", b2);
  REQUIRE((b2.rows() == 3 && b2.cols() == 2));
  for (Eigen::Index r = 0; r < 3; ++r)
    for (Eigen::Index c = 0; c < 2; ++c) CHECK(double_bits(b2(r, c)) == double_bits(b(r, c)));
  CHECK(f.read<float>("v") == v);
  Eigen::VectorXf v2;
  f.read_into("v", v2);
  CHECK(v2 == v);
  Eigen::RowVectorXf v3;  // a 1-D tensor into a row vector
  f.read_into("v", v3);
  CHECK(v3 == v.transpose());
  Eigen::VectorXd row2;  // [1, 3] into a column vector
  f.read_into("row", row2);
  CHECK(row2 == row.transpose());
  const sae::Batch<double> scalar = f.read<double>("scalar");
  REQUIRE((scalar.rows() == 1 && scalar.cols() == 1));
  CHECK(scalar(0, 0) == 2.5);
  const sae::Batch<float> empty = f.read<float>("empty");
  CHECK((empty.rows() == 0 && empty.cols() == 5));
  CHECK(f.read_flat<float>("cube") == Eigen::VectorXf::LinSpaced(24, 0.0f, 23.0f));
  Eigen::Matrix<float, 2, 4> fixed;
  f.read_into("a", fixed);
  CHECK(fixed(1, 2) == 0.1f);
  f.check_shape("a", {2, 4});
  SAE_CHECK_THROWS(f.check_shape("a", {4, 2}), std::runtime_error,
                   Catch::StartsWith(path + ": ") && Catch::Contains("has shape [2, 4], expected [4, 2]"));

  // Converting reads: F64 -> float rounds to nearest, F32 -> double widens.
  CHECK(f.read<float>("b")(0, 0) == 0.1f);
  CHECK(f.read<double>("a")(1, 2) == static_cast<double>(0.1f));

  // Writing again replaces the file atomically.
  SafetensorsWriter().add("only", v).write(path);
  CHECK(SafetensorsFile(path).names() == std::vector<std::string>{"only"});
  CHECK(dir.listing() == std::vector<std::string>{"round.safetensors"});
}

TEST_CASE("safetensors: the writer refuses what it cannot write", "[safetensors]") {
  const Eigen::VectorXf v = Eigen::VectorXf::Ones(4);
  SafetensorsWriter w;
  w.add("x", v);
  CHECK_THROWS_WITH(w.add("x", v), Catch::Contains("'x' added twice"));
  CHECK_THROWS_AS(w.add("x", v), std::invalid_argument);
  CHECK_THROWS_WITH(w.add("__metadata__", v), Catch::Contains("reserved"));
  CHECK_THROWS_WITH(w.add("y", v, {3}, SafetensorsDtype::F32), Catch::Contains("does not hold its 4 values"));
  CHECK_THROWS_WITH(w.add("y", v, {0, 4}, SafetensorsDtype::F32), Catch::Contains("does not hold"));
  CHECK_THROWS_WITH(w.add("y", v, {1ull << 32, 1ull << 32, 4}, SafetensorsDtype::F32), Catch::Contains("does not hold"));
  CHECK_THROWS_WITH(w.add("y", v, SafetensorsDtype::I32), Catch::Contains("cannot write dtype I32"));
  CHECK_THROWS_WITH(w.add(std::string("bad\xff", 4), v), Catch::Contains("not valid UTF-8"));
  CHECK_THROWS_WITH(w.set_metadata("k", std::string("\xc3", 1)), Catch::Contains("not valid UTF-8"));
  CHECK_THROWS_WITH(w.write(""), Catch::Contains("the path is empty"));
  const TempDir dir("sae_test_safetensors");
  SAE_CHECK_THROWS(w.write(dir.file("no/such/dir/x.safetensors")), std::runtime_error,
                   Catch::StartsWith(dir.file("no/such/dir/x.safetensors") + ": ") && Catch::Contains("cannot create"));
  // A failed add leaves the writer as it was.
  CHECK(SafetensorsFile::from_bytes(w.to_bytes(), "w").names() == std::vector<std::string>{"x"});
}

// ---------------------------------------------------------------------------
// 16-bit floats, hand-worked

TEST_CASE("safetensors: F16 and BF16 elements decode exactly", "[safetensors]") {
  const std::string halves = little_endian<std::uint16_t>({
      0x3C00,  // 1.0
      0xC000,  // -2.0
      0x7BFF,  // 65504, the largest half
      0x0001,  // 2^-24, the smallest subnormal
      0x03FF,  // 1023 * 2^-24, the largest subnormal
      0x8000,  // -0.0
      0x7C00,  // +inf
      0xFC00,  // -inf
      0x7E00,  // nan
  });
  const std::string bfloats = little_endian<std::uint16_t>({
      0x3F80,  // 1.0
      0xC000,  // -2.0
      0x7F7F,  // 0x1.fep127, the largest bfloat16
      0x0001,  // 2^-133, the smallest subnormal
      0x3EAB,  // 0.333984375
      0x8000,  // -0.0
      0x7F80,  // +inf
      0xFF80,  // -inf
      0x7FC0,  // nan
  });
  const SafetensorsFile f = SafetensorsFile::from_bytes(
      to_vector(safetensors("{" + entry("h", "F16", "[9]", 0, 18) + "," + entry("b", "BF16", "[3,3]", 18, 36) + "}",
                            halves + bfloats)),
      "halves");
  const Eigen::VectorXd h = f.read<double>("h");
  CHECK(h(0) == 1.0);
  CHECK(h(1) == -2.0);
  CHECK(h(2) == 65504.0);
  CHECK(h(3) == std::ldexp(1.0, -24));
  CHECK(h(4) == std::ldexp(1023.0, -24));
  CHECK((h(5) == 0.0 && std::signbit(h(5))));
  CHECK(h(6) == std::numeric_limits<double>::infinity());
  CHECK(h(7) == -std::numeric_limits<double>::infinity());
  CHECK(std::isnan(h(8)));

  const sae::Batch<float> b = f.read<float>("b");
  REQUIRE((b.rows() == 3 && b.cols() == 3));
  CHECK(b(0, 0) == 1.0f);
  CHECK(b(0, 1) == -2.0f);
  CHECK(b(0, 2) == std::ldexp(255.0f, 120));  // 0x1.fep127 = 255 * 2^120
  CHECK(b(1, 0) == std::ldexp(1.0f, -133));
  CHECK(b(1, 1) == 0.333984375f);
  CHECK((b(1, 2) == 0.0f && std::signbit(b(1, 2))));
  CHECK(b(2, 0) == std::numeric_limits<float>::infinity());
  CHECK(b(2, 1) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(b(2, 2)));
}

TEST_CASE("safetensors: F16 and BF16 encoding rounds to nearest, ties to even", "[safetensors]") {
  using sae::detail::float_to_bfloat16;
  using sae::detail::float_to_half;
  const double inf = std::numeric_limits<double>::infinity();
  // binary16
  CHECK(float_to_half(1.0) == 0x3C00);
  CHECK(float_to_half(-2.0) == 0xC000);
  CHECK(float_to_half(65504.0) == 0x7BFF);
  CHECK(float_to_half(65519.99) == 0x7BFF);            // below max + half a step
  CHECK(float_to_half(65520.0) == 0x7C00);             // the tie rounds to even: infinity
  CHECK(float_to_half(1e6) == 0x7C00);
  CHECK(float_to_half(-inf) == 0xFC00);
  CHECK(float_to_half(std::ldexp(1.0, -24)) == 0x0001);   // smallest subnormal
  CHECK(float_to_half(std::ldexp(1.0, -25)) == 0x0000);   // half of it: tie to even (zero)
  CHECK(float_to_half(-std::ldexp(1.0, -25)) == 0x8000);
  CHECK(float_to_half(std::ldexp(1.5, -25)) == 0x0001);   // 0.75 of a step rounds up
  CHECK(float_to_half(std::ldexp(3.0, -25)) == 0x0002);   // 1.5 steps: tie to even (2)
  CHECK(float_to_half(std::ldexp(5.0, -25)) == 0x0002);   // 2.5 steps: tie to even (2)
  CHECK(float_to_half(std::ldexp(2047.0, -25)) == 0x0400);  // 1023.5 steps: carries into the smallest normal
  CHECK(float_to_half(1.0 + std::ldexp(1.0, -11)) == 0x3C00);      // tie between 1 and 1 + 2^-10: even
  CHECK(float_to_half(1.0 + std::ldexp(3.0, -11)) == 0x3C02);      // tie: up to the even one
  CHECK(float_to_half(1.0 + std::ldexp(1.0, -11) + 1e-12) == 0x3C01);  // just above the tie
  CHECK(float_to_half(0.1) == 0x2E66);
  CHECK(float_to_half(-0.0) == 0x8000);
  CHECK(float_to_half(std::numeric_limits<double>::denorm_min()) == 0x0000);
  CHECK(float_to_half(std::nan("")) == 0x7E00);
  // bfloat16
  CHECK(float_to_bfloat16(1.0) == 0x3F80);
  CHECK(float_to_bfloat16(-2.0) == 0xC000);
  CHECK(float_to_bfloat16(1.0 + std::ldexp(1.0, -8)) == 0x3F80);  // tie: even
  CHECK(float_to_bfloat16(1.0 + std::ldexp(3.0, -8)) == 0x3F82);  // tie: up to the even one
  CHECK(float_to_bfloat16(0.1f) == 0x3DCD);                        // torch.tensor(0.1).bfloat16()
  CHECK(float_to_bfloat16(std::numeric_limits<float>::max()) == 0x7F80);  // rounds up to infinity
  CHECK(float_to_bfloat16(std::ldexp(255.0, 120)) == 0x7F7F);
  CHECK(float_to_bfloat16(std::ldexp(1.0, -133)) == 0x0001);
  CHECK(float_to_bfloat16(std::ldexp(1.0, -134)) == 0x0000);   // tie: even
  CHECK(float_to_bfloat16(-inf) == 0xFF80);
  CHECK(float_to_bfloat16(std::nanf("")) == 0x7FC0);
  CHECK(float_to_bfloat16(1e-300) == 0x0000);   // a double far below bfloat16's range
  CHECK(float_to_bfloat16(1e300) == 0x7F80);
}

TEST_CASE("safetensors: every F16 and BF16 value survives decode then encode", "[safetensors]") {
  for (std::uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto b = static_cast<std::uint16_t>(bits);
    const bool half_nan = (b & 0x7C00) == 0x7C00 && (b & 0x03FF) != 0;
    const bool bf16_nan = (b & 0x7F80) == 0x7F80 && (b & 0x007F) != 0;
    if (!half_nan && sae::detail::float_to_half(sae::detail::half_to_float(b)) != b) FAIL("half " << bits);
    if (!bf16_nan && sae::detail::float_to_bfloat16(sae::detail::bfloat16_to_float(b)) != b) FAIL("bf16 " << bits);
    if (half_nan && !std::isnan(sae::detail::half_to_float(sae::detail::float_to_half(sae::detail::half_to_float(b))))) {
      FAIL("half nan " << bits);
    }
  }
  SUCCEED();
}

TEST_CASE("safetensors: F16 encoding picks the nearest half for random values", "[safetensors]") {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> mantissa(-1.0, 1.0);
  std::uniform_int_distribution<int> exponent(-30, 17);
  for (int i = 0; i < 20000; ++i) {
    const double x = std::ldexp(mantissa(rng), exponent(rng));
    const std::uint16_t h = sae::detail::float_to_half(x);
    const double chosen = sae::detail::half_to_float(h);
    if (std::isinf(chosen)) {  // only at or past 65504 + half a step (65520)
      if (std::fabs(x) < 65520.0) FAIL("x = " << x << " gave infinity");
      continue;
    }
    // The neighbours one step either side (same sign) are no closer.
    for (const int step : {-1, 1}) {
      const int magnitude_bits = (h & 0x7FFF) + step;
      if (magnitude_bits < 0 || magnitude_bits > 0x7C00) continue;
      const double other = sae::detail::half_to_float(static_cast<std::uint16_t>((h & 0x8000) | magnitude_bits));
      if (std::fabs(other - x) < std::fabs(chosen - x) ||
          (std::fabs(other - x) == std::fabs(chosen - x) && (h & 1) != 0)) {
        FAIL("x = " << x << " gave " << chosen << ", but " << other << " is nearer (or an even tie)");
      }
    }
  }
  SUCCEED();
}

TEST_CASE("safetensors: writing F16 and BF16 rounds each value", "[safetensors]") {
  Eigen::VectorXd v(4);
  v << 0.1, 65520.0, 1.0 + std::ldexp(3.0, -8), -std::ldexp(1.0, -25);
  const auto bytes = SafetensorsWriter().add("h", v, SafetensorsDtype::F16).add("b", v, SafetensorsDtype::BF16).to_bytes();
  const SafetensorsFile f = SafetensorsFile::from_bytes(bytes, "rounded");
  CHECK(f.names() == std::vector<std::string>{"b", "h"});  // BF16 sorts before F16
  const Eigen::VectorXd h = f.read<double>("h");
  CHECK(h(0) == sae::detail::half_to_float(0x2E66));
  CHECK(std::isinf(h(1)));
  CHECK(h(2) == 1.01171875);  // 1 + 3 * 2^-8, exact in half
  CHECK((h(3) == 0.0 && std::signbit(h(3))));
  const Eigen::VectorXd b = f.read<double>("b");
  CHECK(b(0) == static_cast<double>(sae::detail::bfloat16_to_float(0x3DCD)));
  CHECK(b(1) == 65536.0);
  CHECK(b(2) == 1.015625);  // the tie went to even: 1 + 4 * 2^-8
  CHECK(b(3) == -std::ldexp(1.0, -25));
}

TEST_CASE("safetensors: integer and BOOL tensors convert, 8-bit floats are refused on read", "[safetensors]") {
  const std::string data = little_endian<std::int32_t>({-7, 2147483647}) + little_endian<std::uint8_t>({0, 1, 255}) +
                           std::string("\x01\x00", 2) + little_endian<std::int64_t>({-(1ll << 40)}) +
                           std::string("\x38", 1);
  const SafetensorsFile f = SafetensorsFile::from_bytes(
      to_vector(safetensors("{" + entry("i", "I32", "[2]", 0, 8) + "," + entry("u", "U8", "[3]", 8, 11) + "," +
                                entry("flag", "BOOL", "[2]", 11, 13) + "," + entry("big", "I64", "[]", 13, 21) + "," +
                                entry("f8", "F8_E4M3", "[1]", 21, 22) + "}",
                            data)),
      "ints");
  CHECK(f.read<double>("i")(1) == 2147483647.0);
  CHECK(f.read<double>("i")(0) == -7.0);
  CHECK(f.read<float>("u")(2) == 255.0f);
  CHECK(f.read<float>("flag")(0) == 1.0f);
  CHECK(f.read<float>("flag")(1) == 0.0f);
  CHECK(f.read<double>("big")(0, 0) == -std::ldexp(1.0, 40));
  CHECK(f.info("f8").dtype == SafetensorsDtype::F8_E4M3);
  SAE_CHECK_THROWS(f.read<float>("f8"), std::runtime_error,
                   Catch::StartsWith("ints: ") && Catch::Contains("dtype F8_E4M3, which sae does not convert"));
}

// ---------------------------------------------------------------------------
// Malformed files: every one refused with a message naming the problem

TEST_CASE("safetensors: malformed lengths and headers are refused", "[safetensors]") {
  check_refused("", "0 bytes, too short for the 8-byte header length");
  check_refused(std::string("\x02\0\0\0\0\0\0", 7), "7 bytes, too short");
  check_refused(raw_length(100'000'001) + "{}", "header length 100000001 is over the limit of 100000000");
  check_refused(raw_length(~0ull) + "{}", "is over the limit");
  check_refused(raw_length(40) + "{}", "header length 40 runs past the end of the file (10 bytes)");
  check_refused(safetensors(""), "not valid JSON");
  check_refused(safetensors(R"({"a":)"), "not valid JSON");
  check_refused(safetensors(R"({"a":{}} x)"), "not valid JSON");
  check_refused(safetensors(std::string("{}\0\0\0\0\0\0", 8)), "not valid JSON");  // NUL is not JSON whitespace
  check_refused(safetensors(std::string("{\"\xff\":1}")), "not valid JSON");  // not UTF-8
  check_refused(safetensors("\xEF\xBB\xBF{}"), "byte order mark");
  check_refused(safetensors("[1, 2]    "), "the header is a JSON array, not an object");
  check_refused(safetensors("\"text\""), "the header is a JSON string, not an object");
  check_refused(safetensors(std::string(100, '[') + std::string(100, ']')), "more than 64 levels deep");
}

TEST_CASE("safetensors: malformed entries are refused", "[safetensors]") {
  const std::string data16(16, '\0');
  check_refused(safetensors(R"({"a":5})"), "tensor 'a': its entry is a JSON number, not an object");
  check_refused(safetensors(R"({"a":{"shape":[4],"data_offsets":[0,16]}})", data16), "tensor 'a' has no \"dtype\"");
  check_refused(safetensors(R"({"a":{"dtype":"F32","data_offsets":[0,16]}})", data16), "tensor 'a' has no \"shape\"");
  check_refused(safetensors(R"({"a":{"dtype":"F32","shape":[4]}})", data16), "tensor 'a' has no \"data_offsets\"");
  check_refused(safetensors(R"({"a":{"dtype":32,"shape":[4],"data_offsets":[0,16]}})", data16),
                "\"dtype\" is a JSON number, not a string");
  check_refused(safetensors(R"({"a":{"dtype":"F128","shape":[4],"data_offsets":[0,16]}})", data16),
                "tensor 'a' has unsupported dtype 'F128'");
  check_refused(safetensors(R"({"a":{"dtype":"f32","shape":[4],"data_offsets":[0,16]}})", data16),
                "unsupported dtype 'f32'");
  check_refused(safetensors(R"({"a":{"dtype":"F32","shape":"4","data_offsets":[0,16]}})", data16),
                "\"shape\" is a JSON string, not an array");
  check_refused(safetensors(R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", data16),
                "\"shape\" entries must be non-negative integers, not -4");
  check_refused(safetensors(R"({"a":{"dtype":"F32","shape":[4.0],"data_offsets":[0,16]}})", data16),
                "must be non-negative integers, not 4.0");
  check_refused(safetensors(R"({"a":{"dtype":"F32","shape":[null],"data_offsets":[0,16]}})", data16),
                "must be non-negative integers, not null");
  check_refused(safetensors(R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,16]}})", data16),
                "dimension 18446744073709551615 in \"shape\" is too large");
  check_refused(safetensors(R"({"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,16]}})", data16),
                "must be non-negative integers");
  check_refused(safetensors(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", data16),
                "shape [4294967296, 4294967296] of F32 overflows 64 bits");
  check_refused(safetensors(R"({"a":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}})", std::string(1, '\0')),
                "is 12 bits, not a whole number of bytes");
  for (const std::string offsets : {R"("0,16")", "[0]", "[0,16,16]", "[-1,15]", "[0.0,16]", "{}"}) {
    check_refused(safetensors(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":)" + offsets + "}}", data16),
                  "\"data_offsets\" must be [begin, end], two non-negative integers");
  }
  check_refused(safetensors(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", data16),
                "data_offsets [16, 0]: the end is before the beginning");
  check_refused(safetensors(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}})", data16),
                "tensor 'a' has data_offsets [0, 12] (12 bytes), but shape [4] of F32 needs 16 bytes");
  check_refused(safetensors(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,8]}})", data16),
                "(8 bytes), but shape [] of F32 needs 4 bytes");
  // Duplicates: nlohmann (like serde_json) would keep the last one silently.
  check_refused(safetensors("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("a", "F32", "[2]", 8, 16) + "}", data16),
                "header names tensor 'a' twice");
  check_refused(safetensors(R"({"a":{"dtype":"F32","dtype":"F64","shape":[4],"data_offsets":[0,16]}})", data16),
                "header repeats key 'dtype' inside one object");
  check_refused(safetensors(R"({"__metadata__":{"k":"a","k":"b"}})"), "repeats key 'k'");
}

TEST_CASE("safetensors: offsets that do not tile the data buffer exactly are refused", "[safetensors]") {
  const std::string data16(16, '\0');
  check_refused(safetensors("{" + entry("a", "F32", "[4]", 0, 16) + "}", data16.substr(0, 12)),
                "tensor 'a' has data_offsets [0, 16] past the end of the data buffer (12 bytes)");
  check_refused(safetensors("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12) + "}", data16),
                "tensor 'b' at data_offsets [4, 12] overlaps tensor 'a' (which ends at 8)");
  check_refused(safetensors("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 0, 8) + "}", data16),
                "overlaps tensor 'a'");
  check_refused(safetensors("{" + entry("a", "F32", "[2]", 4, 12) + "}", data16.substr(0, 12)),
                "bytes [0, 4) of the data buffer belong to no tensor (a gap before tensor 'a')");
  check_refused(safetensors("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[1]", 12, 16) + "}", data16),
                "bytes [8, 12) of the data buffer belong to no tensor (a gap before tensor 'b')");
  check_refused(safetensors("{" + entry("a", "F32", "[3]", 0, 12) + "}", data16),
                "the last 4 bytes of the data buffer belong to no tensor (the last tensor ends at 12, the buffer at 16)");
  check_refused(safetensors("{}", data16), "the last 16 bytes of the data buffer belong to no tensor (there are no tensors");

  // Order in the header does not matter, and empty tensors may sit anywhere.
  const SafetensorsFile f = SafetensorsFile::from_bytes(
      to_vector(safetensors("{" + entry("b", "F32", "[2]", 8, 16) + "," + entry("e", "F64", "[0,3]", 8, 8) + "," +
                                entry("a", "F32", "[2]", 0, 8) + "}",
                            little_endian<float>({1, 2, 3, 4}))),
      "tiled");
  CHECK(f.names() == std::vector<std::string>{"a", "e", "b"});
  CHECK(f.read<float>("b")(1) == 4.0f);
}

TEST_CASE("safetensors: bad __metadata__, missing tensors and unreadable shapes are refused", "[safetensors]") {
  check_refused(safetensors(R"({"__metadata__":{"epoch":3}})"),
                "\"__metadata__\" value for 'epoch' is a JSON number, not a string");
  check_refused(safetensors(R"({"__metadata__":["a"]})"), "\"__metadata__\" is a JSON array, not an object");
  CHECK(SafetensorsFile::from_bytes(to_vector(safetensors(R"({"__metadata__":null})")), "null").metadata().empty());

  const SafetensorsFile f = SafetensorsFile::from_bytes(
      to_vector(safetensors("{" + entry("cube", "F32", "[2,1,2]", 0, 16) + "," + entry("m", "F32", "[2,2]", 16, 32) +
                                R"(,"extra":{"dtype":"F32","shape":[0],"data_offsets":[32,32],"future":[1,{}]}})",
                            std::string(32, '\0'))),
      "shapes.safetensors");
  SAE_CHECK_THROWS(f.read<float>("missing"), std::runtime_error,
                   Catch::StartsWith("shapes.safetensors: ") &&
                       Catch::Contains("no tensor named 'missing' (the file has 'cube', 'm', 'extra')"));
  SAE_CHECK_THROWS(f.info("missing"), std::runtime_error, Catch::Contains("no tensor named 'missing'"));
  CHECK_FALSE(f.has("missing"));
  CHECK(f.has("extra"));
  SAE_CHECK_THROWS(f.read<float>("cube"), std::runtime_error,
                   Catch::Contains("tensor 'cube' has 3 dimensions, shape [2, 1, 2]"));
  CHECK(f.read_flat<float>("cube").size() == 4);
  Eigen::Matrix<float, 3, 2> wrong;
  SAE_CHECK_THROWS(f.read_into("m", wrong), std::runtime_error,
                   Catch::Contains("tensor 'm' has shape [2, 2], but the target's fixed size is [3, 2]"));
  Eigen::Vector4f vector4;
  SAE_CHECK_THROWS(f.read_into("m", vector4), std::runtime_error, Catch::Contains("fixed size is [4, 1]"));
}

TEST_CASE("safetensors: files that cannot be opened name the path", "[safetensors]") {
  const TempDir dir("sae_test_safetensors");
  const std::string missing = dir.file("missing.safetensors");
  SAE_CHECK_THROWS(SafetensorsFile{missing}, std::runtime_error,
                   Catch::StartsWith(missing + ": ") && Catch::Contains("cannot open"));
  SAE_CHECK_THROWS(SafetensorsFile{dir.path().string()}, std::runtime_error,
                   Catch::StartsWith(dir.path().string() + ": ") && Catch::Contains("is a directory"));
}

// ---------------------------------------------------------------------------
// NumPy reads what we write

TEST_CASE("safetensors and save_npy files read back in NumPy with the same values", "[safetensors]") {
  if (!python_has_numpy()) {
    WARN("skipped: /usr/bin/python3 has no numpy");
    return;
  }
  const TempDir dir("sae_test_safetensors");
  // Values that 16-bit formats must round: i / 7 - 3, row-major.
  sae::Batch<float> m(5, 7);
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) m(r, c) = static_cast<float>(r * 7 + c) / 7.0f - 3.0f;
  Eigen::VectorXd v(6);
  for (Eigen::Index i = 0; i < 6; ++i) v(i) = static_cast<double>(2 * i - 5) / 3.0;
  const std::string st = dir.file("w.safetensors");
  SafetensorsWriter()
      .add("f32", m)
      .add("f64", v)
      .add("f16", m, SafetensorsDtype::F16)
      .add("bf16", m, SafetensorsDtype::BF16)
      .set_metadata("format", "pt")
      .write(st);
  const std::string npy = dir.file("m.npy");
  sae::save_npy(npy, m);

  // A reader written from the format's description: json + struct + numpy only.
  const std::string script = R"PY(
import json, struct, sys
import numpy as np
path, npy_path = sys.argv[1], sys.argv[2]
raw = open(path, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
assert n % 8 == 0, n
header = json.loads(raw[8:8 + n])
buf = raw[8 + n:]
assert header.pop('__metadata__') == {'format': 'pt'}
names = list(header)
assert names == ['f64', 'f32', 'bf16', 'f16'], names
m = (np.arange(35, dtype=np.float32).reshape(5, 7) / np.float32(7) - np.float32(3)).astype(np.float32)
v = (2 * np.arange(6) - 5).astype(np.float64) / 3.0
end = 0
for name, info in header.items():
    b, e = info['data_offsets']
    assert b == end, (name, b, end)
    end = e
    kind = {'F64': '<f8', 'F32': '<f4', 'F16': '<f2', 'BF16': '<u2'}[info['dtype']]
    a = np.frombuffer(buf[b:e], dtype=kind).reshape(info['shape'])
    if info['dtype'] == 'BF16':
        a = (a.astype(np.uint32) << 16).view(np.float32)
    expected = {'f64': v, 'f32': m, 'f16': m.astype(np.float16)}.get(name)
    if name == 'bf16':  # round float32 to bfloat16, nearest even
        bits = m.view(np.uint32).astype(np.uint64)
        expected = (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)
    assert a.shape == expected.shape, (name, a.shape, expected.shape)
    assert np.array_equal(a, expected), (name, a, expected)
assert end == len(buf)
assert np.array_equal(np.load(npy_path), m)
print('numpy agrees')
)PY";
  const std::string script_path = dir.write("check.py", script);
  const std::string output = dir.file("out.txt");
  const std::string command =
      "/usr/bin/python3 '" + script_path + "' '" + st + "' '" + npy + "' > '" + output + "' 2>&1";
  const int status = std::system(command.c_str());
  INFO(read_bytes(output));
  CHECK(status == 0);
  CHECK(read_bytes(output) == "numpy agrees\n");
}
