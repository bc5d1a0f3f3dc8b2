// Tests for sae/train/input_scaling.hpp: the two scale estimates, and folding
// the scale into the weights leaves the model's outputs unchanged
// (SAE-REFERENCE.md §4).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>

#include <sae/core/random.hpp>
#include <sae/core/sparse_autoencoder.hpp>
#include <sae/train/input_scaling.hpp>

#include "support.hpp"

using sae_test::fill_normal;

namespace {

template <typename A, typename B>
double max_relative_difference(const Eigen::MatrixBase<A>& a, const Eigen::MatrixBase<B>& b) {
  const double scale = std::max(b.template cast<double>().cwiseAbs().maxCoeff(), 1e-300);
  return (a.template cast<double>() - b.template cast<double>()).cwiseAbs().maxCoeff() / scale;
}

}  // namespace

TEST_CASE("input scale estimates, worked by hand", "[input_scaling]") {
  // Rows (3, 4) and (0, 0): norms 5 and 0, mean norm 2.5, mean squared norm 12.5.
  sae::Batch<double> X(2, 2);
  X << 3, 4,  //
      0, 0;
  CHECK(sae::estimate_input_scale(X, sae::InputScaling::MeanNormSqrtD) == Approx(std::sqrt(2.0) / 2.5));
  CHECK(sae::estimate_input_scale(X, sae::InputScaling::UnitMeanSquaredNorm) == Approx(1.0 / std::sqrt(12.5)));
  CHECK(sae::estimate_input_scale(X, sae::InputScaling::None) == 1.0);
}

TEMPLATE_TEST_CASE("after scaling, the mean norm is sqrt(D) or the mean squared norm is 1", "[input_scaling]", float,
                   double) {
  sae::Rng rng(21);
  sae::Batch<TestType> X(300, 24);
  fill_normal(X, rng, 7.0, 30.0);  // far from the origin and far from unit size, like real activations
  const double tol = std::is_same<TestType, double>::value ? 1e-12 : 1e-5;

  const double s1 = sae::estimate_input_scale(X, sae::InputScaling::MeanNormSqrtD);
  double mean_norm = 0;
  for (sae::Index i = 0; i < X.rows(); ++i) mean_norm += (s1 * X.row(i).template cast<double>()).norm();
  CHECK(mean_norm / 300 == Approx(std::sqrt(24.0)).epsilon(tol));

  const double s2 = sae::estimate_input_scale(X, sae::InputScaling::UnitMeanSquaredNorm);
  double mean_squared = 0;
  for (sae::Index i = 0; i < X.rows(); ++i) mean_squared += (s2 * X.row(i).template cast<double>()).squaredNorm();
  CHECK(mean_squared / 300 == Approx(1.0).epsilon(tol));
}

TEMPLATE_TEST_CASE("folding the input scale leaves encode and decode unchanged", "[input_scaling]",
                   (sae::SparseAutoEncoder<double>), (sae::SparseAutoEncoder<float>),
                   (sae::SparseAutoEncoder<double, 16, 40>), (sae::SparseAutoEncoder<float, 16, 40>)) {
  using Scalar = typename TestType::Scalar;
  const double tol = std::is_same<Scalar, double>::value ? 1e-13 : 1e-5;
  sae::Rng rng(22);
  TestType model(16, 40, sae::Init::Tied, 3);
  fill_normal(model.params().b_enc, rng, 0.05);  // some latents on, some off
  fill_normal(model.params().b_dec, rng, 1.0);
  sae::Batch<Scalar> X(64, 16);
  fill_normal(X, rng, 2.0, 5.0);

  for (double s : {0.37, 4.0, 1.0 / 1024, 913.25}) {
    CAPTURE(s);
    TestType folded = model;
    sae::fold_input_scale(folded.params(), s);

    const sae::Batch<Scalar> scaled_X = (static_cast<Scalar>(s) * X).eval();
    const auto codes = model.encode(scaled_X);  // what the trainer saw
    const auto folded_codes = folded.encode(X);  // the saved model on raw activations
    const auto recon = model.decode(codes);
    const auto folded_recon = folded.decode(codes);
    const sae::Batch<Scalar> recon_raw = (recon / static_cast<Scalar>(s)).eval();

    REQUIRE((codes.array() > 0).any());
    REQUIRE((codes.array() == 0).any());
    // A power of two scales every product exactly: the outputs agree bit for bit.
    const bool exact = s == 4.0 || s == 1.0 / 1024;
    if (exact) {
      CHECK(folded_codes == codes);
      CHECK(folded_recon == recon_raw);
    } else {
      CHECK(max_relative_difference(folded_codes, codes) <= tol);
      CHECK(max_relative_difference(folded_recon, recon_raw) <= tol);
      CHECK(((folded_codes.array() > 0) == (codes.array() > 0)).all());  // the same latents fire
    }
    // Folding changes nothing but W_enc, W_dec and b_dec, and unfolding restores them.
    CHECK(folded.params().b_enc == model.params().b_enc);
    sae::fold_input_scale(folded.params(), 1.0 / s);
    CHECK(max_relative_difference(folded.params().W_enc, model.params().W_enc) <= tol);
    CHECK(max_relative_difference(folded.params().W_dec, model.params().W_dec) <= tol);
    CHECK(max_relative_difference(folded.params().b_dec, model.params().b_dec) <= tol);
  }
}

TEST_CASE("input scaling rejects data and scales it cannot use", "[input_scaling][errors]") {
  using Catch::Matchers::Contains;
  sae::Batch<double> zero = sae::Batch<double>::Zero(3, 4);
  CHECK_THROWS_WITH(sae::estimate_input_scale(zero, sae::InputScaling::MeanNormSqrtD), Contains("every row"));
  sae::Batch<double> empty(0, 4);
  CHECK_THROWS_WITH(sae::estimate_input_scale(empty, sae::InputScaling::UnitMeanSquaredNorm),
                    Contains("at least one row"));
  sae::Batch<float> bad = sae::Batch<float>::Ones(5, 2);
  bad(3, 0) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(sae::estimate_input_scale(bad, sae::InputScaling::MeanNormSqrtD),
                    Contains("row 3") && Contains("non-finite"));

  sae::Parameters<float> p(2, 3);
  CHECK_THROWS_WITH(sae::fold_input_scale(p, 0.0), Contains("positive"));
  CHECK_THROWS_AS(sae::fold_input_scale(p, -2.0), std::invalid_argument);
  CHECK_THROWS_AS(sae::fold_input_scale(p, std::nan("")), std::invalid_argument);
  CHECK_THROWS_WITH(sae::fold_input_scale(p, 1e300), Contains("out of range"));
}
