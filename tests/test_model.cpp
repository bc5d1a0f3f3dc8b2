// The model: construction, initialisation, encode/decode/forward on every
// kind of input, and the errors a user gets for wrong shapes.
#include <catch2/catch.hpp>

#include <cmath>

#include "support.hpp"

using sae::Dynamic;

namespace {

// A 2 -> 3 model whose outputs are easy to work out by hand.
//   W_enc = [[1, 0, -1], [0, 2, 1]], b_enc = [0, -1, 0.5]
//   W_dec = [[1, 0], [0, 1], [1, 1]], b_dec = [0.5, -0.5]
template <typename Model>
Model hand_model() {
  typename Model::Params p(2, 3);
  p.W_enc << 1, 0, -1, 0, 2, 1;
  p.b_enc << 0, -1, 0.5;
  p.W_dec << 1, 0, 0, 1, 1, 1;
  p.b_dec << 0.5, -0.5;
  return Model(p);
}

}  // namespace

TEMPLATE_TEST_CASE("encode and decode a hand-worked case", "[model]", (sae::SparseAutoEncoder<double>),
                   (sae::SparseAutoEncoder<double, 2, 3>), (sae::SparseAutoEncoder<float>),
                   (sae::SparseAutoEncoder<float, 2, 3>), (sae::SparseAutoEncoder<float, 2, Dynamic>)) {
  using Scalar = typename TestType::Scalar;
  const TestType model = hand_model<TestType>();
  // x = (1, 1): P = (1, 1, 0.5) → f = (1, 1, 0.5) → x̂ = (1.5, 1.5) + (0.5, -0.5) = (2, 1)
  // x = (2, -1): P = (2, -3, -2.5) → f = (2, 0, 0) → x̂ = (2, 0) + b_dec = (2.5, -0.5)
  sae::Batch<Scalar> X(2, 2);
  X << 1, 1, 2, -1;
  const auto codes = model.encode(X);
  sae::Batch<Scalar> expected_codes(2, 3);
  expected_codes << 1, 1, 0.5, 2, 0, 0;
  CHECK(codes == expected_codes);
  sae::Batch<Scalar> expected_recon(2, 2);
  expected_recon << 2, 1, 2.5, -0.5;
  CHECK(model.decode(codes) == expected_recon);

  const auto [recon, forward_codes] = model.forward(X);
  CHECK(recon == expected_recon);
  CHECK(forward_codes == expected_codes);
}

TEST_CASE("one activation in gives one code vector out, equal to the batch row", "[model]") {
  const auto model = hand_model<sae::SparseAutoEncoder<double, 2, 3>>();
  Eigen::Vector2d x(2, -1);
  const auto codes = model.encode(x);
  STATIC_REQUIRE(decltype(codes)::ColsAtCompileTime == 1);
  CHECK(codes == Eigen::Vector3d(2, 0, 0));
  CHECK(model.decode(codes) == Eigen::Vector2d(2.5, -0.5));
  const auto [recon, c] = model.forward(Eigen::VectorXd(x));
  CHECK(recon == Eigen::Vector2d(2.5, -0.5));

  // A row vector is a batch of one row.
  const auto row_codes = model.encode(x.transpose());
  CHECK(row_codes.rows() == 1);
  CHECK(row_codes.row(0).transpose() == codes);
}

TEST_CASE("any Eigen expression of the right shape is accepted", "[model]") {
  sae::SparseAutoEncoder<double> model(6, 10, sae::Init::LinearDefault, 5);
  sae::Rng rng(11);
  sae::Batch<double> X(4, 6);
  for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal();
  const auto reference = model.encode(X);

  const Eigen::MatrixXd col_major = X;  // column-major storage
  CHECK(model.encode(col_major).isApprox(reference, 1e-15));
  CHECK(model.encode(X * 1.0).isApprox(reference, 1e-15));  // an expression
  const Eigen::Map<const sae::Batch<double>> mapped(X.data(), 4, 6);  // memory owned elsewhere (.npy data)
  CHECK(model.encode(mapped) == reference);
  sae::Batch<double> wider(4, 9);
  wider.leftCols(6) = X;
  CHECK(model.encode(wider.leftCols(6)).isApprox(reference, 1e-15));  // a block with an outer stride
  CHECK(model.encode(X.middleRows(1, 2)).isApprox(reference.middleRows(1, 2), 1e-15));

  // The output-buffer overloads reuse their argument.
  sae::Batch<double> codes(4, 10), recon;
  const double* before = codes.data();
  model.encode(X, codes);
  CHECK(codes.data() == before);
  CHECK(codes == reference);
  model.decode(codes, recon);
  CHECK(recon == model.decode(reference));
}

TEST_CASE("fixed and run-time sizes compute the same thing", "[model]") {
  sae::SparseAutoEncoder<float, 8, 24> fixed(sae::Init::Tied, 21);
  sae::SparseAutoEncoder<float> dynamic(8, 24, sae::Init::Tied, 21);
  CHECK(fixed.params().W_enc == dynamic.params().W_enc);
  CHECK(fixed.params().W_dec == dynamic.params().W_dec);
  sae::Batch<float, 8> X = sae::Batch<float, 8>::Constant(3, 8, 0.25f);
  X(1, 3) = -2.0f;
  CHECK(fixed.encode(X) == dynamic.encode(X));
  CHECK(fixed.forward(X).recon == dynamic.forward(X).recon);
}

