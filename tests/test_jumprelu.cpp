// The JumpReLU architecture and its objective: the encode rule, the forward
// pass against model.encode/decode, the exact gradients against central finite
// differences, and the straight-through estimate of the threshold's gradient
// against hand-worked cases (finite differences cannot check an estimate).
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <sae/loss/jumprelu_objective.hpp>

#include "support.hpp"

using sae::Dynamic;

namespace {

using JumpModel = sae::SparseAutoEncoder<double, Dynamic, Dynamic, sae::JumpReLU>;

// D = 1, F = 2, one token x = 1, with numbers exact in binary:
// W_enc = [0.5625, 0.4375], b_enc = 0, θ = [0.5, 0.5], W_dec = [2; 4], b_dec = 0,
// so P = [0.5625, 0.4375]: latent 0 just above its threshold, latent 1 just below.
sae::SparseAutoEncoder<double, 1, 2, sae::JumpReLU> two_latent_model() {
  sae::Parameters<double, 1, 2> p;
  p.W_enc << 0.5625, 0.4375;
  p.b_enc << 0, 0;
  p.W_dec << 2, 4;
  p.b_dec << 0;
  p.threshold.resize(2);
  p.threshold << 0.5, 0.5;
  return sae::SparseAutoEncoder<double, 1, 2, sae::JumpReLU>(p);
}

// P = (X − a·b_dec) W_enc + b_enc, computed here rather than by the library.
template <typename Model>
Eigen::MatrixXd pre_activations(const Model& model, const Eigen::MatrixXd& X) {
  const auto& p = model.params();
  Eigen::MatrixXd A = X;
  if (model.apply_b_dec_to_input()) A.rowwise() -= p.b_dec.transpose();
  Eigen::MatrixXd P = A * p.W_enc;
  P.rowwise() += p.b_enc.transpose();
  return P;
}

// A random model, thresholds and batch in double with no pre-activation within
// `margin` of its threshold, and some latents on each side.
template <typename Model>
void make_problem_away_from_thresholds(Model& model, sae::Batch<double>& X, std::uint64_t seed, double margin) {
  sae::Rng rng(seed);
  auto& p = model.params();
  for (int attempt = 0; attempt < 1000; ++attempt) {
    sae::init_linear_default(p, rng);
    for (sae::Index f = 0; f < p.dict_size(); ++f) p.threshold(f) = rng.uniform(0.0, 0.3);
    for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal();
    Eigen::MatrixXd gap = pre_activations(model, X);
    gap.rowwise() -= p.threshold.transpose();
    if (gap.cwiseAbs().minCoeff() > margin && (gap.array() > 0).any() && (gap.array() < 0).any()) return;
  }
  FAIL("could not draw a problem away from the thresholds");
}

}  // namespace

TEST_CASE("JumpReLU encode: a latent fires only strictly above its threshold", "[jumprelu]") {
  // D = 1, F = 4, x = 1: P = W_enc = [0.5, 0.25, 1, -0.25] against θ = [0.5, 0.5, 0.5, -0.5].
  sae::Parameters<double> p(1, 4);
  p.W_enc << 0.5, 0.25, 1, -0.25;
  p.W_dec << 1, 1, 1, 1;
  p.threshold.resize(4);
  p.threshold << 0.5, 0.5, 0.5, -0.5;
  const JumpModel model(p);
  const Eigen::MatrixXd X = Eigen::MatrixXd::Ones(1, 1);
  const sae::Batch<double> codes = model.encode(X);
  CHECK(codes(0, 0) == 0.0);    // P == θ: silent
  CHECK(codes(0, 1) == 0.0);    // below
  CHECK(codes(0, 2) == 1.0);    // above: P itself, no shrinkage
  CHECK(codes(0, 3) == -0.25);  // P · 1[P > θ] passes a negative P above a negative θ unchanged

  // The objective's forward pass agrees, and counts the firing latents.
  sae::LossWorkspace<double> ws;
  const auto r = sae::JumpReLUObjective<double>{0.1}.evaluate(model, X, ws);
  CHECK(ws.codes == codes);
  CHECK(r.l0 == 2.0);
  CHECK(r.l1 == 1.25);  // mean_b Σ |f|
}

