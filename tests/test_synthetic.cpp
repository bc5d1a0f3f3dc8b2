// Tests for sae/data/synthetic.hpp: the Sharkey et al. 2022 toy data set.
#include <catch2/catch.hpp>

#include <cmath>
#include <stdexcept>

#include <sae/core/types.hpp>
#include <sae/data/synthetic.hpp>

namespace {

template <typename Scalar>
constexpr double tolerance() {
  return sizeof(Scalar) >= sizeof(double) ? 1e-12 : 1e-5;
}

}  // namespace

TEMPLATE_TEST_CASE("synthetic features are unit-norm rows with the requested shape", "[synthetic]", float, double) {
  const sae::SyntheticSuperposition<TestType> data;  // the paper's defaults
  CHECK(data.input_dim() == 256);
  CHECK(data.num_features() == 512);
  CHECK(data.mean_active() == 5.0);
  CHECK(data.activation_probability() == 5.0 / 512.0);

  const auto& F = data.features();
  REQUIRE(F.rows() == 512);
  REQUIRE(F.cols() == 256);
  for (sae::Index i = 0; i < F.rows(); ++i)
    CHECK(F.row(i).template cast<double>().norm() == Approx(1.0).epsilon(tolerance<TestType>()));

  // Random directions in R^256 are nearly orthogonal: |cos| has standard
  // deviation 1/16, so over ~131k pairs the largest stays well below 0.5.
  const Eigen::MatrixXd gram = F.template cast<double>() * F.template cast<double>().transpose();
  const double max_off_diagonal = (gram - Eigen::MatrixXd::Identity(512, 512)).cwiseAbs().maxCoeff();
  CHECK(max_off_diagonal < 0.5);
  CHECK(max_off_diagonal > 0.1);  // but they are not an orthonormal set (512 > 256)
}

TEMPLATE_TEST_CASE("synthetic data is deterministic given the seed", "[synthetic]", float, double) {
  sae::SyntheticSuperposition<TestType> a(64, 128, 4.0, 11), b(64, 128, 4.0, 11), c(64, 128, 4.0, 12);
  CHECK(a.seed() == 11);
  CHECK(a.features() == b.features());
  CHECK(a.features() != c.features());

  const sae::Batch<TestType> xa = a.sample(100);
  const sae::Batch<TestType> xb = b.sample(100);
  const sae::Batch<TestType> xc = c.sample(100);
  REQUIRE(xa.rows() == 100);
  REQUIRE(xa.cols() == 64);
  CHECK(xa == xb);
  CHECK(xa != xc);

  // Successive calls continue the stream: the next batch is new data, and
  // drawing 30 + 70 rows equals drawing 100 rows at once.
  const sae::Batch<TestType> next = a.sample(100);
  CHECK(next != xa);

  sae::SyntheticSuperposition<TestType> d(64, 128, 4.0, 11);
  sae::Batch<TestType> first, second;
  d.sample(first, 30);
  d.sample(second, 70);
  CHECK(first == xa.topRows(30));
  CHECK(second == xa.bottomRows(70));
}

TEMPLATE_TEST_CASE("synthetic samples are sparse mixtures of the features with U(0,1) coefficients", "[synthetic]",
                   float, double) {
  sae::SyntheticSuperposition<TestType> data(256, 512, 5.0, 2024);
  const sae::Index rows = 20000;
  sae::Batch<TestType> X, codes;
  data.sample_with_codes(X, codes, rows);
  REQUIRE(X.rows() == rows);
  REQUIRE(X.cols() == 256);
  REQUIRE(codes.rows() == rows);
  REQUIRE(codes.cols() == 512);

  // x == codes * features: recomputed here with a dense product.
  const Eigen::MatrixXd expected = codes.template cast<double>() * data.features().template cast<double>();
  CHECK((X.template cast<double>() - expected).cwiseAbs().maxCoeff() < 100 * tolerance<TestType>());

  // Active coefficients lie in the open interval (0, 1) with mean ~1/2.
  const auto active = (codes.array() != TestType(0));
  const double n_active = static_cast<double>(active.count());
  CHECK(codes.minCoeff() >= TestType(0));
  CHECK(codes.maxCoeff() < TestType(1));
  CHECK((active && codes.array() <= TestType(0)).count() == 0);
  const double mean_coefficient = codes.template cast<double>().sum() / n_active;
  CHECK(mean_coefficient == Approx(0.5).margin(0.01));  // sd of the mean ~0.29/sqrt(1e5) ~ 0.001

  // About 5 active features per row (per-row sd sqrt(5), so the mean over 20000
  // rows has sd ~0.016: 2% is ~6 sd).
  CHECK(n_active / rows == Approx(5.0).epsilon(0.02));
  // Spread evenly across features: the first and second half are equally active.
  const double first_half = static_cast<double>((codes.leftCols(256).array() != TestType(0)).count()) / rows;
  const double second_half = static_cast<double>((codes.rightCols(256).array() != TestType(0)).count()) / rows;
  CHECK(first_half == Approx(2.5).epsilon(0.04));
  CHECK(second_half == Approx(2.5).epsilon(0.04));
  // Rows with no active feature occur at the rate (1 - 5/512)^512 ~ e^-5 ~ 0.0067.
  const double empty_rows =
      static_cast<double>(((codes.array() != TestType(0)).rowwise().count() == 0).count()) / rows;
  CHECK(empty_rows == Approx(std::pow(1.0 - 5.0 / 512.0, 512)).margin(0.003));
}

TEMPLATE_TEST_CASE("sample and sample_with_codes consume the same stream", "[synthetic]", float, double) {
  sae::SyntheticSuperposition<TestType> a(32, 40, 3.0, 5), b(32, 40, 3.0, 5);
  sae::Batch<TestType> x_with, codes;
  b.sample_with_codes(x_with, codes, 50);
  CHECK(a.sample(50) == x_with);
  b.sample_with_codes(x_with, codes, 50);
  CHECK(a.sample(50) == x_with);
}

TEST_CASE("synthetic edge cases", "[synthetic]") {
  // No active features: all zeros.
  sae::SyntheticSuperposition<double> none(8, 16, 0.0, 1);
  CHECK(none.sample(10).isZero(0.0));

  // Every feature active in every row.
  sae::SyntheticSuperposition<double> all(8, 16, 16.0, 1);
  sae::Batch<double> X, codes;
  all.sample_with_codes(X, codes, 10);
  CHECK((codes.array() != 0.0).count() == 160);

  // Zero rows is a valid request.
  const sae::Batch<double> empty = all.sample(0);
  CHECK(empty.rows() == 0);
  CHECK(empty.cols() == 8);

  CHECK_THROWS_AS(sae::SyntheticSuperposition<double>(0, 16, 1.0), std::invalid_argument);
  CHECK_THROWS_AS(sae::SyntheticSuperposition<double>(8, 0, 1.0), std::invalid_argument);
  CHECK_THROWS_AS(sae::SyntheticSuperposition<double>(8, 16, -1.0), std::invalid_argument);
  CHECK_THROWS_AS(sae::SyntheticSuperposition<double>(8, 16, 17.0), std::invalid_argument);
  CHECK_THROWS_AS(sae::SyntheticSuperposition<double>(8, 16, std::nan("")), std::invalid_argument);
  CHECK_THROWS_AS(all.sample(-1), std::invalid_argument);
}
