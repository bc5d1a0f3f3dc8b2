// Tests for sae/train/constraints.hpp: unit-norm decoder rows with the
// gradient projected onto the tangent space of each row's sphere.
#include <catch2/catch.hpp>

#include <cmath>
#include <stdexcept>

#include <sae/core/random.hpp>
#include <sae/core/sparse_autoencoder.hpp>
#include <sae/loss/l1_objective.hpp>
#include <sae/train/constraints.hpp>

#include "support.hpp"

using sae_test::fill_normal;

namespace {

template <typename Params>
void fill_params(Params& p, sae::Rng& rng, double scale = 1.0) {
  p.for_each([&](const char*, auto& t) { fill_normal(t, rng, scale); });
}

template <typename Scalar>
constexpr double tolerance() {
  return std::is_same<Scalar, double>::value ? 1e-12 : 1e-5;
}

}  // namespace

TEMPLATE_TEST_CASE("normalize_decoder_rows leaves every nonzero row with norm 1 and nothing else changed",
                   "[constraints]", (sae::Parameters<double>), (sae::Parameters<float>),
                   (sae::Parameters<double, 8, 12>), (sae::Parameters<float, 8, 12>)) {
  using Scalar = typename TestType::Scalar;
  sae::Rng rng(1);
  TestType p(8, 12);
  fill_params(p, rng, 3.0);
  p.W_dec.row(5).setZero();
  const TestType before = p;

  sae::normalize_decoder_rows(p);
  for (sae::Index f = 0; f < 12; ++f) {
    CAPTURE(f);
    if (f == 5) {
      CHECK(p.W_dec.row(f).isZero(0));  // a zero row stays zero, no NaN
    } else {
      CHECK(std::abs(p.W_dec.row(f).template cast<double>().norm() - 1.0) <= tolerance<Scalar>());
      // Same direction: a positive multiple of the old row.
      const double cosine = p.W_dec.row(f).template cast<double>().dot(before.W_dec.row(f).template cast<double>()) /
                            before.W_dec.row(f).template cast<double>().norm();
      CHECK(cosine == Approx(1.0).epsilon(tolerance<Scalar>()));
    }
  }
  CHECK(p.W_enc == before.W_enc);
  CHECK(p.b_enc == before.b_enc);
  CHECK(p.b_dec == before.b_dec);
}

TEST_CASE("project_decoder_gradient: hand-worked rows", "[constraints]") {
  sae::Parameters<double> p(2, 3), g(2, 3);
  // Row 0 unit (0.6, 0.8), gradient (1, 0): <g, w> = 0.6, g - 0.6 w = (0.64, -0.48).
  p.W_dec.row(0) << 0.6, 0.8;
  g.W_dec.row(0) << 1.0, 0.0;
  // Row 1 not unit, (3, 4): the projection divides by |w|^2 = 25, same answer.
  p.W_dec.row(1) << 3.0, 4.0;
  g.W_dec.row(1) << 1.0, 0.0;
  // Row 2 zero: nothing to project out, the gradient is kept.
  g.W_dec.row(2) << 7.0, -2.0;
  g.W_enc.setConstant(5.0);
  g.b_enc.setConstant(6.0);
  g.b_dec.setConstant(7.0);

  sae::project_decoder_gradient(p, g);
  CHECK(g.W_dec(0, 0) == Approx(0.64).epsilon(1e-15));
  CHECK(g.W_dec(0, 1) == Approx(-0.48).epsilon(1e-15));
  CHECK(g.W_dec(1, 0) == Approx(0.64).epsilon(1e-15));
  CHECK(g.W_dec(1, 1) == Approx(-0.48).epsilon(1e-15));
  CHECK(g.W_dec(2, 0) == 7.0);
  CHECK(g.W_dec(2, 1) == -2.0);
  CHECK((g.W_enc.array() == 5.0).all());  // only W_dec is constrained
  CHECK((g.b_enc.array() == 6.0).all());
  CHECK((g.b_dec.array() == 7.0).all());
}

TEMPLATE_TEST_CASE("the projected gradient is orthogonal to its row and keeps the tangent part",
                   "[constraints]", (sae::Parameters<double>), (sae::Parameters<float>),
                   (sae::Parameters<double, 16, 32>), (sae::Parameters<float, 16, 32>)) {
  using Scalar = typename TestType::Scalar;
  sae::Rng rng(2);
  TestType p(16, 32), g(16, 32);
  fill_params(p, rng);
  sae::normalize_decoder_rows(p);
  fill_params(g, rng, 10.0);
  const TestType original = g;

  sae::project_decoder_gradient(p, g);
  for (sae::Index f = 0; f < 32; ++f) {
    CAPTURE(f);
    const Eigen::RowVectorXd w = p.W_dec.row(f).template cast<double>();
    const Eigen::RowVectorXd g0 = original.W_dec.row(f).template cast<double>();
    const Eigen::RowVectorXd g1 = g.W_dec.row(f).template cast<double>();
    // Orthogonal, relative to the sizes involved.
    CHECK(std::abs(g1.dot(w)) <= 10 * tolerance<Scalar>() * g0.norm());
    // What was removed is along w: g0 - g1 = <g0, w> w.
    CHECK((g0 - g1 - g0.dot(w) * w).norm() <= 10 * tolerance<Scalar>() * g0.norm());
  }
}