TEMPLATE_TEST_CASE("JumpReLU objective: its codes and loss are model.encode and model.decode's", "[jumprelu]",
                   (sae::SparseAutoEncoder<double, Dynamic, Dynamic, sae::JumpReLU>),
                   (sae::SparseAutoEncoder<double, 6, 10, sae::JumpReLU>),
                   (sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::JumpReLU>)) {
  using Scalar = typename TestType::Scalar;
  TestType model(6, 10, sae::Init::LinearDefault, 5);
  model.apply_b_dec_to_input() = GENERATE(false, true);
  sae::Rng rng(6);
  for (sae::Index f = 0; f < 10; ++f) model.params().threshold(f) = static_cast<Scalar>(rng.uniform(0.0, 0.4));
  sae::Batch<Scalar> X(9, 6);
  for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = static_cast<Scalar>(rng.normal());

  const double target = GENERATE(0.0, 3.0);
  const sae::JumpReLUObjective<Scalar> objective{Scalar(0.2), Scalar(0.001), target};
  sae::LossWorkspace<Scalar> ws;
  auto grads = sae::zeros_like(model.params());
  const auto r = objective.evaluate_with_gradient(model, X, grads, ws);

  const auto codes = model.encode(X);
  CHECK(ws.codes == codes);
  const auto recon = model.decode(codes);
  const double l2 = (recon - X).template cast<double>().squaredNorm() / 9.0;
  const double l0 = static_cast<double>((codes.array() != Scalar(0)).count()) / 9.0;
  CHECK(r.l2 == Approx(l2).epsilon(1e-5));
  CHECK(r.l0 == l0);
  CHECK(r.l1 == Approx(codes.template cast<double>().cwiseAbs().sum() / 9.0).epsilon(1e-5));
  const double penalty = target > 0 ? (l0 / target - 1) * (l0 / target - 1) : l0;
  CHECK(r.auxiliary == Approx(penalty).epsilon(1e-12));
  CHECK(r.loss == Approx(r.l2 + 0.2 * r.auxiliary).epsilon(1e-6));

  // The value-only path reports the same numbers.
  const auto value_only = sae::loss(model, X, objective);
  CHECK(value_only.loss == r.loss);
  CHECK(value_only.l0 == r.l0);
  CHECK(value_only.l1 == r.l1);
}

TEMPLATE_TEST_CASE("JumpReLU objective: every exact gradient matches central finite differences",
                   "[jumprelu][gradcheck]", (sae::SparseAutoEncoder<double, Dynamic, Dynamic, sae::JumpReLU>),
                   (sae::SparseAutoEncoder<double, 5, 12, sae::JumpReLU>),
                   (sae::SparseAutoEncoder<double, 5, Dynamic, sae::JumpReLU>)) {
  const sae::Index D = 5, F = 12, B = 7;
  TestType model(D, F);
  model.apply_b_dec_to_input() = GENERATE(false, true);
  CAPTURE(model.apply_b_dec_to_input());
  sae::Batch<double> X(B, D);
  // 1e-3 from every threshold: outside the kernel's window (ε/2 = 5e-4), and
  // far beyond the ±h steps of the differences.
  make_problem_away_from_thresholds(model, X, 2025, 1e-3);

  const double target = GENERATE(0.0, 4.0);  // λ·L0 and λ·(L0/t − 1)²
  CAPTURE(target);
  const sae::JumpReLUObjective<double> objective{0.05, 0.001, target};
  auto grads = sae::zeros_like(model.params());
  sae::loss_and_gradient(model, X, objective, grads);

  const double h = 1e-6;
  std::vector<Eigen::MatrixXd> numeric;
  model.params().for_each([&](const char*, auto& tensor) {
    numeric.push_back(sae_test::central_differences(tensor, [&] { return sae::loss(model, X, objective).loss; }, h));
  });

  std::size_t i = 0;
  grads.for_each([&](const char* name, const auto& analytic) {
    CAPTURE(name);
    const Eigen::MatrixXd& expected = numeric[i++];
    REQUIRE(analytic.size() == expected.size());
    if (analytic.size() == 0) return;  // r_mag, b_mag: not a JumpReLU's
    if (std::string(name) == "threshold") {
      // Away from the thresholds L is flat in θ, and the estimator's window
      // (|P − θ| < ε/2) holds no pre-activation: both are exactly 0.
      CHECK(expected.cwiseAbs().maxCoeff() == 0.0);
      CHECK(analytic.cwiseAbs().maxCoeff() == 0.0);
      return;
    }
    const double scale = std::max(1.0, analytic.cwiseAbs().maxCoeff());
    CHECK((analytic - expected).cwiseAbs().maxCoeff() <= 1e-7 * scale);
    CHECK(analytic.cwiseAbs().maxCoeff() > 0.0);  // the parameter really receives a gradient
  });
}

