// Tests for sae/train/dead_latents.hpp: the tokens-since-fired tracker, the
// weighted draw, and resampling (Towards Monosemanticity) with its Adam reset.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include <sae/core/random.hpp>
#include <sae/core/sparse_autoencoder.hpp>
#include <sae/loss/l1_objective.hpp>
#include <sae/optim/adam.hpp>
#include <sae/train/dead_latents.hpp>

#include "support.hpp"

using sae::Index;
using sae_test::fill_normal;

namespace {

// Fills every Adam moment with distinct positive values, so that "zeroed" and
// "untouched" are both visible.
template <typename Scalar>
void fill_moments(sae::Adam<Scalar>& adam) {
  Scalar value = Scalar(1);
  for (auto* moments : {&adam.first_moments(), &adam.second_moments()})
    for (auto& m : *moments)
      for (Index i = 0; i < m.size(); ++i) m[i] = (value += Scalar(1));
}

}  // namespace

// ---------------------------------------------------------------------------
// DeadLatentTracker

TEST_CASE("DeadLatentTracker counts tokens since each latent last fired", "[dead_latents]") {
  sae::DeadLatentTracker tracker(4);
  CHECK(tracker.dict_size() == 4);
  CHECK(tracker.tokens_since_fired() == std::vector<std::uint64_t>{0, 0, 0, 0});
  CHECK(tracker.dead_fraction(1) == 0.0);  // nothing is dead before it had a window

  // Batch of 3 tokens: latent 0 fires on token 1, latent 2 (negative code) on token 2.
  sae::Batch<float> codes = sae::Batch<float>::Zero(3, 4);
  codes(1, 0) = 0.5f;
  codes(2, 2) = -1.0f;  // any nonzero code counts as firing
  tracker.update(codes);
  CHECK(tracker.tokens_since_fired() == std::vector<std::uint64_t>{0, 3, 0, 3});

  // Batch of 2 tokens: only latent 1 fires.
  sae::Batch<float> more = sae::Batch<float>::Zero(2, 4);
  more(0, 1) = 2.0f;
  tracker.update(more);
  CHECK(tracker.tokens_since_fired() == std::vector<std::uint64_t>{2, 0, 2, 5});

  // Window of 2 tokens: latents 0, 2 and 3 have not fired in the last 2 tokens.
  CHECK(tracker.dead_mask(2) == std::vector<bool>{true, false, true, true});
  CHECK(tracker.dead_latents(2) == std::vector<Index>{0, 2, 3});
  CHECK(tracker.dead_fraction(2) == 0.75);
  // Window of 3 tokens: only latent 3.
  CHECK(tracker.dead_latents(3) == std::vector<Index>{3});
  CHECK(tracker.dead_fraction(3) == 0.25);
  CHECK(tracker.dead_fraction(6) == 0.0);

  tracker.revive({3, 0});
  CHECK(tracker.tokens_since_fired() == std::vector<std::uint64_t>{0, 0, 2, 0});
}

TEST_CASE("DeadLatentTracker takes codes in either storage order and as expressions", "[dead_latents]") {
  Eigen::MatrixXd col_major = Eigen::MatrixXd::Zero(5, 3);  // column-major
  col_major(4, 1) = 1.0;
  sae::DeadLatentTracker a(3), b(3), c(3);
  a.update(col_major);
  b.update(sae::Batch<double>(col_major));
  c.update(col_major * 2.0);
  const std::vector<std::uint64_t> expected{5, 0, 5};
  CHECK(a.tokens_since_fired() == expected);
  CHECK(b.tokens_since_fired() == expected);
  CHECK(c.tokens_since_fired() == expected);
}

TEST_CASE("DeadLatentTracker state round-trips and saturates", "[dead_latents]") {
  sae::DeadLatentTracker tracker(3);
  constexpr std::uint64_t most = std::numeric_limits<std::uint64_t>::max();
  tracker.set_tokens_since_fired({most - 1, 7, 0});
  sae::Batch<double> codes = sae::Batch<double>::Zero(10, 3);
  tracker.update(codes);
  CHECK(tracker.tokens_since_fired() == std::vector<std::uint64_t>{most, 17, 10});

  sae::DeadLatentTracker restored;
  restored.set_tokens_since_fired(tracker.tokens_since_fired());
  CHECK(restored.dict_size() == 3);
  CHECK(restored.dead_latents(11) == std::vector<Index>{0, 1});
}

