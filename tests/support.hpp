// tests/support.hpp: helpers shared by the test files.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include <catch2/catch.hpp>

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

/// `to` = `from`'s parameters converted to `to`'s scalar type (every tensor,
/// empty ones included), e.g. a float model's in double.
template <typename From, typename To>
void cast_parameters(const From& from, To& to) {
  using Scalar = typename To::Scalar;
  to.W_enc = from.W_enc.template cast<Scalar>();
  to.b_enc = from.b_enc.template cast<Scalar>();
  to.W_dec = from.W_dec.template cast<Scalar>();
  to.b_dec = from.b_dec.template cast<Scalar>();
  to.threshold = from.threshold.template cast<Scalar>();
  to.r_mag = from.r_mag.template cast<Scalar>();
  to.b_mag = from.b_mag.template cast<Scalar>();
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

/// Checks that loss_and_gradient with one workspace reused across batches of
/// 16, 5 and again 16 rows gives, bit for bit, the loss, L0, every gradient
/// and the codes that a fresh workspace gives: an objective resizes its buffers
/// and never reads what an earlier, larger batch left in them.
template <typename Model, typename Objective>
void check_reused_workspace(const Model& model, const Objective& objective) {
  using Scalar = typename Model::Scalar;
  sae::Rng rng(9);
  sae::Batch<Scalar> big(16, model.input_dim()), small(5, model.input_dim());
  fill_normal(big, rng);
  fill_normal(small, rng);
  sae::LossWorkspace<Scalar> ws;
  auto grads = sae::zeros_like(model.params());
  auto fresh = sae::zeros_like(model.params());
  for (const auto* X : {&big, &small, &big}) {
    INFO("batch of " << X->rows() << " rows");
    sae::LossWorkspace<Scalar> fresh_ws;
    const auto reused = sae::loss_and_gradient(model, *X, objective, grads, ws);
    const auto once = sae::loss_and_gradient(model, *X, objective, fresh, fresh_ws);
    CHECK(reused.loss == once.loss);
    CHECK(reused.l0 == once.l0);
    sae::for_each_pair(grads, fresh, "check_reused_workspace", [](const char* name, const auto& a, const auto& b) {
      INFO("gradient of " << name);
      CHECK(a == b);
    });
    CHECK(ws.codes == fresh_ws.codes);
  }
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