TEST_CASE("JumpReLU objective: a hand-worked loss, gradient and threshold estimate (L0 penalty)", "[jumprelu]") {
  // two_latent_model() at x = 1, λ = 0.5, ε = 0.25:
  // P = [0.5625, 0.4375] → f = [0.5625, 0] → x̂ = 1.125 → e = 0.125 → l2 = 0.015625; L0 = 1.
  const auto model = two_latent_model();
  const sae::Batch<double, 1> X = sae::Batch<double, 1>::Ones(1, 1);
  auto grads = sae::zeros_like(model.params());
  sae::LossWorkspace<double> ws;
  const auto r = sae::loss_and_gradient(model, X, sae::JumpReLUObjective<double>{0.5, 0.25}, grads, ws);
  CHECK(r.l2 == 0.015625);
  CHECK(r.l0 == 1.0);
  CHECK(r.auxiliary == 1.0);
  CHECK(r.l1 == 0.5625);
  CHECK(r.loss == 0.515625);
  CHECK(ws.pre_activations(0, 0) == 0.5625);  // P is kept for the backward pass
  CHECK(ws.pre_activations(0, 1) == 0.4375);

  // G_x̂ = 2e = 0.25; ∇W_dec = f ⊗ G_x̂; ∇b_dec = G_x̂.
  CHECK(grads.W_dec(0, 0) == 0.140625);
  CHECK(grads.W_dec(1, 0) == 0.0);
  CHECK(grads.b_dec(0) == 0.25);
  // G_f = G_x̂ W_decᵀ = [0.5, 1]; G_P = G_f ⊙ 1[P > θ] = [0.5, 0].
  CHECK(grads.W_enc(0, 0) == 0.5);
  CHECK(grads.W_enc(0, 1) == 0.0);
  CHECK(grads.b_enc(0) == 0.5);
  CHECK(grads.b_enc(1) == 0.0);
  // Both latents are in the window: |P − θ|/ε = 0.25 < 1/2, K = 1.
  //   the output's jump:   G_f · (−θ/ε) = [0.5, 1] · (−2) = [−1, −2]  (latent 1 too, though silent)
  //   the penalty's step:  (λ/B) · (−1/ε) = 0.5 · (−4)   = [−2, −2]
  CHECK(grads.threshold(0) == -3.0);
  CHECK(grads.threshold(1) == -4.0);
}

TEST_CASE("JumpReLU objective: a hand-worked threshold estimate with a target L0", "[jumprelu]") {
  // As above with t = 2: S = (L0/t − 1)² = 0.25; its slope λ · 2(L0/t − 1)/t = −0.25, so the
  // step's term is −0.25/B · (−1/ε) = +1 for each latent: below its target L0 the penalty
  // pushes the thresholds down (a positive gradient), instead of up.
  const auto model = two_latent_model();
  const sae::Batch<double, 1> X = sae::Batch<double, 1>::Ones(1, 1);
  auto grads = sae::zeros_like(model.params());
  const auto r = sae::loss_and_gradient(model, X, sae::JumpReLUObjective<double>{0.5, 0.25, 2.0}, grads);
  CHECK(r.l0 == 1.0);
  CHECK(r.auxiliary == 0.25);
  CHECK(r.loss == 0.140625);
  CHECK(grads.threshold(0) == 0.0);   // −1 + 1
  CHECK(grads.threshold(1) == -1.0);  // −2 + 1
  // The penalty has no gradient with respect to P: the rest is as with the L0 penalty.
  CHECK(grads.W_enc(0, 0) == 0.5);
  CHECK(grads.b_enc(1) == 0.0);
  CHECK(grads.W_dec(0, 0) == 0.140625);
}

