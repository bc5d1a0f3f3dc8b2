// Tests for sae/train/decoder_bias_init.hpp: the data mean and the geometric
// median (Weiszfeld with Vardi-Zhang's fix), on cases solved by hand.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>

#include <sae/core/random.hpp>
#include <sae/train/decoder_bias_init.hpp>

namespace {

// Σ_i ‖x_i − y‖, the objective the geometric median minimises.
template <typename Derived, typename Y>
double sum_of_distances(const Eigen::MatrixBase<Derived>& X, const Y& y) {
  double total = 0;
  for (sae::Index i = 0; i < X.rows(); ++i)
    total += (X.row(i).template cast<double>() - y.transpose().template cast<double>()).norm();
  return total;
}

}  // namespace

TEMPLATE_TEST_CASE("data_mean is the per-dimension mean", "[decoder_bias_init]", float, double) {
  sae::Batch<TestType> X(3, 2);
  X << 1, 10,  //
      2, 20,   //
      6, -30;
  const auto mean = sae::data_mean(X);
  REQUIRE(mean.size() == 2);
  CHECK(mean(0) == Approx(3.0));  // (1 + 2 + 6) / 3
  CHECK(mean(1) == Approx(0.0).margin(1e-12));
}

TEMPLATE_TEST_CASE("geometric median of points symmetric about c is c", "[decoder_bias_init]", float, double) {
  // c ± e_i for each of 4 dimensions, and the corners c ± (1, 1, 1, 1): symmetric about c.
  const Eigen::Vector4d c(1.5, -2.0, 0.25, 10.0);
  sae::Batch<TestType> X(10, 4);
  for (int i = 0; i < 4; ++i) {
    X.row(2 * i) = (c + Eigen::Vector4d::Unit(i)).transpose().template cast<TestType>();
    X.row(2 * i + 1) = (c - Eigen::Vector4d::Unit(i)).transpose().template cast<TestType>();
  }
  X.row(8) = (c + Eigen::Vector4d::Ones()).transpose().template cast<TestType>();
  X.row(9) = (c - Eigen::Vector4d::Ones()).transpose().template cast<TestType>();
  const auto median = sae::geometric_median(X);
  const double tol = std::is_same<TestType, double>::value ? 1e-12 : 1e-5;
  CHECK((median.template cast<double>() - c).norm() <= tol * 10);
}

TEST_CASE("geometric median of collinear points is their 1-D median", "[decoder_bias_init]") {
  // Points a + t v for t = 0, 1, 10 in R^3: the median is at t = 1 (the mean at t = 11/3).
  const Eigen::Vector3d a(1, 2, 3), v(0.6, 0, -0.8);
  sae::Batch<double> X(3, 3);
  X.row(0) = a.transpose();
  X.row(1) = (a + v).transpose();
  X.row(2) = (a + 10 * v).transpose();
  const Eigen::Vector3d median = sae::geometric_median(X);
  CHECK((median - (a + v)).norm() <= 1e-9);
  CHECK((sae::data_mean(X) - (a + v * 11.0 / 3)).norm() <= 1e-12);

  // Five points at t = -7, -1, 0, 2, 100: the median is t = 0.
  sae::Batch<double> Y(5, 3);
  const double ts[] = {-7, -1, 0, 2, 100};
  for (int i = 0; i < 5; ++i) Y.row(i) = (a + ts[i] * v).transpose();
  CHECK((sae::geometric_median(Y) - a).norm() <= 1e-9);
}

TEST_CASE("geometric median of an obtuse triangle is its obtuse vertex", "[decoder_bias_init]") {
  // An angle of at least 120 degrees at a vertex makes that vertex the Fermat point:
  // here the angle at the origin between (1, 0) and (-1, 0.1) is about 174 degrees.
  sae::Batch<double> X(3, 2);
  X << 0, 0,  //
      1, 0,   //
      -1, 0.1;
  // A median at a data point is approached linearly (here at rate about 0.1 per
  // step), so ask for a tight tolerance; the default stops within about 1e-6.
  CHECK(sae::geometric_median(X, 1000, 1e-12).norm() <= 1e-9);
  CHECK(sae::geometric_median(X).norm() <= 1e-5);
}

TEST_CASE("geometric median barely moves for an outlier that drags the mean far away", "[decoder_bias_init]") {
  // Eight points c ± e_i (i = 1..4) and one outlier at c + 1000 e_1. The mean
  // moves by 1000/9 along e_1. The median moves by δ along e_1, where the
  // outlier's unit pull balances the pull of the six points c ± e_j (j ≠ 1),
  // each contributing -δ / sqrt(1 + δ²) (the pulls of c ± e_1 cancel while δ < 1):
  // 1 = 6δ / sqrt(1 + δ²)  ⇒  35 δ² = 1  ⇒  δ = 1/sqrt(35) ≈ 0.169.
  const Eigen::Vector4d c(3, -1, 4, 1);
  sae::Batch<double> X(9, 4);
  for (int i = 0; i < 4; ++i) {
    X.row(2 * i) = (c + Eigen::Vector4d::Unit(i)).transpose();
    X.row(2 * i + 1) = (c - Eigen::Vector4d::Unit(i)).transpose();
  }
  X.row(8) = (c + 1000 * Eigen::Vector4d::Unit(0)).transpose();

  const Eigen::Vector4d mean = sae::data_mean(X);
  CHECK((mean - c).norm() == Approx(1000.0 / 9));

  const Eigen::Vector4d median = sae::geometric_median(X, 1000, 1e-12);
  const Eigen::Vector4d expected = c + Eigen::Vector4d::Unit(0) / std::sqrt(35.0);
  CHECK((median - expected).norm() <= 1e-8);
  // The defaults stop earlier, still close.
  CHECK((sae::geometric_median(X) - expected).norm() <= 1e-3);
}