TEST_CASE("a projected step moves a unit row tangentially: its norm changes only at second order",
          "[constraints]") {
  // w unit, g⊥ ⟂ w: |w - η g⊥|² = 1 + η² |g⊥|² exactly, so |w'| - 1 ≈ η² |g⊥|² / 2.
  // The unprojected step changes the norm at first order, by -η <g, w>.
  sae::Rng rng(3);
  sae::Parameters<double> p(10, 4), g(10, 4);
  fill_params(p, rng);
  sae::normalize_decoder_rows(p);
  fill_params(g, rng);
  sae::Parameters<double> projected = g;
  sae::project_decoder_gradient(p, projected);

  for (double eta : {1e-2, 1e-3, 1e-4}) {
    CAPTURE(eta);
    for (sae::Index f = 0; f < 4; ++f) {
      const Eigen::RowVectorXd w = p.W_dec.row(f);
      const Eigen::RowVectorXd gp = projected.W_dec.row(f);
      const Eigen::RowVectorXd g0 = g.W_dec.row(f);
      const double tangent_change = (w - eta * gp).norm() - 1.0;
      CHECK(tangent_change / (eta * eta) == Approx(gp.squaredNorm() / 2).epsilon(eta * gp.squaredNorm()));
      const double free_change = (w - eta * g0).norm() - 1.0;
      CHECK(std::abs(free_change / eta + g0.dot(w)) <= eta * g0.squaredNorm());  // -η<g,w> + O(η²|g|²)
    }
  }
}

TEST_CASE("projected step then renormalisation changes the loss by -η |G⊥|² to first order", "[constraints]") {
  // Only W_dec moves, so the codes (and the ReLU kinks) stay fixed and the loss
  // is smooth along the path. The retraction R(W - η G⊥) = W - η G⊥ + O(η²), so
  // (L(R(W - η G⊥)) - L(W)) / η = -<G, G⊥> + O(η) = -|G⊥|² + O(η).
  sae::Rng rng(4);
  const sae::Index D = 12, F = 20, B = 32;
  sae::SparseAutoEncoder<double> model(D, F, sae::Init::Tied, 7);
  sae::UnitNormDecoder constraint;
  constraint.after_step(model.params());  // start on the sphere
  fill_normal(model.params().b_enc, rng, 0.1);
  fill_normal(model.params().b_dec, rng, 0.1);
  sae::Batch<double> X(B, D);
  fill_normal(X, rng);

  const sae::L1Objective<double> objective{0.01, sae::L1Reduction::MeanOverBatch};
  auto grads = sae::zeros_like(model.params());
  const double loss0 = sae::loss_and_gradient(model, X, objective, grads).loss;
  constraint.before_step(model.params(), grads);
  const double tangent_squared = grads.W_dec.squaredNorm();
  REQUIRE(tangent_squared > 0);

  double previous_error = 0;
  for (double eta : {1e-3, 1e-4, 1e-5}) {
    CAPTURE(eta);
    sae::SparseAutoEncoder<double> stepped = model;
    stepped.params().W_dec -= eta * grads.W_dec;
    constraint.after_step(stepped.params());
    for (sae::Index f = 0; f < F; ++f) CHECK(stepped.params().W_dec.row(f).norm() == Approx(1.0).epsilon(1e-14));
    const double slope = (sae::loss(stepped, X, objective).loss - loss0) / eta;
    const double error = std::abs(slope + tangent_squared);
    CHECK(error <= 100 * eta * tangent_squared);  // first order agrees; the rest is O(η)
    if (previous_error > 0) CHECK(error < previous_error / 5);  // and shrinks with η
    previous_error = error;
  }
}

TEST_CASE("UnitNormDecoder's hooks are the two functions; NoConstraint changes nothing", "[constraints]") {
  sae::Rng rng(5);
  sae::Parameters<float> p(6, 9), g(6, 9);
  fill_params(p, rng);
  fill_params(g, rng);

  sae::Parameters<float> p1 = p, g1 = g, p2 = p, g2 = g;
  sae::UnitNormDecoder{}.before_step(p1, g1);
  sae::project_decoder_gradient(p2, g2);
  CHECK(g1.W_dec == g2.W_dec);
  sae::UnitNormDecoder{}.after_step(p1);
  sae::normalize_decoder_rows(p2);
  CHECK(p1.W_dec == p2.W_dec);

  sae::Parameters<float> p3 = p, g3 = g;
  sae::NoConstraint{}.before_step(p3, g3);
  sae::NoConstraint{}.after_step(p3);
  CHECK(p3.W_dec == p.W_dec);
  CHECK(g3.W_dec == g.W_dec);
}

TEST_CASE("project_decoder_gradient rejects gradients of another shape", "[constraints][errors]") {
  sae::Parameters<double> p(3, 4), g(3, 5);
  CHECK_THROWS_AS(sae::project_decoder_gradient(p, g), std::invalid_argument);
  CHECK_THROWS_WITH(sae::project_decoder_gradient(p, g),
                    Catch::Matchers::Contains("grads.W_dec") && Catch::Matchers::Contains("5 x 3") &&
                        Catch::Matchers::Contains("4 x 3"));
}
