// The Gated architecture and its objective: the encode rule, the forward pass
// against model.encode/decode, the gradients against central finite
// differences (with the auxiliary loss's decoder copies held fixed where the
// objective detaches them), and hand-worked values.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <sae/loss/gated_objective.hpp>

#include "support.hpp"

using sae::Dynamic;

namespace {

using GatedModel = sae::SparseAutoEncoder<double, Dynamic, Dynamic, sae::Gated>;

// D = 1, F = 4, one token x = 1, H = x W_enc = [1, 1, 1, 1]:
//   b_enc = [0.5, −2, 0.5, −1]  → π_gate = [1.5, −1, 1.5, 0]
//   r_mag = 0, b_mag = [0.25, 3, −2, 1] → π_mag = [1.25, 4, −1, 2]
// so latent 0 fires (f = 1.25), latent 1's gate is closed (magnitude 4 > 0),
// latent 2's gate is open but its magnitude negative, latent 3's gate sits at 0 (closed).
// W_dec = [2; 1; −1; 4], b_dec = 0.
sae::SparseAutoEncoder<double, 1, 4, sae::Gated> four_latent_model() {
  sae::Parameters<double, 1, 4> p;
  p.W_enc << 1, 1, 1, 1;
  p.b_enc << 0.5, -2, 0.5, -1;
  p.W_dec << 2, 1, -1, 4;
  p.b_dec << 0;
  p.r_mag = Eigen::VectorXd::Zero(4);
  p.b_mag.resize(4);
  p.b_mag << 0.25, 3, -2, 1;
  return sae::SparseAutoEncoder<double, 1, 4, sae::Gated>(p);
}

// Everything the gradient tests need, computed here rather than by the library.
struct GatedForward {
  Eigen::MatrixXd A, H, gate, magnitude, codes, gate_codes;  // gate_codes = ReLU(π_gate)
};

template <typename Model>
GatedForward gated_forward(const Model& model, const Eigen::MatrixXd& X) {
  const auto& p = model.params();
  GatedForward out;
  out.A = X;
  if (model.apply_b_dec_to_input()) out.A.rowwise() -= p.b_dec.transpose();
  out.H = out.A * p.W_enc;
  out.gate = out.H.rowwise() + p.b_enc.transpose();
  out.magnitude = out.H;
  for (sae::Index f = 0; f < out.H.cols(); ++f)
    out.magnitude.col(f) = out.H.col(f) * std::exp(p.r_mag(f)) + Eigen::VectorXd::Constant(out.H.rows(), p.b_mag(f));
  out.codes = ((out.gate.array() > 0) && (out.magnitude.array() > 0)).select(out.magnitude, 0.0);
  out.gate_codes = out.gate.cwiseMax(0.0);
  return out;
}

// L = l2 + λ·L_sparse + L_aux with L_aux's decoder taken from (W_dec_aux, b_dec_aux):
// the objective's loss when they are W_dec and b_dec, and the function whose
// gradient it returns when they are held at their values (the detached copies).
template <typename Model>
double reference_loss(const Model& model, const Eigen::MatrixXd& X, double lambda, sae::L1Weighting weighting,
                      const Eigen::MatrixXd& W_dec_aux, const Eigen::VectorXd& b_dec_aux) {
  const auto& p = model.params();
  const GatedForward fw = gated_forward(model, X);
  const double B = static_cast<double>(X.rows());
  Eigen::MatrixXd recon = fw.codes * p.W_dec;
  recon.rowwise() += p.b_dec.transpose();
  Eigen::MatrixXd aux = fw.gate_codes * W_dec_aux;
  aux.rowwise() += b_dec_aux.transpose();
  Eigen::VectorXd weights = Eigen::VectorXd::Ones(p.dict_size());
  if (weighting == sae::L1Weighting::DecoderNorm) weights = p.W_dec.rowwise().norm();
  const double sparse = (fw.gate_codes * weights).sum() / B;
  return (recon - X).squaredNorm() / B + lambda * sparse + (aux - X).squaredNorm() / B;
}

// A random Gated model and batch in double with no π_gate or π_mag within
// `margin` of 0, and latents in each state: firing, gate closed over a positive
// magnitude, gate open over a negative magnitude.
template <typename Model>
void make_problem_away_from_kinks(Model& model, sae::Batch<double>& X, std::uint64_t seed, double margin) {
  sae::Rng rng(seed);
  auto& p = model.params();
  for (int attempt = 0; attempt < 1000; ++attempt) {
    sae::init_linear_default(p, rng);
    for (sae::Index f = 0; f < p.dict_size(); ++f) {
      p.r_mag(f) = rng.uniform(-0.5, 0.5);
      p.b_mag(f) = rng.uniform(-0.4, 0.4);
    }
    for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal();
    const GatedForward fw = gated_forward(model, X);
    const auto open = fw.gate.array() > 0, positive = fw.magnitude.array() > 0;
    if (fw.gate.cwiseAbs().minCoeff() > margin && fw.magnitude.cwiseAbs().minCoeff() > margin &&
        (open && positive).any() && (!open && positive).any() && (open && !positive).any())
      return;
  }
  FAIL("could not draw a problem away from the gate and magnitude kinks");
}

template <typename A, typename B>
double max_abs_difference(const A& a, const B& b) {
  return (a.template cast<double>() - b.template cast<double>()).cwiseAbs().maxCoeff();
}

}  // namespace