TEST_CASE("DeadLatentTracker rejects wrong widths, empty windows and bad indices", "[dead_latents][errors]") {
  using Catch::Matchers::Contains;
  sae::DeadLatentTracker tracker(4);
  sae::Batch<float> wrong = sae::Batch<float>::Zero(2, 5);
  CHECK_THROWS_WITH(tracker.update(wrong), Contains("5 columns") && Contains("expected 4"));
  CHECK_THROWS_WITH(tracker.dead_mask(0), Contains("window_tokens must be positive"));
  CHECK_THROWS_AS(tracker.dead_fraction(0), std::invalid_argument);
  CHECK_THROWS_WITH(tracker.revive({4}), Contains("latent 4"));
  CHECK_THROWS_AS(sae::DeadLatentTracker(-1), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// The weighted draw

TEST_CASE("weighted_sample_without_replacement draws in proportion to the weights", "[dead_latents]") {
  sae::Rng rng(31);
  // One draw from weights (1, 3, 0, 0): index 1 with probability 3/4, never 2 or 3.
  int ones = 0;
  const int trials = 4000;
  for (int t = 0; t < trials; ++t) {
    const auto drawn = sae::weighted_sample_without_replacement({1.0, 3.0, 0.0, 0.0}, 1, rng);
    REQUIRE(drawn.size() == 1);
    REQUIRE(drawn[0] <= 1);
    ones += drawn[0] == 1;
  }
  // Standard deviation sqrt(0.75 * 0.25 / 4000) ≈ 0.0068: allow 5 of them.
  CHECK(std::abs(ones / double(trials) - 0.75) < 0.035);

  // Two draws from weights (1, 1, 2): the first is index 2 with probability 1/2;
  // the second differs from the first. P(first = 0) = 1/4, then P(second = 2 | first = 0) = 2/3.
  int first_is_2 = 0, zero_then_two = 0;
  for (int t = 0; t < trials; ++t) {
    const auto drawn = sae::weighted_sample_without_replacement({1.0, 1.0, 2.0}, 2, rng);
    REQUIRE(drawn.size() == 2);
    REQUIRE(drawn[0] != drawn[1]);
    first_is_2 += drawn[0] == 2;
    zero_then_two += drawn[0] == 0 && drawn[1] == 2;
  }
  CHECK(std::abs(first_is_2 / double(trials) - 0.5) < 0.04);
  CHECK(std::abs(zero_then_two / double(trials) - 1.0 / 6) < 0.03);

  // More draws asked than positive weights: only those come back.
  const auto few = sae::weighted_sample_without_replacement({0.0, 5.0, 0.0, 1.0}, 3, rng);
  CHECK(few.size() == 2);
  CHECK(sae::weighted_sample_without_replacement({0.0, 0.0}, 1, rng).empty());

  CHECK_THROWS_WITH(sae::weighted_sample_without_replacement({1.0, -1.0}, 1, rng),
                    Catch::Matchers::Contains("weight 1"));
  CHECK_THROWS_AS(sae::weighted_sample_without_replacement({NAN}, 1, rng), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// Resampling

TEMPLATE_TEST_CASE("resampling revives dead latents and touches nothing else", "[dead_latents]",
                   (sae::SparseAutoEncoder<double>), (sae::SparseAutoEncoder<float>),
                   (sae::SparseAutoEncoder<double, 8, 12>), (sae::SparseAutoEncoder<float, 8, 12>)) {
  using Scalar = typename TestType::Scalar;
  const Index D = 8, F = 12, N = 256;
  sae::Rng rng(41);
  TestType model(D, F, sae::Init::Tied, 5);
  fill_normal(model.params().b_dec, rng, 0.1);
  sae::Batch<Scalar> X(N, D);
  fill_normal(X, rng);

  // Kill latents 2, 7 and 11: a bias no input can overcome.
  const std::vector<Index> dead{2, 7, 11};
  for (Index f : dead) model.params().b_enc(f) = Scalar(-1000);

  // A few Adam steps so the optimizer has state, then distinctive moments.
  sae::Adam<Scalar> adam{Scalar(1e-3)};
  auto grads = sae::zeros_like(model.params());
  const sae::L1Objective<Scalar> objective{Scalar(1e-3), sae::L1Reduction::MeanOverBatch};
  for (int s = 0; s < 3; ++s) {
    sae::loss_and_gradient(model, X, objective, grads);
    adam.step(model.params(), grads);
  }
  fill_moments(adam);

  sae::DeadLatentTracker tracker(F);
  tracker.update(model.encode(X));
  REQUIRE(tracker.dead_latents(N) == dead);

  const TestType before = model;
  const sae::Adam<Scalar> adam_before = adam;
  double live_norm = 0;
  for (Index f = 0; f < F; ++f)
    if (f != 2 && f != 7 && f != 11) live_norm += model.params().W_enc.col(f).template cast<double>().norm();
  live_norm /= F - 3;

  const sae::ResampleResult r = sae::resample_dead_latents(model, adam, dead, X, rng);
  REQUIRE(r.latents == dead);
  REQUIRE(r.rows.size() == 3);
  CHECK(r.rows[0] != r.rows[1]);
  CHECK(r.rows[1] != r.rows[2]);
  CHECK(r.rows[0] != r.rows[2]);
  CHECK(r.live_encoder_norm == Approx(live_norm).epsilon(1e-12));

  const double tol = std::is_same<Scalar, double>::value ? 1e-12 : 1e-5;
  const auto& p = model.params();
  const auto codes = model.encode(X);
  for (std::size_t j = 0; j < 3; ++j) {
    const Index f = r.latents[j], row = r.rows[j];
    CAPTURE(f, row);
    const Eigen::RowVectorXd x = X.row(row).template cast<double>();
    // Decoder row: the input, normalised. Encoder column: 0.2 × live norm × the same direction.
    CHECK((p.W_dec.row(f).template cast<double>() - x / x.norm()).norm() <= tol);
    CHECK((p.W_enc.col(f).transpose().template cast<double>() - 0.2 * live_norm * x / x.norm()).norm() <= tol);
    CHECK(p.b_enc(f) == Scalar(0));
    // It fires on the input it was set from: pre-activation 0.2 × live norm × |x| > 0.
    CHECK(codes(row, f) == Approx(0.2 * live_norm * x.norm()).epsilon(tol * 10));
  }
  // Alive again by the tracker, once it has seen codes from after the resampling.
  tracker.update(codes);
  CHECK(tracker.dead_latents(N).empty());

  // Live latents and b_dec untouched, bit for bit, and their Adam moments too.
  for (Index f = 0; f < F; ++f) {
    if (f == 2 || f == 7 || f == 11) continue;
    CAPTURE(f);
    CHECK(p.W_enc.col(f) == before.params().W_enc.col(f));
    CHECK(p.W_dec.row(f) == before.params().W_dec.row(f));
    CHECK(p.b_enc(f) == before.params().b_enc(f));
  }
  CHECK(p.b_dec == before.params().b_dec);

  // Moments: W_enc column f is the D entries from f·D (column-major), W_dec row f
  // the D entries from f·D (row-major), b_enc entry f; b_dec's are all kept.
  for (int which = 0; which < 2; ++which) {
    const auto& now = which == 0 ? adam.first_moments() : adam.second_moments();
    const auto& was = which == 0 ? adam_before.first_moments() : adam_before.second_moments();
    CAPTURE(which);
    for (Index f = 0; f < F; ++f) {
      const bool resampled = f == 2 || f == 7 || f == 11;
      CAPTURE(f);
      for (Index d = 0; d < D; ++d) {
        if (resampled) {
          CHECK(now[0][f * D + d] == Scalar(0));
          CHECK(now[2][f * D + d] == Scalar(0));
        } else {
          CHECK(now[0][f * D + d] == was[0][f * D + d]);
          CHECK(now[2][f * D + d] == was[2][f * D + d]);
        }
      }
      CHECK(now[1][f] == (resampled ? Scalar(0) : was[1][f]));
    }
    CHECK((now[3] == was[3]).all());
  }
  CHECK(adam.steps_taken() == adam_before.steps_taken());
}

TEST_CASE("resampling picks the input with the dominant loss", "[dead_latents]") {
  // A model that reconstructs every input as b_dec = c: rows equal to c (plus a
  // little noise) have tiny loss, row 13 at c + 10 e_0 has loss 100. Its chance
  // of not being drawn is about 50 · 8 · 1e-4 / 100 = 4e-4 per draw.
  const Index D = 8, F = 6, N = 50;
  sae::Rng rng(51);
  sae::SparseAutoEncoder<double> model(D, F, sae::Init::Tied, 1);
  model.params().W_enc.setZero();  // every code 0: every latent dead, x̂ = b_dec
  Eigen::VectorXd c(D);
  fill_normal(c, rng, 1.0, 3.0);
  model.params().b_dec = c;
  sae::Batch<double> X(N, D);
  fill_normal(X, rng, 0.01);
  X.rowwise() += c.transpose();
  X(13, 0) += 10.0;

  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    CAPTURE(seed);
    sae::SparseAutoEncoder<double> m = model;
    sae::Adam<double> adam;  // no state yet: nothing to zero, no error
    sae::Rng draw(seed);
    const auto r = sae::resample_dead_latents(m, adam, {4}, X, draw);
    REQUIRE(r.rows.size() == 1);
    CHECK(r.rows[0] == 13);
    // The live latents' columns are all zero here: the fallback norm 1 keeps the new latent able to fire.
    CHECK(r.live_encoder_norm == 1.0);
    CHECK(m.encode(X)(13, 4) > 0.0);
  }
}

TEST_CASE("resampling with explicit weights: fewer usable rows than dead latents, no live latents",
          "[dead_latents]") {
  sae::Parameters<double> p(3, 4);
  p.W_enc.setConstant(0.5);
  p.W_dec.setConstant(0.25);
  p.b_enc.setConstant(-1.0);
  sae::Batch<double> X(4, 3);
  X << 1, 0, 0,  //
      0, 2, 0,   //
      0, 0, 0,   // zero row: never drawn, whatever its weight
      0, 0, 3;
  const Eigen::Vector4d weights(0.0, 1.0, 5.0, 2.0);  // usable: rows 1 and 3
  sae::Adam<double> adam;
  sae::Rng rng(61);

  // All four latents dead: no live latents, so the encoder norm is 0.2 × 1.
  const auto r = sae::resample_dead_latents(p, adam, {3, 1, 0, 2}, X, weights, rng);
  REQUIRE(r.rows.size() == 2);
  CHECK(r.latents == std::vector<Index>{3, 1});  // the first two, in the order given
  CHECK(r.live_encoder_norm == 1.0);
  for (std::size_t j = 0; j < 2; ++j) {
    CHECK((r.rows[j] == 1 || r.rows[j] == 3));
    const Eigen::RowVectorXd unit = X.row(r.rows[j]) / X.row(r.rows[j]).norm();
    CHECK(p.W_dec.row(r.latents[j]) == unit);
    CHECK(p.W_enc.col(r.latents[j]).transpose() == 0.2 * unit);
    CHECK(p.b_enc(r.latents[j]) == 0.0);
  }
  CHECK(r.rows[0] != r.rows[1]);
  // Latents 0 and 2 could not be resampled: left as they were.
  CHECK((p.W_enc.col(0).array() == 0.5).all());
  CHECK((p.W_dec.row(2).array() == 0.25).all());
  CHECK(p.b_enc(2) == -1.0);

  // No dead latents: nothing changes, nothing drawn.
  const sae::Parameters<double> same = p;
  const auto none = sae::resample_dead_latents(p, adam, {}, X, weights, rng);
  CHECK(none.latents.empty());
  CHECK(p.W_enc == same.W_enc);
}

TEST_CASE("resampling rejects bad arguments before changing anything", "[dead_latents][errors]") {
  using Catch::Matchers::Contains;
  sae::Parameters<double> p(3, 4);
  p.W_enc.setConstant(1.0);
  sae::Batch<double> X = sae::Batch<double>::Ones(5, 3);
  Eigen::VectorXd w = Eigen::VectorXd::Ones(5);
  sae::Adam<double> adam;
  sae::Rng rng(71);

  CHECK_THROWS_WITH(sae::resample_dead_latents(p, adam, {4}, X, w, rng), Contains("dead latent 4"));
  CHECK_THROWS_WITH(sae::resample_dead_latents(p, adam, {-1}, X, w, rng), Contains("out of range"));
  CHECK_THROWS_WITH(sae::resample_dead_latents(p, adam, {1, 2, 1}, X, w, rng), Contains("listed twice"));
  const Eigen::VectorXd short_w = Eigen::VectorXd::Ones(4);
  CHECK_THROWS_WITH(sae::resample_dead_latents(p, adam, {1}, X, short_w, rng),
                    Contains("sampling_weights") && Contains("5 entries"));
  Eigen::VectorXd bad_w = w;
  bad_w(3) = -2;
  CHECK_THROWS_WITH(sae::resample_dead_latents(p, adam, {1}, X, bad_w, rng), Contains("row 3"));
  bad_w(3) = NAN;
  CHECK_THROWS_AS(sae::resample_dead_latents(p, adam, {1}, X, bad_w, rng), std::invalid_argument);
  sae::Batch<double> wide = sae::Batch<double>::Ones(5, 4);
  CHECK_THROWS_WITH(sae::resample_dead_latents(p, adam, {1}, wide, w, rng), Contains("4 columns"));
  CHECK_THROWS_WITH(sae::resample_dead_latents(p, adam, {1}, X, w, rng, 0.0), Contains("encoder_norm_factor"));

  // An optimizer that has stepped a model of another size.
  sae::Parameters<double> other(3, 5), other_g(3, 5);
  adam.step(other, other_g);
  CHECK_THROWS_WITH(sae::resample_dead_latents(p, adam, {1}, X, w, rng), Contains("not sized"));
  CHECK((p.W_enc.array() == 1.0).all());  // nothing changed on any of the failures
  CHECK(p.b_enc.isZero(0));
}
