// tests/test_any_activation.cpp: a model whose architecture is chosen at run time.
#include <catch2/catch.hpp>
#include <sae/sae.hpp>

#include "support.hpp"

using sae::Dynamic;
using AnyModel = sae::SparseAutoEncoder<double, Dynamic, Dynamic, sae::AnyActivation>;

namespace {

template <typename Policy>
void check_same_codes(Policy policy, bool centred) {
  CAPTURE(Policy::name, centred);
  sae::SparseAutoEncoder<double, Dynamic, Dynamic, Policy> fixed(6, 30, policy, sae::Init::LinearDefault, 4);
  fixed.apply_b_dec_to_input() = centred;
  sae::Rng rng(5);  // give the architecture's own vectors values other than their defaults
  auto& p = fixed.params();
  for (sae::Index f = 0; f < p.threshold.size(); ++f) p.threshold(f) = 0.2 * rng.uniform(0, 1);
  for (sae::Index f = 0; f < p.r_mag.size(); ++f) p.r_mag(f) = 0.3 * rng.normal();
  for (sae::Index f = 0; f < p.b_mag.size(); ++f) p.b_mag(f) = 0.1 * rng.normal();
  const auto any = sae::with_any_activation(fixed);
  CHECK(std::string(any.activation().architecture()) == Policy::name);
  CHECK(any.apply_b_dec_to_input() == centred);
  const auto X = sae_test::normal_batch(7, 6, 6);
  CHECK(any.encode(X) == fixed.encode(X));
  CHECK(any.decode(any.encode(X)) == fixed.decode(fixed.encode(X)));
  const auto back = sae::with_activation<Policy>(any);
  CHECK(back.encode(X) == fixed.encode(X));
}

}  // namespace

TEST_CASE("AnyActivation encodes as the architecture it holds", "[architecture]") {
  const bool centred = GENERATE(false, true);
  check_same_codes(sae::ReLU{}, centred);
  check_same_codes(sae::TopK{3}, centred);
  sae::BatchTopK batch_topk{3};
  batch_topk.threshold = 0.1;
  check_same_codes(batch_topk, centred);
  check_same_codes(sae::JumpReLU{}, centred);
  check_same_codes(sae::Gated{}, centred);
}

TEST_CASE("AnyActivation refuses the wrong conversion and missing parameters", "[architecture][errors]") {
  const AnyModel relu(sae::Parameters<double>(4, 8), sae::ReLU{});
  SAE_CHECK_THROWS(sae::with_activation<sae::TopK>(relu), std::invalid_argument,
                   Catch::Contains("is a 'relu' SAE, not 'topk'"));
  // A JumpReLU model built from parameters without thresholds gets the initial ones.
  const AnyModel jumprelu(sae::Parameters<double>(4, 8), sae::JumpReLU{0.25});
  CHECK(jumprelu.params().threshold.size() == 8);
  CHECK(jumprelu.params().threshold.minCoeff() == 0.25);
  // Thresholds of the wrong length are refused with the reason.
  sae::Parameters<double> bad(4, 8);
  bad.threshold.setZero(5);
  SAE_CHECK_THROWS(AnyModel(bad, sae::JumpReLU{}), std::invalid_argument,
                   Catch::Contains("threshold has 5 entries, expected dict_size 8"));
}