TEST_CASE("Gated encode: the gate decides whether, the magnitude path how much", "[gated]") {
  const auto model = four_latent_model();
  const sae::Batch<double, 1> X = sae::Batch<double, 1>::Ones(1, 1);
  const auto codes = model.encode(X);
  CHECK(codes(0, 0) == 1.25);  // gate open, magnitude 1.25
  CHECK(codes(0, 1) == 0.0);   // gate closed: 0 even though the magnitude is 4
  CHECK(codes(0, 2) == 0.0);   // gate open, magnitude −1: ReLU
  CHECK(codes(0, 3) == 0.0);   // π_gate == 0: closed (the Heaviside is strict)

  sae::LossWorkspace<double> ws;
  sae::GatedObjective<double>{0.1}.evaluate(model, X, ws);
  CHECK(ws.codes == codes);
}

TEST_CASE("Gated encode: with r_mag = 0 and b_mag = b_enc the codes are the ReLU SAE's", "[gated]") {
  // Then π_mag = π_gate, and 1[π > 0] ⊙ ReLU(π) = ReLU(π).
  const bool centre = GENERATE(false, true);
  CAPTURE(centre);
  sae::SparseAutoEncoder<double> relu(7, 19, sae::Init::LinearDefault, 31);
  relu.apply_b_dec_to_input() = centre;
  sae::Parameters<double> p = relu.params();
  p.r_mag = Eigen::VectorXd::Zero(19);
  p.b_mag = p.b_enc;
  const GatedModel gated(p, sae::Gated{}, centre);

  sae::Rng rng(32);
  sae::Batch<double> X(11, 7);
  for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal();
  const sae::Batch<double> expected = relu.encode(X);
  REQUIRE((expected.array() > 0).any());
  REQUIRE((expected.array() == 0).any());
  CHECK(gated.encode(X) == expected);

  sae::LossWorkspace<double> ws;
  auto grads = sae::zeros_like(gated.params());
  sae::loss_and_gradient(gated, X, sae::GatedObjective<double>{0.1}, grads, ws);
  CHECK(ws.codes == expected);
}

