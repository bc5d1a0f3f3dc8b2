// Tests for sae/train/gradient_clipping.hpp, with norms worked by hand.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>

#include <sae/train/gradient_clipping.hpp>

TEMPLATE_TEST_CASE("gradient_norm is one L2 norm over all four tensors", "[gradient_clipping]", float, double) {
  // D = 2, F = 3: W_enc 6 ones (6), b_enc 3 ones (3), W_dec 6 twos (24), b_dec 2 twos (8): sqrt(41).
  sae::Parameters<TestType> g(2, 3);
  g.W_enc.setOnes();
  g.b_enc.setOnes();
  g.W_dec.setConstant(2);
  g.b_dec.setConstant(2);
  CHECK(sae::gradient_norm(g) == Approx(std::sqrt(41.0)).epsilon(1e-12));
  g.set_zero();
  CHECK(sae::gradient_norm(g) == 0.0);
}

TEMPLATE_TEST_CASE("clip_gradient_norm scales by max_norm / (norm + 1e-6) above the limit", "[gradient_clipping]",
                   (sae::Parameters<double>), (sae::Parameters<float>), (sae::Parameters<double, 2, 3>),
                   (sae::Parameters<float, 2, 3>)) {
  using Scalar = typename TestType::Scalar;
  const double tol = std::is_same<Scalar, double>::value ? 1e-14 : 1e-6;
  // A 3-4-5 gradient split across two tensors: norm 5.
  TestType g(2, 3);
  g.W_enc(1, 2) = Scalar(3);
  g.b_dec(0) = Scalar(-4);

  TestType clipped = g;
  const double norm = sae::clip_gradient_norm(clipped, 1.0);
  CHECK(norm == Approx(5.0).epsilon(tol));  // the norm before clipping
  const double c = 1.0 / (5.0 + 1e-6);      // torch's coefficient
  CHECK(clipped.W_enc(1, 2) == Approx(3.0 * c).epsilon(tol));
  CHECK(clipped.b_dec(0) == Approx(-4.0 * c).epsilon(tol));
  CHECK(clipped.W_dec.isZero(0));
  CHECK(sae::gradient_norm(clipped) == Approx(5.0 * c).epsilon(tol));  // just under 1

  // Under the limit: unchanged, bit for bit.
  TestType untouched = g;
  CHECK(sae::clip_gradient_norm(untouched, 10.0) == Approx(5.0).epsilon(tol));
  CHECK(untouched.W_enc == g.W_enc);
  CHECK(untouched.b_dec == g.b_dec);

  // At the limit: torch clips already (5 / (5 + 1e-6) < 1), by a hair.
  TestType at_limit = g;
  sae::clip_gradient_norm(at_limit, 5.0);
  CHECK(at_limit.W_enc(1, 2) == Approx(3.0 * 5.0 / (5.0 + 1e-6)).epsilon(tol));

  // +infinity never clips.
  TestType unlimited = g;
  sae::clip_gradient_norm(unlimited, std::numeric_limits<double>::infinity());
  CHECK(unlimited.W_enc == g.W_enc);
}

TEST_CASE("clip_gradient_norm: a zero gradient stays zero, the direction is kept", "[gradient_clipping]") {
  sae::Parameters<double> zero(3, 4);
  CHECK(sae::clip_gradient_norm(zero, 1.0) == 0.0);
  CHECK(zero.W_enc.isZero(0));

  sae::Parameters<double> g(3, 4);
  g.W_enc.setConstant(2.0);    // 12 * 4 = 48
  g.b_enc.setConstant(-1.0);   // 4 * 1 = 4
  g.W_dec.setConstant(0.5);    // 12 * 0.25 = 3
  g.b_dec.setConstant(3.0);    // 3 * 9 = 27; total 82
  const double norm = sae::clip_gradient_norm(g, 0.5);
  CHECK(norm == Approx(std::sqrt(82.0)).epsilon(1e-14));
  const double c = 0.5 / (std::sqrt(82.0) + 1e-6);
  CHECK((g.W_enc.array() == 2.0 * c).all());
  CHECK((g.b_enc.array() == -1.0 * c).all());
  CHECK((g.W_dec.array() == 0.5 * c).all());
  CHECK((g.b_dec.array() == 3.0 * c).all());
}

TEST_CASE("clip_gradient_norm reports a non-finite norm and leaves the gradients alone", "[gradient_clipping]") {
  sae::Parameters<float> g(2, 2);
  g.b_enc(1) = 1.0f;
  g.W_dec(0, 0) = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(sae::clip_gradient_norm(g, 1.0)));
  CHECK(g.b_enc(1) == 1.0f);

  g.W_dec(0, 0) = std::numeric_limits<float>::infinity();
  CHECK(std::isinf(sae::clip_gradient_norm(g, 1.0)));
  CHECK(g.b_enc(1) == 1.0f);
}

TEST_CASE("clip_gradient_norm rejects a max_norm that is not positive", "[gradient_clipping][errors]") {
  sae::Parameters<double> g(2, 2);
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(sae::clip_gradient_norm(g, 0.0), Contains("max_norm must be positive"));
  CHECK_THROWS_AS(sae::clip_gradient_norm(g, -1.0), std::invalid_argument);
  CHECK_THROWS_AS(sae::clip_gradient_norm(g, std::nan("")), std::invalid_argument);
}
