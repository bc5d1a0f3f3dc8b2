// tests/support.hpp: helpers shared by the test files.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include <sae/sae.hpp>
#include <sae/io/npy.hpp>

#ifndef SAE_TEST_DATA_DIR
#error "SAE_TEST_DATA_DIR must point at tests/data"
#endif

namespace sae_test {

inline std::string data_path(const std::string& relative) { return std::string(SAE_TEST_DATA_DIR) + "/" + relative; }

/// The seed-torch fixture `name` (e.g. "grad_l1sum_W_enc"), converted to Scalar.
template <typename Scalar>
sae::Batch<Scalar> seed_fixture(const std::string& name) {
  return sae::load_npy<Scalar>(data_path("seed-torch/" + name + ".npy"));
}

/// max |a - b| / max |b|: the error relative to the reference's scale.
template <typename A, typename B>
double relative_error(const Eigen::MatrixBase<A>& actual, const Eigen::MatrixBase<B>& expected) {
  if (actual.rows() != expected.rows() || actual.cols() != expected.cols()) return INFINITY;
  const auto a = actual.template cast<double>();
  const auto e = expected.template cast<double>();
  const double scale = std::max(e.cwiseAbs().maxCoeff(), 1e-300);
  return (a - e).cwiseAbs().maxCoeff() / scale;
}

/// Parameters from fixture files `<prefix>_W_enc.npy` etc.; 1-D biases load as columns.
template <typename Scalar, int D, int F>
sae::Parameters<Scalar, D, F> seed_parameters(const std::string& prefix) {
  sae::Parameters<Scalar, D, F> p(16, 64);
  p.W_enc = seed_fixture<Scalar>(prefix + "_W_enc");
  p.b_enc = seed_fixture<Scalar>(prefix + "_b_enc");
  p.W_dec = seed_fixture<Scalar>(prefix + "_W_dec");
  p.b_dec = seed_fixture<Scalar>(prefix + "_b_dec");
  return p;
}

/// Central differences of `loss` with respect to every element of `tensor`
/// (each perturbed by ±h and restored).
template <typename Tensor>
Eigen::MatrixXd central_differences(Tensor& tensor, const std::function<double()>& loss, double h) {
  Eigen::MatrixXd g(tensor.rows(), tensor.cols());
  for (sae::Index r = 0; r < tensor.rows(); ++r)
    for (sae::Index c = 0; c < tensor.cols(); ++c) {
      const double saved = tensor(r, c);
      tensor(r, c) = saved + h;
      const double up = loss();
      tensor(r, c) = saved - h;
      const double down = loss();
      tensor(r, c) = saved;
      g(r, c) = (up - down) / (2 * h);
    }
  return g;
}

/// Every element of `t` (a matrix or vector) set to offset + scale * a standard
/// normal from `rng`, row by row.
template <typename Tensor>
void fill_normal(Tensor& t, sae::Rng& rng, double scale = 1.0, double offset = 0.0) {
  for (sae::Index r = 0; r < t.rows(); ++r)
    for (sae::Index c = 0; c < t.cols(); ++c)
      t(r, c) = static_cast<typename Tensor::Scalar>(offset + scale * rng.normal());
}

/// A rows x cols batch of standard normals from `seed`.
template <typename Scalar = double>
sae::Batch<Scalar> normal_batch(sae::Index rows, sae::Index cols, std::uint64_t seed) {
  sae::Rng rng(seed);
  sae::Batch<Scalar> X(rows, cols);
  fill_normal(X, rng);
  return X;
}

/// Relative tolerance for comparisons with the float64 PyTorch fixtures.
template <typename Scalar>
constexpr double fixture_tolerance() {
  return std::is_same<Scalar, double>::value ? 1e-10 : 1e-4;
}

}  // namespace sae_test

/// Checks that `expr` throws `type` and that the message matches `matcher`
/// with Catch2's string matchers (evaluates `expr` twice).
#define SAE_CHECK_THROWS(expr, type, matcher) \
  do {                                        \
    CHECK_THROWS_AS(expr, type);              \
    CHECK_THROWS_WITH(expr, matcher);         \
  } while (false)