TEMPLATE_TEST_CASE("Gated objective: its codes and loss are model.encode and model.decode's", "[gated]",
                   (sae::SparseAutoEncoder<double, Dynamic, Dynamic, sae::Gated>),
                   (sae::SparseAutoEncoder<double, 6, 10, sae::Gated>),
                   (sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::Gated>)) {
  using Scalar = typename TestType::Scalar;
  TestType model(6, 10, sae::Init::LinearDefault, 5);
  model.apply_b_dec_to_input() = GENERATE(false, true);
  const auto weighting = GENERATE(sae::L1Weighting::Uniform, sae::L1Weighting::DecoderNorm);
  sae::Rng rng(6);
  for (sae::Index f = 0; f < 10; ++f) {
    model.params().r_mag(f) = static_cast<Scalar>(rng.uniform(-0.5, 0.5));
    model.params().b_mag(f) = static_cast<Scalar>(rng.uniform(-0.3, 0.3));
  }
  sae::Batch<Scalar> X(9, 6);
  for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = static_cast<Scalar>(rng.normal());

  const sae::GatedObjective<Scalar> objective{Scalar(0.2), weighting};
  sae::LossWorkspace<Scalar> ws;
  auto grads = sae::zeros_like(model.params());
  const auto r = objective.evaluate_with_gradient(model, X, grads, ws);

  // ws.codes holds the codes after the gradient pass too (it is scratch in between).
  const auto codes = model.encode(X);
  CHECK(ws.codes == codes);
  const auto recon = model.decode(codes);
  CHECK(r.l2 == Approx((recon - X).template cast<double>().squaredNorm() / 9.0).epsilon(1e-5));
  CHECK(r.l0 == static_cast<double>((codes.array() > Scalar(0)).count()) / 9.0);

  // L_sparse and L_aux, in double from the model's parameters.
  const Eigen::MatrixXd Xd = X.template cast<double>();
  GatedModel in_double(6, 10);
  sae_test::cast_parameters(model.params(), in_double.params());
  in_double.apply_b_dec_to_input() = model.apply_b_dec_to_input();
  const GatedForward fw = gated_forward(in_double, Xd);
  const auto& pd = in_double.params();
  Eigen::VectorXd weights = Eigen::VectorXd::Ones(10);
  if (weighting == sae::L1Weighting::DecoderNorm) weights = pd.W_dec.rowwise().norm();
  Eigen::MatrixXd aux = fw.gate_codes * pd.W_dec;
  aux.rowwise() += pd.b_dec.transpose();
  CHECK(r.l1 == Approx((fw.gate_codes * weights).sum() / 9.0).epsilon(1e-5));
  CHECK(r.auxiliary == Approx((aux - Xd).squaredNorm() / 9.0).epsilon(1e-5));
  CHECK(r.loss == Approx(r.l2 + 0.2 * r.l1 + r.auxiliary).epsilon(1e-6));

  // The value-only path reports the same numbers.
  const auto value_only = sae::loss(model, X, objective);
  CHECK(value_only.loss == r.loss);
  CHECK(value_only.l0 == r.l0);
  CHECK(value_only.l1 == r.l1);
  CHECK(value_only.auxiliary == r.auxiliary);
}

TEMPLATE_TEST_CASE("Gated objective: gradients match central finite differences, L_aux's decoder held fixed",
                   "[gated][gradcheck]", (sae::SparseAutoEncoder<double, Dynamic, Dynamic, sae::Gated>),
                   (sae::SparseAutoEncoder<double, 5, 12, sae::Gated>),
                   (sae::SparseAutoEncoder<double, Dynamic, 12, sae::Gated>)) {
  const sae::Index D = 5, F = 12, B = 7;
  TestType model(D, F);
  model.apply_b_dec_to_input() = GENERATE(false, true);
  const auto weighting = GENERATE(sae::L1Weighting::Uniform, sae::L1Weighting::DecoderNorm);
  CAPTURE(model.apply_b_dec_to_input(), weighting == sae::L1Weighting::DecoderNorm);
  sae::Batch<double> X(B, D);
  make_problem_away_from_kinks(model, X, 2026, 1e-3);

  const double lambda = 0.05;
  const sae::GatedObjective<double> objective{lambda, weighting};
  auto grads = sae::zeros_like(model.params());
  const auto r = sae::loss_and_gradient(model, X, objective, grads);

  // The test's own loss agrees with the objective's where the copies equal the decoder.
  const Eigen::MatrixXd W_dec_held = model.params().W_dec;
  const Eigen::VectorXd b_dec_held = model.params().b_dec;
  REQUIRE(reference_loss(model, X, lambda, weighting, W_dec_held, b_dec_held) == Approx(r.loss).epsilon(1e-13));

  // What the detached copies would have contributed: fgᵀ G_aux to W_dec, Σ_b G_aux to b_dec.
  const GatedForward fw = gated_forward(model, X);
  Eigen::MatrixXd aux_gradient = fw.gate_codes * W_dec_held;
  aux_gradient.rowwise() += b_dec_held.transpose();
  aux_gradient = (2.0 / B) * (aux_gradient - X);
  const Eigen::MatrixXd detached_W_dec = fw.gate_codes.transpose() * aux_gradient;
  const Eigen::VectorXd detached_b_dec = aux_gradient.colwise().sum().transpose();

  const double h = 1e-6;
  std::vector<Eigen::MatrixXd> held, full;
  model.params().for_each([&](const char*, auto& tensor) {
    held.push_back(sae_test::central_differences(
        tensor, [&] { return reference_loss(model, X, lambda, weighting, W_dec_held, b_dec_held); }, h));
    full.push_back(sae_test::central_differences(tensor, [&] { return sae::loss(model, X, objective).loss; }, h));
  });

  std::size_t i = 0;
  grads.for_each([&](const char* name, const auto& tensor) {
    CAPTURE(name);
    const Eigen::MatrixXd analytic = tensor;
    const Eigen::MatrixXd& with_copies_held = held[i];
    const Eigen::MatrixXd& of_the_loss = full[i];
    ++i;
    REQUIRE(analytic.size() == with_copies_held.size());
    if (analytic.size() == 0) return;  // threshold: not a Gated model's
    const double scale = std::max(1.0, analytic.cwiseAbs().maxCoeff());
    CHECK(max_abs_difference(analytic, with_copies_held) <= 1e-7 * scale);
    CHECK(analytic.cwiseAbs().maxCoeff() > 0.0);  // the parameter really receives a gradient

    const std::string n = name;
    if (n == "W_dec") {
      // The loss's own derivative is the objective's plus L_aux's path through the copies.
      CHECK(max_abs_difference(analytic + detached_W_dec, of_the_loss) <= 1e-7 * scale);
      CHECK(detached_W_dec.cwiseAbs().maxCoeff() > 1e-3);  // so the test above can tell them apart
    } else if (n == "b_dec") {
      CHECK(max_abs_difference(analytic + detached_b_dec, of_the_loss) <= 1e-7 * scale);
      CHECK(detached_b_dec.cwiseAbs().maxCoeff() > 1e-3);
    } else {
      CHECK(max_abs_difference(analytic, of_the_loss) <= 1e-7 * scale);  // exact: nothing detached
    }
  });
}

