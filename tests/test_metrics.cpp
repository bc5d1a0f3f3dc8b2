// Tests for sae/metrics.hpp. Expected values are worked by hand (in the
// comments) or follow from a property; none is produced by the code under test.
#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include <sae/core/random.hpp>
#include <sae/core/types.hpp>
#include <sae/metrics.hpp>

namespace {

template <typename Scalar>
sae::Batch<Scalar> rows_of(std::initializer_list<std::initializer_list<Scalar>> values) {
  const auto rows = static_cast<sae::Index>(values.size());
  const auto cols = static_cast<sae::Index>(values.begin()->size());
  sae::Batch<Scalar> M(rows, cols);
  sae::Index r = 0;
  for (const auto& row : values) {
    sae::Index c = 0;
    for (Scalar v : row) M(r, c++) = v;
    ++r;
  }
  return M;
}

// The message of the std::invalid_argument that f throws ("" if it throws none).
template <typename F>
std::string invalid_argument_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------
// mean_squared_error

TEMPLATE_TEST_CASE("mean_squared_error sums over dimensions and averages over rows", "[metrics]", float, double) {
  // Row errors (0, 1) and (2, 0): squared sums 1 and 4, mean over 2 rows = 2.5.
  const auto X = rows_of<TestType>({{1, 2}, {3, 4}});
  const auto X_hat = rows_of<TestType>({{1, 3}, {5, 4}});
  CHECK(sae::mean_squared_error(X, X_hat) == 2.5);
  CHECK(sae::mean_squared_error(X_hat, X) == 2.5);
  CHECK(sae::mean_squared_error(X, X) == 0.0);

  // One row of width 3, error (1, -2, 2): 1 + 4 + 4 = 9.
  const auto x = rows_of<TestType>({{0, 0, 0}});
  const auto x_hat = rows_of<TestType>({{1, -2, 2}});
  CHECK(sae::mean_squared_error(x, x_hat) == 9.0);
}

TEST_CASE("mean_squared_error checks shapes", "[metrics]") {
  const sae::Batch<float> X = sae::Batch<float>::Zero(2, 3);
  const sae::Batch<float> wrong = sae::Batch<float>::Zero(2, 2);
  const std::string message = invalid_argument_message([&] { sae::mean_squared_error(X, wrong); });
  CHECK(message.find("mean_squared_error") != std::string::npos);
  CHECK(message.find("2 x 2") != std::string::npos);
  CHECK(message.find("2 x 3") != std::string::npos);
  CHECK_THROWS_AS(sae::mean_squared_error(sae::Batch<float>(0, 3), sae::Batch<float>(0, 3)), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// fraction_of_variance_unexplained / explained_variance

TEMPLATE_TEST_CASE("FVU of a hand-worked 3x2 example", "[metrics]", float, double) {
  // X column means (3, 5). Deviations: column 0: -2, 0, 2 -> 8; column 1: -3, -1, 4 -> 26. Total 34.
  // X_hat - X = (0, 1), (-1, 0), (0, -2) -> squared error 6. FVU = 6/34 = 3/17.
  // (Variance about zero would give 6/136; that is the SAELens/SAEBench bug.)
  const auto X = rows_of<TestType>({{1, 2}, {3, 4}, {5, 9}});
  const auto X_hat = rows_of<TestType>({{1, 3}, {2, 4}, {5, 7}});
  CHECK(sae::fraction_of_variance_unexplained(X, X_hat) == Approx(3.0 / 17.0).epsilon(1e-12));
  CHECK(sae::explained_variance(X, X_hat) == Approx(14.0 / 17.0).epsilon(1e-12));
  CHECK(sae::fraction_of_variance_unexplained(X, X_hat) != Approx(6.0 / 136.0));
}

TEMPLATE_TEST_CASE("FVU: predicting the column mean gives 1, a perfect reconstruction 0", "[metrics]", float,
                   double) {
  // Integer data with integer column means (2.5 is exact too), so every step is exact.
  const auto X = rows_of<TestType>({{1, -4, 10}, {3, 0, 10}, {2, 4, 13}, {6, 8, 7}});
  // Column means: (12/4, 8/4, 40/4) = (3, 2, 10).
  const auto mean = rows_of<TestType>({{3, 2, 10}, {3, 2, 10}, {3, 2, 10}, {3, 2, 10}});
  CHECK(sae::fraction_of_variance_unexplained(X, mean) == 1.0);
  CHECK(sae::explained_variance(X, mean) == 0.0);

  CHECK(sae::fraction_of_variance_unexplained(X, X) == 0.0);
  CHECK(sae::explained_variance(X, X) == 1.0);

  // Predicting zero is worse than predicting the mean when the mean is nonzero.
  const sae::Batch<TestType> zero = sae::Batch<TestType>::Zero(4, 3);
  CHECK(sae::fraction_of_variance_unexplained(X, zero) > 1.0);
  CHECK(sae::explained_variance(X, zero) < 0.0);
}

TEMPLATE_TEST_CASE("FVU punishes a constant offset on a perfect reconstruction", "[metrics]", float, double) {
  // A residual-centred definition (dictionary_learning) scores X + c as perfect.
  // Here: same X as the 3x2 example (total variance 34), offset (1, -1) on every
  // row: squared error 3 * 2 = 6, FVU = 6/34.
  const auto X = rows_of<TestType>({{1, 2}, {3, 4}, {5, 9}});
  sae::Batch<TestType> X_hat = X;
  X_hat.col(0).array() += TestType(1);
  X_hat.col(1).array() -= TestType(1);
  const double fvu = sae::fraction_of_variance_unexplained(X, X_hat);
  CHECK(fvu > 0.0);
  CHECK(fvu == Approx(6.0 / 34.0).epsilon(1e-12));

  // The offset hurts more the larger it is, and shrinks relative to the data's spread.
  X_hat = X.array() + TestType(3);  // squared error 3 rows * 2 dims * 9 = 54
  CHECK(sae::fraction_of_variance_unexplained(X, X_hat) == Approx(54.0 / 34.0).epsilon(1e-12));
}

TEST_CASE("FVU is unchanged by shifting data and reconstruction together", "[metrics]") {
  // The denominator is variance about the mean, so a huge common shift (a
  // "massive activation" dimension) changes nothing; variance about zero would.
  sae::Rng rng(7);
  sae::Batch<double> X(50, 4), X_hat(50, 4);
  for (sae::Index i = 0; i < X.rows(); ++i)
    for (sae::Index j = 0; j < X.cols(); ++j) {
      X(i, j) = rng.normal();
      X_hat(i, j) = X(i, j) + 0.1 * rng.normal();
    }
  const double before = sae::fraction_of_variance_unexplained(X, X_hat);
  X.col(2).array() += 1000.0;
  X_hat.col(2).array() += 1000.0;
  CHECK(sae::fraction_of_variance_unexplained(X, X_hat) == Approx(before).epsilon(1e-9));
}

TEST_CASE("FVU accepts expressions, column-major storage and mixed scalars", "[metrics]") {
  const auto X = rows_of<double>({{1, 2}, {3, 4}, {5, 9}, {100, 100}});
  Eigen::MatrixXf X_hat_cm(3, 2);  // column-major, float
  X_hat_cm << 1, 3, 2, 4, 5, 7;
  CHECK(sae::fraction_of_variance_unexplained(X.topRows(3), X_hat_cm) == Approx(3.0 / 17.0).epsilon(1e-12));
  CHECK(sae::mean_squared_error(X.topRows(3), X_hat_cm) == Approx(2.0).epsilon(1e-12));  // 6 / 3 rows
  const Eigen::Ref<const Eigen::MatrixXf> ref(X_hat_cm);
  CHECK(sae::explained_variance(X.topRows(3), 2.0f * ref - ref) == Approx(14.0 / 17.0).epsilon(1e-12));
}

TEST_CASE("FVU rejects bad input", "[metrics]") {
  const auto X = rows_of<double>({{1, 2}, {3, 4}, {5, 9}});
  const std::string message = invalid_argument_message(
      [&] { sae::fraction_of_variance_unexplained(X, sae::Batch<double>::Zero(2, 2)); });
  CHECK(message.find("fraction_of_variance_unexplained") != std::string::npos);
  CHECK(message.find("2 x 2") != std::string::npos);
  CHECK(message.find("3 x 2") != std::string::npos);

  // Fewer than two rows: the variance is undefined.
  CHECK_THROWS_AS(sae::fraction_of_variance_unexplained(X.topRows(1), X.topRows(1)), std::invalid_argument);
  CHECK_THROWS_AS(sae::explained_variance(X.topRows(0), X.topRows(0)), std::invalid_argument);
  // Constant columns: zero total variance.
  const auto constant = rows_of<double>({{1, 2}, {1, 2}, {1, 2}});
  CHECK_THROWS_AS(sae::fraction_of_variance_unexplained(constant, X), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// mean_l0

TEMPLATE_TEST_CASE("mean_l0 counts nonzero codes per row", "[metrics]", float, double, int) {
  // Nonzero counts 2, 0, 1, 3 (negative values count): mean 6/4 = 1.5.
  const auto codes = rows_of<TestType>({{0, 1, 2}, {0, 0, 0}, {3, 0, 0}, {-1, -1, -1}});
  CHECK(sae::mean_l0(codes) == 1.5);
  CHECK(sae::mean_l0(codes.topRows(2)) == 1.0);
  CHECK(sae::mean_l0(codes.row(3)) == 3.0);
  CHECK_THROWS_AS(sae::mean_l0(codes.topRows(0)), std::invalid_argument);
}

TEST_CASE("mean_l0 counts tiny values and not negative zero", "[metrics]") {
  const auto codes = rows_of<float>({{1e-30f, -0.0f, 0.0f, 5.0f}});
  CHECK(sae::mean_l0(codes) == 2.0);
}

// ---------------------------------------------------------------------------
// mean_max_cosine_similarity

TEMPLATE_TEST_CASE("MMCS of hand-worked 2-D examples", "[metrics]", float, double) {
  const auto axes = rows_of<TestType>({{1, 0}, {0, 1}});

  // One learned direction at 45 degrees: cos 45° = 1/sqrt(2) for both axes.
  CHECK(sae::mean_max_cosine_similarity(axes, rows_of<TestType>({{1, 1}})) ==
        Approx(1.0 / std::sqrt(2.0)).epsilon(1e-6));

  // Learned (3, 4) and (-1, 0): e1 gets max(3/5, -1) = 0.6, e2 gets max(4/5, 0) = 0.8. Mean 0.7.
  CHECK(sae::mean_max_cosine_similarity(axes, rows_of<TestType>({{3, 4}, {-1, 0}})) ==
        Approx(0.7).epsilon(1e-6));

  // Signed: the opposite direction scores -1, and a zero row scores 0.
  const auto e1 = rows_of<TestType>({{1, 0}});
  CHECK(sae::mean_max_cosine_similarity(e1, rows_of<TestType>({{-2, 0}})) == Approx(-1.0).epsilon(1e-6));
  CHECK(sae::mean_max_cosine_similarity(e1, rows_of<TestType>({{-2, 0}, {0, 0}})) == 0.0);
  // A zero row never beats a real match: e1 -> 1, e2 -> max(0 from (2,0), 0 from the zero row) = 0.
  CHECK(sae::mean_max_cosine_similarity(axes, rows_of<TestType>({{2, 0}, {0, 0}})) == Approx(0.5).epsilon(1e-6));

  // True features need not be unit norm: (0, 5) is the same direction as e2.
  CHECK(sae::mean_max_cosine_similarity(rows_of<TestType>({{0, 5}}), rows_of<TestType>({{0, 1}, {1, 0}})) ==
        Approx(1.0).epsilon(1e-6));
}

TEMPLATE_TEST_CASE("MMCS: identical, permuted and positively scaled sets give 1; orthogonal sets 0", "[metrics]",
                   float, double) {
  // 600 true features (more than one internal block of 256) in R^32.
  const sae::Index n = 600, d = 32;
  sae::Rng rng(42);
  sae::Batch<TestType> truth(n, d);
  for (sae::Index i = 0; i < n; ++i)
    for (sae::Index j = 0; j < d; ++j) truth(i, j) = static_cast<TestType>(rng.normal());

  CHECK(sae::mean_max_cosine_similarity(truth, truth) == Approx(1.0).epsilon(1e-5));

  // Reverse the order, scale each row by a positive factor in [0.01, 100), and
  // add zero rows and rows pointing away from everything (-truth).
  sae::Batch<TestType> learned(n + 10 + n, d);
  for (sae::Index i = 0; i < n; ++i)
    learned.row(i) = static_cast<TestType>(std::pow(10.0, rng.uniform(-2.0, 2.0))) * truth.row(n - 1 - i);
  learned.middleRows(n, 10).setZero();
  learned.bottomRows(n) = -truth;
  CHECK(sae::mean_max_cosine_similarity(truth, learned) == Approx(1.0).epsilon(1e-5));
  CHECK(sae::mean_max_cosine_similarity(truth, learned.topRows(n)) <= 1.0);

  // Orthogonal: true features live in the first half of the coordinates, learned in the second.
  sae::Batch<TestType> left = sae::Batch<TestType>::Zero(n, d), right = sae::Batch<TestType>::Zero(n, d);
  left.leftCols(d / 2) = truth.leftCols(d / 2);
  right.rightCols(d / 2) = truth.rightCols(d / 2);
  CHECK(sae::mean_max_cosine_similarity(left, right) == 0.0);
}

TEST_CASE("MMCS matches a naive double loop on random directions", "[metrics]") {
  // A cross-check against the definition written out with no shared code.
  const sae::Index n_true = 300, n_learned = 70, d = 9;
  sae::Rng rng(3);
  sae::Batch<double> truth(n_true, d), learned(n_learned, d);
  for (sae::Index i = 0; i < truth.size(); ++i) truth.data()[i] = rng.normal();
  for (sae::Index i = 0; i < learned.size(); ++i) learned.data()[i] = rng.normal();

  double sum = 0.0;
  for (sae::Index i = 0; i < n_true; ++i) {
    double best = -2.0;
    for (sae::Index j = 0; j < n_learned; ++j) {
      double dot = 0, nt = 0, nl = 0;
      for (sae::Index k = 0; k < d; ++k) {
        dot += truth(i, k) * learned(j, k);
        nt += truth(i, k) * truth(i, k);
        nl += learned(j, k) * learned(j, k);
      }
      best = std::max(best, dot / std::sqrt(nt * nl));
    }
    sum += best;
  }
  CHECK(sae::mean_max_cosine_similarity(truth, learned) == Approx(sum / n_true).epsilon(1e-12));
  // Mixed scalars and column-major input are accepted.
  const Eigen::MatrixXf learned_f = learned.cast<float>();
  CHECK(sae::mean_max_cosine_similarity(truth, learned_f) == Approx(sum / n_true).epsilon(1e-5));
}

TEST_CASE("MMCS rejects bad input", "[metrics]") {
  const auto truth = rows_of<double>({{1, 0, 0}, {0, 1, 0}});
  const auto learned = rows_of<double>({{1, 0}, {0, 1}});
  const std::string message = invalid_argument_message([&] { sae::mean_max_cosine_similarity(truth, learned); });
  CHECK(message.find("mean_max_cosine_similarity") != std::string::npos);
  CHECK(message.find("2 x 2") != std::string::npos);
  CHECK(message.find("3 columns") != std::string::npos);

  CHECK_THROWS_AS(sae::mean_max_cosine_similarity(truth.topRows(0), truth), std::invalid_argument);
  CHECK_THROWS_AS(sae::mean_max_cosine_similarity(truth, truth.topRows(0)), std::invalid_argument);
  const auto zero_feature = rows_of<double>({{1, 0, 0}, {0, 0, 0}});
  CHECK_THROWS_AS(sae::mean_max_cosine_similarity(zero_feature, truth), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// mean_l1

TEMPLATE_TEST_CASE("mean_l1 sums absolute codes per row and averages over rows", "[metrics]", float, double, int) {
  // Absolute sums 3, 0, 3, 3: mean 9/4 = 2.25.
  const auto codes = rows_of<TestType>({{0, 1, 2}, {0, 0, 0}, {3, 0, 0}, {-1, -1, -1}});
  CHECK(sae::mean_l1(codes) == 2.25);
  CHECK(sae::mean_l1(codes.topRows(2)) == 1.5);
  CHECK(sae::mean_l1(codes.row(3)) == 3.0);
  CHECK_THROWS_AS(sae::mean_l1(codes.topRows(0)), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// mean_cosine_similarity

TEMPLATE_TEST_CASE("mean_cosine_similarity of hand-worked rows", "[metrics]", float, double) {
  // (3,4)·(4,3) = 24, norms 5 and 5: 0.96.
  CHECK(sae::mean_cosine_similarity(rows_of<TestType>({{3, 4}}), rows_of<TestType>({{4, 3}})) ==
        Approx(0.96).epsilon(1e-6));
  // (1,0) and (1,1): 1/sqrt(2).
  CHECK(sae::mean_cosine_similarity(rows_of<TestType>({{1, 0}}), rows_of<TestType>({{1, 1}})) ==
        Approx(1.0 / std::sqrt(2.0)).epsilon(1e-6));

  // Row by row: scaled copy 1, orthogonal 0, both zero 1 (exact), x zero 0,
  // x̂ zero 0, opposite -1. Mean (1 + 0 + 1 + 0 + 0 - 1) / 6 = 1/6.
  const auto X = rows_of<TestType>({{3, 4}, {1, 0}, {0, 0}, {0, 0}, {5, 5}, {2, 0}});
  const auto X_hat = rows_of<TestType>({{6, 8}, {0, 1}, {0, 0}, {1, 1}, {0, 0}, {-1, 0}});
  CHECK(sae::mean_cosine_similarity(X, X_hat) == Approx(1.0 / 6.0).epsilon(1e-6));
  CHECK(sae::mean_cosine_similarity(X, X) == Approx(1.0).epsilon(1e-12));
  CHECK(sae::mean_cosine_similarity(X, X) <= 1.0);
  CHECK(sae::mean_cosine_similarity(X.topRows(1), X_hat.topRows(1)) == Approx(1.0).epsilon(1e-6));
}

TEST_CASE("mean_cosine_similarity rejects bad input", "[metrics]") {
  const auto X = rows_of<double>({{1, 2}, {3, 4}});
  const std::string message =
      invalid_argument_message([&] { sae::mean_cosine_similarity(X, sae::Batch<double>::Zero(2, 3)); });
  CHECK(message.find("mean_cosine_similarity") != std::string::npos);
  CHECK(message.find("2 x 3") != std::string::npos);
  CHECK(message.find("2 x 2") != std::string::npos);
  CHECK_THROWS_AS(sae::mean_cosine_similarity(X.topRows(0), X.topRows(0)), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// mean_norm_ratio

TEMPLATE_TEST_CASE("mean_norm_ratio averages ||x̂||/||x|| over nonzero rows", "[metrics]", float, double) {
  // Row 0: ||(0, 2.5)|| / ||(3, 4)|| = 2.5 / 5 = 0.5. Row 1: x = 0, skipped.
  // Row 2: ||(0, 2)|| / ||(1, 0)|| = 2. Mean over the two counted rows: 1.25.
  const auto X = rows_of<TestType>({{3, 4}, {0, 0}, {1, 0}});
  const auto X_hat = rows_of<TestType>({{0, 2.5}, {7, 7}, {0, 2}});
  CHECK(sae::mean_norm_ratio(X, X_hat) == Approx(1.25).epsilon(1e-6));
  CHECK(sae::mean_norm_ratio(X, X) == 1.0);
  CHECK(sae::mean_norm_ratio(X, sae::Batch<TestType>::Zero(3, 2)) == 0.0);
  // Scaling x̂ by c scales the ratio by c, whatever the direction.
  CHECK(sae::mean_norm_ratio(X, (-TestType(0.5) * X).eval()) == Approx(0.5).epsilon(1e-6));
}

TEST_CASE("mean_norm_ratio rejects bad input", "[metrics]") {
  const auto zero = rows_of<double>({{0, 0}, {0, 0}});
  const std::string message = invalid_argument_message([&] { sae::mean_norm_ratio(zero, zero); });
  CHECK(message.find("mean_norm_ratio") != std::string::npos);
  CHECK(message.find("2 rows of X is zero") != std::string::npos);
  CHECK_THROWS_AS(sae::mean_norm_ratio(zero, sae::Batch<double>::Zero(3, 2)), std::invalid_argument);
  CHECK_THROWS_AS(sae::mean_norm_ratio(zero.topRows(0), zero.topRows(0)), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// relative_reconstruction_bias

TEMPLATE_TEST_CASE("relative_reconstruction_bias of hand-worked cases", "[metrics]", float, double) {
  // X = (1, 2), (3, 0); X_hat = (2, 1), (0, 1).
  // sum ||x̂||^2 = 5 + 1 = 6; sum <x, x̂> = (2 + 2) + (0 + 0) = 4: 6/4 = 1.5.
  const auto X = rows_of<TestType>({{1, 2}, {3, 0}});
  CHECK(sae::relative_reconstruction_bias(X, rows_of<TestType>({{2, 1}, {0, 1}})) == 1.5);
  // X = (1, 0), (0, 2); X_hat = X / 2: 1.25 / 2.5 = 0.5 (a shrunk reconstruction).
  CHECK(sae::relative_reconstruction_bias(rows_of<TestType>({{1, 0}, {0, 2}}),
                                          rows_of<TestType>({{0.5, 0}, {0, 1}})) == 0.5);
  CHECK(sae::relative_reconstruction_bias(X, X) == 1.0);
  CHECK(sae::relative_reconstruction_bias(X, (-X).eval()) == -1.0);
  // Undefined when sum <x, x̂> = 0: x̂ = 0, or x̂ orthogonal to x.
  CHECK(std::isnan(sae::relative_reconstruction_bias(X, sae::Batch<TestType>::Zero(2, 2))));
  CHECK(std::isnan(sae::relative_reconstruction_bias(rows_of<TestType>({{1, 0}}), rows_of<TestType>({{0, 1}}))));
}

TEST_CASE("relative_reconstruction_bias of a scaled reconstruction is the scale", "[metrics]") {
  // X_hat = c X: c^2 sum ||x||^2 / (c sum ||x||^2) = c, for any data.
  sae::Rng rng(11);
  sae::Batch<double> X(40, 6);
  for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal();
  for (double c : {0.25, 0.8, 1.0, 3.0})
    CHECK(sae::relative_reconstruction_bias(X, (c * X).eval()) == Approx(c).epsilon(1e-12));
  const std::string message =
      invalid_argument_message([&] { sae::relative_reconstruction_bias(X, sae::Batch<double>::Zero(40, 5)); });
  CHECK(message.find("relative_reconstruction_bias") != std::string::npos);
  CHECK(message.find("40 x 5") != std::string::npos);
  CHECK_THROWS_AS(sae::relative_reconstruction_bias(X.topRows(0), X.topRows(0)), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// max_cosine_to_other_rows / max_pairwise_cosine

TEMPLATE_TEST_CASE("max pairwise cosine of hand-worked decoders", "[metrics]", float, double) {
  // Rows e1, e2, (3,4)/5: cos(e1, e2) = 0, cos(e1, r2) = 0.6, cos(e2, r2) = 0.8.
  const auto W = rows_of<TestType>({{1, 0}, {0, 1}, {3, 4}});
  const Eigen::VectorXd per_row = sae::max_cosine_to_other_rows(W);
  REQUIRE(per_row.size() == 3);
  CHECK(per_row(0) == Approx(0.6).epsilon(1e-6));
  CHECK(per_row(1) == Approx(0.8).epsilon(1e-6));
  CHECK(per_row(2) == Approx(0.8).epsilon(1e-6));
  CHECK(sae::max_pairwise_cosine(W) == Approx(0.8).epsilon(1e-6));

  // A duplicate direction (different norm) scores 1; a row is never compared with itself.
  CHECK(sae::max_pairwise_cosine(rows_of<TestType>({{1, 0}, {2, 0}})) == Approx(1.0).epsilon(1e-6));
  CHECK(sae::max_pairwise_cosine(rows_of<TestType>({{1, 0}, {0, 1}})) == 0.0);
  // Signed: an antipodal pair is -1. A zero row has cosine 0 with everything.
  CHECK(sae::max_pairwise_cosine(rows_of<TestType>({{1, 0}, {-1, 0}})) == Approx(-1.0).epsilon(1e-6));
  const Eigen::VectorXd with_zero = sae::max_cosine_to_other_rows(rows_of<TestType>({{1, 0}, {-1, 0}, {0, 0}}));
  CHECK(with_zero(0) == 0.0);
  CHECK(with_zero(1) == 0.0);
  CHECK(with_zero(2) == 0.0);
}

TEST_CASE("max_cosine_to_other_rows matches a naive double loop", "[metrics]") {
  // 300 rows: more than one internal block of 256.
  const sae::Index n = 300, d = 8;
  sae::Rng rng(5);
  sae::Batch<double> W(n, d);
  for (sae::Index i = 0; i < W.size(); ++i) W.data()[i] = rng.normal();
  W.row(123) = 2.5 * W.row(7);  // one duplicated direction

  const Eigen::VectorXd per_row = sae::max_cosine_to_other_rows(W);
  REQUIRE(per_row.size() == n);
  double overall = -2.0;
  for (sae::Index i = 0; i < n; ++i) {
    double best = -2.0;
    for (sae::Index j = 0; j < n; ++j) {
      if (j == i) continue;
      best = std::max(best, W.row(i).dot(W.row(j)) / (W.row(i).norm() * W.row(j).norm()));
    }
    INFO("row " << i);
    CHECK(per_row(i) == Approx(best).epsilon(1e-12));
    overall = std::max(overall, best);
  }
  CHECK(per_row(7) == Approx(1.0).epsilon(1e-12));
  CHECK(per_row(123) == Approx(1.0).epsilon(1e-12));
  CHECK(sae::max_pairwise_cosine(W) == Approx(overall).epsilon(1e-12));
  const Eigen::MatrixXf W_f = W.cast<float>();  // column-major float
  CHECK(sae::max_pairwise_cosine(W_f) == Approx(overall).epsilon(1e-5));
}

TEST_CASE("max pairwise cosine needs two rows", "[metrics]") {
  const auto one = rows_of<double>({{1, 0}});
  const std::string message = invalid_argument_message([&] { sae::max_pairwise_cosine(one); });
  CHECK(message.find("max_pairwise_cosine") != std::string::npos);
  CHECK(message.find("at least 2") != std::string::npos);
  CHECK_THROWS_AS(sae::max_cosine_to_other_rows(one), std::invalid_argument);
}