TEST_CASE("geometric median: an estimate on a data point gives no NaN, and leaves it if it must",
          "[decoder_bias_init]") {
  // The mean of these points is (0, 0), which is itself a data point, so the
  // first Weiszfeld step would divide by zero.
  SECTION("the data point is the median: stays there") {
    // Pull of the others at the origin: (1, 0) + 2 * (-3, ±1)/sqrt(10) sums to
    // (1 - 6/sqrt(10), 0), of norm 0.897 < 1 point at the origin.
    sae::Batch<double> X(4, 2);
    X << 0, 0,  //
        6, 0,   //
        -3, 1,  //
        -3, -1;
    const Eigen::VectorXd median = sae::geometric_median(X);
    CHECK(median.allFinite());
    CHECK(median.norm() <= 1e-12);
  }
  SECTION("the data point is not the median: moves off it") {
    // Three points at (1, 0), one at (-3, 0), one at the origin; mean (0, 0).
    // A point holding more than half the weight is the median: (1, 0). From the
    // origin the pull is 3 (1, 0) + (-1, 0), norm 2 > 1 point there, so it must move.
    sae::Batch<float> X(5, 2);
    X << 0, 0,  //
        1, 0,   //
        1, 0,   //
        1, 0,   //
        -3, 0;
    // Near (1, 0) Weiszfeld closes the gap only by a factor 2/3 per step, so the
    // defaults stop about 2e-5 short; a tight tolerance reaches the point.
    const Eigen::VectorXf median = sae::geometric_median(X, 1000, 1e-12);
    CHECK(median.allFinite());
    CHECK(median(0) == Approx(1.0f).margin(1e-6));
    CHECK(median(1) == Approx(0.0f).margin(1e-6));
    const Eigen::VectorXf rough = sae::geometric_median(X);
    CHECK(rough.allFinite());
    CHECK(rough(0) == Approx(1.0f).margin(1e-4));
  }
  SECTION("every point the same") {
    sae::Batch<double> X(3, 2);
    X.rowwise() = Eigen::RowVector2d(4, -4);
    const Eigen::VectorXd median = sae::geometric_median(X);
    CHECK(median == Eigen::Vector2d(4, -4));
  }
}

TEST_CASE("geometric median of random data minimises the sum of distances", "[decoder_bias_init]") {
  sae::Rng rng(11);
  sae::Batch<double> X(200, 5);
  for (sae::Index i = 0; i < X.rows(); ++i)
    for (sae::Index j = 0; j < X.cols(); ++j) X(i, j) = rng.normal() + (i % 7 == 0 ? 20.0 : 0.0);
  const Eigen::VectorXd median = sae::geometric_median(X, 1000, 1e-12);
  const double best = sum_of_distances(X, median);
  CHECK(best < sum_of_distances(X, sae::data_mean(X)));
  for (int j = 0; j < 5; ++j)
    for (double h : {1e-3, -1e-3}) {
      Eigen::VectorXd moved = median;
      moved(j) += h;
      CHECK(sum_of_distances(X, moved) >= best);
    }
}

TEST_CASE("initialize_decoder_bias sets only b_dec", "[decoder_bias_init]") {
  sae::Parameters<double, 2, 3> p;
  p.W_enc.setConstant(1.0);
  p.b_dec.setConstant(9.0);
  sae::Batch<double, 2> X(3, 2);
  X << 0, 0,  //
      1, 1,   //
      10, 10;
  sae::initialize_decoder_bias(p, X, sae::DecoderBiasInit::DataMean);
  CHECK(p.b_dec(0) == Approx(11.0 / 3));
  sae::initialize_decoder_bias(p, X, sae::DecoderBiasInit::GeometricMedian);
  CHECK(p.b_dec(0) == Approx(1.0).epsilon(1e-8));
  CHECK(p.b_dec(1) == Approx(1.0).epsilon(1e-8));
  sae::initialize_decoder_bias(p, X, sae::DecoderBiasInit::Zero);
  CHECK(p.b_dec.isZero(0));
  CHECK((p.W_enc.array() == 1.0).all());
}

TEST_CASE("decoder bias initialisation rejects bad data and settings", "[decoder_bias_init][errors]") {
  using Catch::Matchers::Contains;
  sae::Batch<double> empty(0, 3);
  CHECK_THROWS_WITH(sae::data_mean(empty), Contains("at least one row"));
  CHECK_THROWS_WITH(sae::geometric_median(empty), Contains("at least one row"));

  sae::Batch<double> X = sae::Batch<double>::Ones(4, 3);
  X(2, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(sae::data_mean(X), Contains("row 2") && Contains("non-finite"));
  CHECK_THROWS_WITH(sae::geometric_median(X), Contains("row 2"));

  sae::Batch<double> ok = sae::Batch<double>::Ones(4, 3);
  CHECK_THROWS_WITH(sae::geometric_median(ok, -1), Contains("max_iterations"));
  CHECK_THROWS_WITH(sae::geometric_median(ok, 10, -1.0), Contains("tolerance"));
  CHECK_THROWS_WITH(sae::geometric_median(ok, 10, std::nan("")), Contains("tolerance"));

  sae::Parameters<double> p(5, 2);
  CHECK_THROWS_WITH(sae::initialize_decoder_bias(p, ok, sae::DecoderBiasInit::DataMean),
                    Contains("3 columns") && Contains("expected 5"));
}