TEST_CASE("Gated objective: a hand-worked loss and gradient", "[gated]") {
  // four_latent_model() at x = 1, λ = 0.1:
  //   f = [1.25, 0, 0, 0] → x̂ = 2.5 → e = 1.5 → l2 = 2.25
  //   ReLU(π_gate) = [1.5, 0, 1.5, 0] → L_sparse = 3; x̂_aux = 1.5·2 + 1.5·(−1) = 1.5 → L_aux = 0.25
  const auto model = four_latent_model();
  const sae::Batch<double, 1> X = sae::Batch<double, 1>::Ones(1, 1);
  auto grads = sae::zeros_like(model.params());
  const auto r = sae::loss_and_gradient(model, X, sae::GatedObjective<double>{0.1}, grads);
  CHECK(r.l2 == 2.25);
  CHECK(r.l1 == 3.0);
  CHECK(r.auxiliary == 0.25);
  CHECK(r.l0 == 1.0);
  CHECK(r.loss == Approx(2.8).epsilon(1e-15));

  // G_x̂ = 2e = 3, G_aux = 2·0.5 = 1. The decoder learns from x̂ only (L_aux's copy is
  // detached): ∇W_dec = f ⊗ 3 = [3.75, 0, 0, 0], although latent 2 reaches x̂_aux; ∇b_dec = 3, not 4.
  CHECK(grads.W_dec(0, 0) == 3.75);
  CHECK(grads.W_dec(1, 0) == 0.0);
  CHECK(grads.W_dec(2, 0) == 0.0);
  CHECK(grads.W_dec(3, 0) == 0.0);
  CHECK(grads.b_dec(0) == 3.0);
  // G_πmag = (G_x̂ W_decᵀ) where f > 0 = [6, 0, 0, 0]; ∇r_mag = G_πmag ⊙ H ⊙ exp(0); ∇b_mag = G_πmag.
  CHECK(grads.r_mag(0) == 6.0);
  CHECK(grads.b_mag(0) == 6.0);
  CHECK(grads.r_mag.tail(3).cwiseAbs().maxCoeff() == 0.0);  // latent 1 has magnitude 4, but its gate is shut
  CHECK(grads.b_mag.tail(3).cwiseAbs().maxCoeff() == 0.0);
  // G_πgate = (λ/B + G_aux W_decᵀ) where π_gate > 0 = [0.1 + 2, 0, 0.1 − 1, 0].
  CHECK(grads.b_enc(0) == Approx(2.1).epsilon(1e-15));
  CHECK(grads.b_enc(1) == 0.0);
  CHECK(grads.b_enc(2) == Approx(-0.9).epsilon(1e-15));
  CHECK(grads.b_enc(3) == 0.0);  // π_gate == 0: closed, no gradient
  // G_H = G_πgate + G_πmag ⊙ exp(r_mag) = [8.1, 0, −0.9, 0]; ∇W_enc = x ⊗ G_H.
  CHECK(grads.W_enc(0, 0) == Approx(8.1).epsilon(1e-15));
  CHECK(grads.W_enc(0, 1) == 0.0);
  CHECK(grads.W_enc(0, 2) == Approx(-0.9).epsilon(1e-15));
  CHECK(grads.W_enc(0, 3) == 0.0);
}