TEST_CASE("JumpReLU objective: the kernel's window is open, |P − θ| = ε/2 is outside it", "[jumprelu]") {
  const auto model = two_latent_model();  // |P − θ| = 0.0625 for both latents
  const sae::Batch<double, 1> X = sae::Batch<double, 1>::Ones(1, 1);
  auto grads = sae::zeros_like(model.params());
  sae::loss_and_gradient(model, X, sae::JumpReLUObjective<double>{0.5, 0.125}, grads);  // u = ±1/2
  CHECK(grads.threshold(0) == 0.0);
  CHECK(grads.threshold(1) == 0.0);
  sae::loss_and_gradient(model, X, sae::JumpReLUObjective<double>{0.5, 0.126}, grads);  // just inside
  CHECK(grads.threshold(0) < 0.0);
  CHECK(grads.threshold(1) < 0.0);

  // P == θ exactly: silent, but in the window (u = 0), so θ still learns.
  auto at_threshold = model;
  at_threshold.params().threshold << 0.5625, 0.4375;
  const auto r = sae::loss_and_gradient(at_threshold, X, sae::JumpReLUObjective<double>{0.5, 0.25}, grads);
  CHECK(r.l0 == 0.0);
  // e = −1, G_x̂ = −2, G_f = [−4, −8]: θ_f · (−4) · G_f + (λ/B)(−4).
  CHECK(grads.threshold(0) == Approx(0.5625 * -4 * -4 + 0.5 * -4).epsilon(1e-15));
  CHECK(grads.threshold(1) == Approx(0.4375 * -4 * -8 + 0.5 * -4).epsilon(1e-15));
  CHECK(grads.W_enc.cwiseAbs().maxCoeff() == 0.0);  // nothing fires, nothing passes to P
}

TEST_CASE("JumpReLU objective: the penalty's threshold term is its slope times the kernel count", "[jumprelu]") {
  // With W_dec = 0 the reconstruction does not depend on f, so ∇θ is the
  // penalty's term alone: dS/dL0 (taken here by differences of S(L0)) times
  // Σ_b (−1/ε) K((P − θ)/ε) / B. A wide window puts many entries in it.
  const sae::Index D = 4, F = 6, B = 10;
  JumpModel model(D, F, sae::Init::LinearDefault, 11);
  model.params().W_dec.setZero();
  sae::Rng rng(12);
  for (sae::Index f = 0; f < F; ++f) model.params().threshold(f) = rng.uniform(0.0, 0.3);
  sae::Batch<double> X(B, D);
  for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal();

  const double eps = 0.5, lambda = 0.3;
  const Eigen::MatrixXd P = pre_activations(model, X);
  double l0 = 0;
  Eigen::VectorXd in_window = Eigen::VectorXd::Zero(F);
  for (sae::Index b = 0; b < B; ++b)
    for (sae::Index f = 0; f < F; ++f) {
      const double theta = model.params().threshold(f);
      l0 += P(b, f) > theta;
      in_window(f) += std::abs((P(b, f) - theta) / eps) < 0.5;
    }
  l0 /= B;
  REQUIRE(in_window.sum() > 0);

  for (const double target : {0.0, 1.0, l0, 50.0}) {
    CAPTURE(target);
    const auto penalty = [&](double L) {
      return target > 0 ? lambda * (L / target - 1) * (L / target - 1) : lambda * L;
    };
    const double delta = 1e-4;
    const double slope = (penalty(l0 + delta) - penalty(l0 - delta)) / (2 * delta);
    auto grads = sae::zeros_like(model.params());
    const auto r = sae::loss_and_gradient(model, X, sae::JumpReLUObjective<double>{lambda, eps, target}, grads);
    CHECK(r.l0 == Approx(l0).epsilon(1e-15));
    const Eigen::VectorXd expected = (slope / B) * (-1 / eps) * in_window;
    CHECK((grads.threshold - expected).cwiseAbs().maxCoeff() <= 1e-9);
  }
}

