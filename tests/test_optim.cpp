// SGD and Adam: against torch.optim on the seed fixture, and hand-worked steps.
#include <catch2/catch.hpp>

#include "support.hpp"

using sae::Dynamic;
using sae_test::fixture_tolerance;
using sae_test::relative_error;
using sae_test::seed_fixture;
using sae_test::seed_parameters;

namespace {

// torch's loss before each of the 10 Adam steps (tests/data/seed-torch/reference.json).
const double kAdamLossTrace[10] = {74.46275988090352, 73.16580464799951, 71.8990258801438, 70.66174631857521,
                                   69.45334784557407, 68.27421425092095, 67.12510805655185, 65.9998746021502,
                                   64.89920785459822, 63.82415542224346};

template <typename Params>
void check_parameters_match(const Params& p, const std::string& prefix, double tol) {
  CAPTURE(prefix);
  CHECK(relative_error(p.W_enc, seed_fixture<double>(prefix + "_W_enc")) <= tol);
  CHECK(relative_error(p.b_enc, seed_fixture<double>(prefix + "_b_enc")) <= tol);
  CHECK(relative_error(p.W_dec, seed_fixture<double>(prefix + "_W_dec")) <= tol);
  CHECK(relative_error(p.b_dec, seed_fixture<double>(prefix + "_b_dec")) <= tol);
}

}  // namespace

TEMPLATE_TEST_CASE("one SGD step matches torch.optim.SGD", "[optim][fixture]", (sae::SparseAutoEncoder<double>),
                   (sae::SparseAutoEncoder<double, 16, 64>), (sae::SparseAutoEncoder<float>),
                   (sae::SparseAutoEncoder<float, 16, 64>)) {
  using Scalar = typename TestType::Scalar;
  TestType model(seed_parameters<Scalar, TestType::InputDim, TestType::DictSize>("init"));
  const sae::Batch<Scalar> X = seed_fixture<Scalar>("x");
  auto grads = sae::zeros_like(model.params());
  sae::loss_and_gradient(model, X, sae::L1Objective<Scalar>{Scalar(1e-3), sae::L1Reduction::SumOverBatch}, grads);
  sae::SGD<Scalar> sgd{Scalar(1e-3)};
  sgd.step(model.params(), grads);
  check_parameters_match(model.params(), "sgd_1", fixture_tolerance<Scalar>());
}

TEMPLATE_TEST_CASE("1 and 10 Adam steps match torch.optim.Adam", "[optim][fixture]",
                   (sae::SparseAutoEncoder<double>), (sae::SparseAutoEncoder<double, 16, 64>),
                   (sae::SparseAutoEncoder<float>), (sae::SparseAutoEncoder<float, 16, 64>)) {
  using Scalar = typename TestType::Scalar;
  const double tol = fixture_tolerance<Scalar>();
  TestType model(seed_parameters<Scalar, TestType::InputDim, TestType::DictSize>("init"));
  const sae::Batch<Scalar> X = seed_fixture<Scalar>("x");
  const sae::L1Objective<Scalar> objective{Scalar(1e-3), sae::L1Reduction::SumOverBatch};
  sae::Adam<Scalar> adam{Scalar(1e-3), Scalar(0.9), Scalar(0.999), Scalar(1e-8)};
  CHECK(adam.first_moments().empty());  // sized on the first step, not before

  auto grads = sae::zeros_like(model.params());
  sae::LossWorkspace<Scalar> ws;
  for (int step = 1; step <= 10; ++step) {
    const sae::LossReport r = sae::loss_and_gradient(model, X, objective, grads, ws);
    CHECK(r.loss == Approx(kAdamLossTrace[step - 1]).epsilon(tol));
    adam.step(model.params(), grads);
    CHECK(adam.steps_taken() == step);
    if (step == 1) {
      REQUIRE(adam.first_moments().size() == 7);  // the four tensors and three empty architecture vectors
      CHECK(adam.first_moments()[0].size() == 16 * 64);
      check_parameters_match(model.params(), "adam_1", tol);
    }
  }
  // Ten float steps accumulate rounding of order 1e-6 on updates of 1e-3.
  check_parameters_match(model.params(), "adam_10", tol);
}