TEST_CASE("Gated objective: decoder-norm weighting, hand-worked", "[gated]") {
  // As above with L_sparse = Σ ReLU(π_gate)_f ‖W_dec,f‖ = 1.5·2 + 1.5·1 = 4.5:
  // the gate gradient's penalty part becomes (λ/B) n_f, and each decoder row gains
  // (λ/B) (Σ_b ReLU(π_gate)_bf) W_dec,f / n_f = 0.1 · 1.5 · sign(W_dec,f) for latents 0 and 2.
  const auto model = four_latent_model();
  const sae::Batch<double, 1> X = sae::Batch<double, 1>::Ones(1, 1);
  auto grads = sae::zeros_like(model.params());
  const auto r = sae::loss_and_gradient(model, X, sae::GatedObjective<double>{0.1, sae::L1Weighting::DecoderNorm},
                                        grads);
  CHECK(r.l1 == 4.5);
  CHECK(r.loss == Approx(2.25 + 0.45 + 0.25).epsilon(1e-15));
  CHECK(grads.W_dec(0, 0) == Approx(3.75 + 0.15).epsilon(1e-15));
  CHECK(grads.W_dec(1, 0) == 0.0);  // its gate never opened: no penalty
  CHECK(grads.W_dec(2, 0) == Approx(-0.15).epsilon(1e-15));
  CHECK(grads.b_enc(0) == Approx(0.2 + 2).epsilon(1e-15));
  CHECK(grads.b_enc(2) == Approx(0.1 - 1).epsilon(1e-15));
}

TEST_CASE("Gated objective: a reused workspace gives the same results across batch sizes", "[gated]") {
  sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::Gated> model(8, 32, sae::Init::Tied, 1);
  model.apply_b_dec_to_input() = true;
  model.params().b_mag.setConstant(0.01f);
  model.params().r_mag.setConstant(0.2f);
  const sae::GatedObjective<float> objective{1e-2f, sae::L1Weighting::DecoderNorm};
  sae_test::check_reused_workspace(model, objective);
  // The workspace's codes are the model's codes.
  const auto X = sae_test::normal_batch<float>(5, 8, 9);
  sae::LossWorkspace<float> ws;
  auto grads = sae::zeros_like(model.params());
  sae::loss_and_gradient(model, X, objective, grads, ws);
  CHECK(ws.codes == model.encode(X));
}

TEST_CASE("Gated objective: bad models, batches and settings are rejected", "[gated][errors]") {
  GatedModel model(4, 8);
  auto grads = sae::zeros_like(model.params());
  const Eigen::MatrixXd X = Eigen::MatrixXd::Ones(3, 4);

  SECTION("a model without r_mag or b_mag") {
    model.params().r_mag.resize(0);
    SAE_CHECK_THROWS(sae::loss_and_gradient(model, X, sae::GatedObjective<double>{0.1}, grads),
                     std::invalid_argument, Catch::Matchers::Contains("r_mag"));
    model.params().r_mag.setZero(8);
    model.params().b_mag.resize(0);
    SAE_CHECK_THROWS(sae::loss(model, X, sae::GatedObjective<double>{0.1}), std::invalid_argument,
                     Catch::Matchers::Contains("b_mag"));
  }
  SECTION("a batch of the wrong width, or empty") {
    SAE_CHECK_THROWS(sae::loss_and_gradient(model, Eigen::MatrixXd::Ones(3, 5), sae::GatedObjective<double>{0.1},
                                            grads),
                     std::invalid_argument,
                     Catch::Matchers::Contains("5 columns") && Catch::Matchers::Contains("expected 4"));
    SAE_CHECK_THROWS(sae::loss(model, Eigen::MatrixXd(0, 4), sae::GatedObjective<double>{0.1}),
                     std::invalid_argument, Catch::Matchers::Contains("no rows"));
  }
  SECTION("a negative coefficient") {
    SAE_CHECK_THROWS(sae::loss(model, X, sae::GatedObjective<double>{-0.1}), std::invalid_argument,
                     Catch::Matchers::Contains("l1_coefficient"));
  }
  SECTION("gradients of the wrong size are resized, r_mag and b_mag included") {
    sae::Parameters<double> wrong(2, 3);
    sae::loss_and_gradient(model, X, sae::GatedObjective<double>{0.1}, wrong);
    CHECK(wrong.same_shapes(model.params()));
    CHECK(wrong.r_mag.size() == 8);
    CHECK(wrong.b_mag.size() == 8);
  }
}