TEST_CASE("realistic compile-time sizes live on the heap", "[model]") {
  // 768 x 16384 floats is 48 MiB per weight matrix: far over Eigen's fixed-size
  // limit. Only b_dec (3 KiB) is small enough to stay inline.
  using Big = sae::SparseAutoEncoder<float, 768, 16384>;
  STATIC_REQUIRE(sizeof(Big) < 8 * 1024);
  Big big(sae::Init::Tied, 1);
  CHECK(big.input_dim() == 768);
  CHECK(big.dict_size() == 16384);
  const auto codes = big.encode(sae::Batch<float, 768>::Ones(2, 768));
  CHECK(codes.rows() == 2);
  CHECK(codes.cols() == 16384);
}

TEST_CASE("Init::LinearDefault is nn.Linear's uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))", "[model][init]") {
  const sae::Index D = 64, F = 256;
  sae::SparseAutoEncoder<double> model(D, F, sae::Init::LinearDefault, 42);
  const auto& p = model.params();
  const double enc_bound = 1 / std::sqrt(double(D)), dec_bound = 1 / std::sqrt(double(F));
  CHECK(p.W_enc.cwiseAbs().maxCoeff() <= enc_bound);
  CHECK(p.b_enc.cwiseAbs().maxCoeff() <= enc_bound);
  CHECK(p.W_dec.cwiseAbs().maxCoeff() <= dec_bound);
  CHECK(p.b_dec.cwiseAbs().maxCoeff() <= dec_bound);
  // Uniform(-a, a) has mean 0 and variance a²/3; with 16384 draws the sample
  // statistics are within a few standard errors (≈ 0.008 relative) of those.
  const double mean = p.W_enc.mean() / enc_bound;
  const double variance = (p.W_enc.array() / enc_bound).square().mean();
  CHECK(std::abs(mean) < 0.03);
  CHECK(variance == Approx(1.0 / 3.0).epsilon(0.05));
  CHECK(p.W_enc.cwiseAbs().maxCoeff() > 0.99 * enc_bound);  // spread over the whole range
}

TEST_CASE("Init::Tied: unit-direction decoder rows of norm 0.1, W_enc = W_dec^T, zero biases", "[model][init]") {
  sae::SparseAutoEncoder<double> model(32, 128, sae::Init::Tied, 7);
  const auto& p = model.params();
  for (sae::Index f = 0; f < 128; ++f) CHECK(p.W_dec.row(f).norm() == Approx(0.1).epsilon(1e-12));
  CHECK(p.W_enc == p.W_dec.transpose());
  CHECK(p.b_enc.isZero(0));
  CHECK(p.b_dec.isZero(0));
  // Random directions: the mean direction is near zero, no two rows coincide.
  CHECK(p.W_dec.colwise().mean().norm() < 0.1 * 0.5);
  const Eigen::MatrixXd gram = p.W_dec * p.W_dec.transpose() / 0.01;
  CHECK((gram - Eigen::MatrixXd::Identity(128, 128)).cwiseAbs().maxCoeff() < 0.9);
}

TEST_CASE("a seed gives the same model every time, another seed another model", "[model][init]") {
  for (auto init : {sae::Init::LinearDefault, sae::Init::Tied}) {
    sae::SparseAutoEncoder<float> a(16, 32, init, 99), b(16, 32, init, 99), c(16, 32, init, 100);
    CHECK(a.params().W_enc == b.params().W_enc);
    CHECK(a.params().W_dec == b.params().W_dec);
    CHECK(a.params().W_enc != c.params().W_enc);
  }
  // Pinned first draws of the generator (xoshiro256** seeded through
  // splitmix64): if these change, every seeded model and data set changes.
  sae::Rng rng(0);
  CHECK(rng.next_u64() == 0x99ec5f36cb75f2b4ULL);
  CHECK(rng.next_u64() == 0xbf6e1f784956452aULL);
}

TEST_CASE("wrong shapes throw std::invalid_argument with expected and actual sizes", "[model][errors]") {
  sae::SparseAutoEncoder<double> model(16, 64);
  SAE_CHECK_THROWS(model.encode(Eigen::MatrixXd::Ones(3, 17)), std::invalid_argument,
                       Catch::Matchers::Contains("encode") && Catch::Matchers::Contains("17 columns") &&
                           Catch::Matchers::Contains("expected 16"));
  SAE_CHECK_THROWS(model.decode(sae::Batch<double>::Ones(3, 63)), std::invalid_argument,
                       Catch::Matchers::Contains("decode") && Catch::Matchers::Contains("63 columns") &&
                           Catch::Matchers::Contains("expected 64"));
  SAE_CHECK_THROWS(model.encode(Eigen::VectorXd::Ones(15)), std::invalid_argument,
                       Catch::Matchers::Contains("15 entries") && Catch::Matchers::Contains("expected 16"));

  CHECK_THROWS_WITH((sae::SparseAutoEncoder<double>(0, 64)), Catch::Matchers::Contains("positive"));
  SAE_CHECK_THROWS((sae::SparseAutoEncoder<double, 16, 64>(16, 65)), std::invalid_argument,
                       Catch::Matchers::Contains("dict_size") && Catch::Matchers::Contains("65") &&
                           Catch::Matchers::Contains("64"));

  sae::Parameters<double> inconsistent(4, 8);
  inconsistent.W_dec.resize(8, 5);
  SAE_CHECK_THROWS(sae::SparseAutoEncoder<double>(inconsistent), std::invalid_argument,
                       Catch::Matchers::Contains("W_dec is 8 x 5, expected 8 x 4"));
}