TEST_CASE("a hand-worked Adam step: the first update is lr * g / (|g| + eps)", "[optim]") {
  // After one step m = (1-β1) g, v = (1-β2) g², and the bias corrections cancel
  // both factors, so θ moves by lr * g / (|g| + ε) whatever β1 and β2 are.
  sae::Parameters<double, 1, 2> p, g;
  p.W_enc << 1.0, -2.0;
  g.W_enc << 0.5, -1e-9;  // the second is small enough that ε matters
  const double lr = 0.1, eps = 1e-8;
  sae::Adam<double> adam{lr, 0.8, 0.99, eps};
  adam.step(p, g);
  CHECK(p.W_enc(0, 0) == Approx(1.0 - lr * 0.5 / (0.5 + eps)).epsilon(1e-14));
  CHECK(p.W_enc(0, 1) == Approx(-2.0 + lr * 1e-9 / (1e-9 + eps)).epsilon(1e-14));
  CHECK(p.b_enc.isZero());  // a zero gradient leaves a parameter alone

  // The second step, written out from the update rule with the same gradient.
  adam.step(p, g);
  const double m = 0.8 * 0.2 * 0.5 + 0.2 * 0.5, v = 0.99 * 0.01 * 0.25 + 0.01 * 0.25;
  const double expected = 1.0 - lr * 0.5 / (0.5 + eps) - (lr / (1 - 0.64)) * m / (std::sqrt(v) / std::sqrt(1 - 0.9801) + eps);
  CHECK(p.W_enc(0, 0) == Approx(expected).epsilon(1e-14));
}

TEST_CASE("a hand-worked SGD step", "[optim]") {
  sae::Parameters<float> p(2, 3), g(2, 3);
  p.W_dec.setConstant(1.0f);
  g.W_dec << 1, 2, 3, 4, 5, 6;
  g.b_dec << -10, 10;
  sae::SGD<float> sgd{0.5f};
  sgd.step(p, g);
  CHECK(p.W_dec(2, 1) == 1.0f - 0.5f * 6.0f);
  CHECK(p.W_dec(0, 0) == 0.5f);
  CHECK(p.b_dec(0) == 5.0f);
  CHECK(p.b_dec(1) == -5.0f);
  sgd.learning_rate() = 0.0f;
  sgd.step(p, g);
  CHECK(p.b_dec(1) == -5.0f);
}

TEST_CASE("Adam keeps its state per model and says so when the model changes", "[optim][errors]") {
  sae::Parameters<double> small(3, 4), small_grads(3, 4), big(3, 5), big_grads(3, 5);
  small_grads.W_enc.setOnes();
  sae::Adam<double> adam;
  adam.step(small, small_grads);
  SAE_CHECK_THROWS(adam.step(big, big_grads), std::invalid_argument,
                       Catch::Matchers::Contains("W_enc") && Catch::Matchers::Contains("reset()"));
  adam.reset();
  CHECK(adam.steps_taken() == 0);
  CHECK_NOTHROW(adam.step(big, big_grads));
  CHECK(adam.first_moments()[0].size() == 15);
}

TEST_CASE("optimizers reject gradients of the wrong shape and bad hyper-parameters", "[optim][errors]") {
  sae::Parameters<double> p(3, 4), wrong(3, 6);
  sae::SGD<double> sgd{0.1};
  SAE_CHECK_THROWS(sgd.step(p, wrong), std::invalid_argument,
                       Catch::Matchers::Contains("W_enc") && Catch::Matchers::Contains("3 x 6") &&
                           Catch::Matchers::Contains("3 x 4"));
  CHECK_THROWS_AS(sae::SGD<double>{-1.0}, std::invalid_argument);
  CHECK_THROWS_WITH((sae::Adam<double>{1e-3, 1.0}), Catch::Matchers::Contains("beta1"));
  CHECK_THROWS_WITH((sae::Adam<double>{1e-3, 0.9, -0.1}), Catch::Matchers::Contains("beta2"));
  CHECK_THROWS_WITH((sae::Adam<double>{NAN}), Catch::Matchers::Contains("learning rate"));
  sae::Adam<double> adam;
  adam.epsilon() = -1;
  CHECK_THROWS_WITH(adam.step(p, p), Catch::Matchers::Contains("epsilon"));
}