TEST_CASE("JumpReLU objective: the two penalty forms differ only in the threshold gradient", "[jumprelu]") {
  JumpModel model(5, 8, sae::Init::LinearDefault, 21);
  model.apply_b_dec_to_input() = true;
  model.params().threshold.setConstant(0.1);
  sae::Rng rng(22);
  sae::Batch<double> X(6, 5);
  for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal();
  auto a = sae::zeros_like(model.params());
  auto b = sae::zeros_like(model.params());
  sae::loss_and_gradient(model, X, sae::JumpReLUObjective<double>{0.4, 0.2}, a);
  sae::loss_and_gradient(model, X, sae::JumpReLUObjective<double>{0.4, 0.2, 2.0}, b);
  CHECK(a.W_enc == b.W_enc);
  CHECK(a.b_enc == b.b_enc);
  CHECK(a.W_dec == b.W_dec);
  CHECK(a.b_dec == b.b_dec);
  CHECK(a.threshold != b.threshold);
}

TEST_CASE("JumpReLU objective: a reused workspace gives the same results across batch sizes", "[jumprelu]") {
  sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::JumpReLU> model(8, 32, sae::Init::Tied, 1);
  model.params().threshold.setConstant(0.02f);
  sae_test::check_reused_workspace(model, sae::JumpReLUObjective<float>{1e-2f, 0.05f});
}

TEST_CASE("JumpReLU objective: bad models, batches and settings are rejected", "[jumprelu][errors]") {
  JumpModel model(4, 8);
  auto grads = sae::zeros_like(model.params());
  const Eigen::MatrixXd X = Eigen::MatrixXd::Ones(3, 4);

  SECTION("a model without a threshold vector") {
    model.params().threshold.resize(0);
    SAE_CHECK_THROWS(sae::loss_and_gradient(model, X, sae::JumpReLUObjective<double>{0.1}, grads),
                     std::invalid_argument, Catch::Matchers::Contains("threshold"));
    SAE_CHECK_THROWS(sae::loss(model, X, sae::JumpReLUObjective<double>{0.1}), std::invalid_argument,
                     Catch::Matchers::Contains("threshold"));
  }
  SECTION("a batch of the wrong width, or empty") {
    SAE_CHECK_THROWS(sae::loss_and_gradient(model, Eigen::MatrixXd::Ones(3, 5), sae::JumpReLUObjective<double>{0.1},
                                            grads),
                     std::invalid_argument,
                     Catch::Matchers::Contains("5 columns") && Catch::Matchers::Contains("expected 4"));
    SAE_CHECK_THROWS(sae::loss(model, Eigen::MatrixXd(0, 4), sae::JumpReLUObjective<double>{0.1}),
                     std::invalid_argument, Catch::Matchers::Contains("no rows"));
  }
  SECTION("settings out of range") {
    SAE_CHECK_THROWS(sae::loss(model, X, sae::JumpReLUObjective<double>{0.1, 0.0}), std::invalid_argument,
                     Catch::Matchers::Contains("bandwidth"));
    SAE_CHECK_THROWS(sae::loss(model, X, sae::JumpReLUObjective<double>{0.1, 0.001, -1.0}), std::invalid_argument,
                     Catch::Matchers::Contains("target_l0"));
    SAE_CHECK_THROWS(sae::loss(model, X, sae::JumpReLUObjective<double>{-0.1}), std::invalid_argument,
                     Catch::Matchers::Contains("l0_coefficient"));
  }
  SECTION("gradients of the wrong size are resized, threshold included") {
    sae::Parameters<double> wrong(2, 3);
    sae::loss_and_gradient(model, X, sae::JumpReLUObjective<double>{0.1}, wrong);
    CHECK(wrong.same_shapes(model.params()));
    CHECK(wrong.threshold.size() == 8);
  }
}
