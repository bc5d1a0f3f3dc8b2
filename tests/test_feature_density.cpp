// Tests for sae/train/feature_density.hpp on hand-made codes; every expected
// value is worked out in the comments.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <sae/core/types.hpp>
#include <sae/train/feature_density.hpp>

namespace {

// The message of the exception of type E that f throws ("" if it throws none).
template <typename E, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

// 1000 tokens x 5 latents; latent j is nonzero on the first fired[j] tokens.
// fired = 1000, 300, 30, 3, 0: frequencies 1, 0.3, 0.03, 0.003, 0.
template <typename Matrix>
Matrix thousand_tokens() {
  const std::vector<int> fired = {1000, 300, 30, 3, 0};
  Matrix codes = Matrix::Zero(1000, 5);
  for (int j = 0; j < 5; ++j)
    for (int i = 0; i < fired[j]; ++i) codes(i, j) = static_cast<typename Matrix::Scalar>(1 + j);
  return codes;
}

}  // namespace

TEST_CASE("FeatureDensity accumulates firing counts over batches", "[feature_density]") {
  // Batch 1 (3 tokens) and batch 2 (2 tokens), 4 latents:
  //   latent 0 fires on all 5 tokens, latent 1 never, latent 2 once (batch 2),
  //   latent 3 once (batch 1; -0.0 in batch 2 is zero, not a firing).
  sae::Batch<float> first(3, 4), second(2, 4);
  first << 1, 0, 0, 0.5f,  //
      2, 0, 0, 0,          //
      3, 0, 0, 0;
  second << 1, 0, 1, 0,  //
      1, 0, 0, -0.0f;

  sae::FeatureDensity density;
  CHECK(density.num_latents() == 0);
  density.update(first);
  CHECK(density.num_latents() == 4);
  density.update(second);
  CHECK(density.tokens() == 5);
  CHECK(density.firing_counts() == (sae::FeatureDensity::Counts(4) << 5, 0, 1, 1).finished());

  // Frequencies 5/5, 0, 1/5, 1/5.
  const Eigen::VectorXd frequency = density.firing_frequency();
  CHECK(frequency == (Eigen::VectorXd(4) << 1.0, 0.0, 0.2, 0.2).finished());
  CHECK(density.alive_fraction() == 0.75);
  CHECK(density.dead_fraction() == 0.25);

  // Dense means MORE than the threshold: 0.2 is not dense at 0.2.
  CHECK(density.dense_fraction(0.01) == 0.75);
  CHECK(density.dense_fraction(0.1) == 0.75);
  CHECK(density.dense_fraction(0.2) == 0.25);
  CHECK(density.dense_fraction(0.0) == 0.75);  // = alive
  CHECK(density.dense_fraction(1.0) == 0.0);

  // An empty batch changes nothing.
  density.update(sae::Batch<float>(0, 4));
  CHECK(density.tokens() == 5);
  CHECK(density.alive_fraction() == 0.75);
}

TEST_CASE("FeatureDensity: reset starts a new window and keeps the width", "[feature_density]") {
  sae::FeatureDensity density(3);
  CHECK(density.num_latents() == 3);
  sae::Batch<double> codes(2, 3);
  codes << 0, 1, 0,  //
      0, 2, 0;
  density.update(codes);
  CHECK(density.alive_fraction() == Approx(1.0 / 3.0));

  density.reset();
  CHECK(density.tokens() == 0);
  CHECK(density.num_latents() == 3);
  CHECK(density.firing_counts() == sae::FeatureDensity::Counts::Zero(3));
  CHECK_THROWS_AS(density.alive_fraction(), std::logic_error);

  // A latent that fired before the reset is dead in the new window.
  codes << 5, 0, 0,  //
      0, 0, 0;
  density.update(codes);
  CHECK(density.firing_counts() == (sae::FeatureDensity::Counts(3) << 1, 0, 0).finished());
  CHECK(density.dead_fraction() == Approx(2.0 / 3.0));
  CHECK(density.firing_frequency() == (Eigen::VectorXd(3) << 0.5, 0.0, 0.0).finished());
}

TEMPLATE_TEST_CASE("FeatureDensity gives the same counts for any storage order, scalar and split", "[feature_density]",
                   sae::Batch<float>, Eigen::MatrixXd, (Eigen::Matrix<int, Eigen::Dynamic, Eigen::Dynamic>)) {
  const TestType codes = thousand_tokens<TestType>();
  sae::FeatureDensity whole, parts;
  whole.update(codes);
  parts.update(codes.topRows(100));
  parts.update(codes.middleRows(100, 0));
  parts.update(codes.bottomRows(900));
  const sae::FeatureDensity::Counts expected = (sae::FeatureDensity::Counts(5) << 1000, 300, 30, 3, 0).finished();
  CHECK(whole.firing_counts() == expected);
  CHECK(parts.firing_counts() == expected);
  CHECK(parts.tokens() == 1000);
  // An expression (a transposed block) works too.
  sae::FeatureDensity transposed;
  const auto codes_t = codes.transpose().eval();
  transposed.update(codes_t.transpose());
  CHECK(transposed.firing_counts() == expected);
}

TEST_CASE("FeatureDensity: dense fractions and log10 histogram of 1000 tokens", "[feature_density]") {
  // Frequencies 1, 0.3, 0.03, 0.003, 0 (see thousand_tokens).
  sae::FeatureDensity density;
  density.update(thousand_tokens<sae::Batch<float>>());
  CHECK(density.alive_fraction() == 0.8);
  CHECK(density.dead_fraction() == 0.2);
  CHECK(density.dense_fraction(0.01) == 0.6);  // 1, 0.3, 0.03
  CHECK(density.dense_fraction(0.1) == 0.4);   // 1, 0.3

  // 4 bins over [-4, 0], width 1. log10 frequencies: 0 (right edge: last bin),
  // -0.52 -> bin 3, -1.52 -> bin 2, -2.52 -> bin 1; one latent never fired.
  const sae::DensityHistogram h = density.log10_histogram(4, -4.0);
  CHECK(h.min_log10 == -4.0);
  CHECK(h.bins() == 4);
  CHECK(h.bin_width() == 1.0);
  CHECK(h.edge(0) == -4.0);
  CHECK(h.edge(3) == -1.0);
  CHECK(h.edge(4) == 0.0);
  CHECK(h.counts == std::vector<std::int64_t>{0, 1, 1, 2});
  CHECK(h.never_fired == 1);

  // Default range [-8, 0], 16 bins of width 0.5: -2.52 -> bin 10, -1.52 -> bin 12,
  // -0.52 -> bin 14, 0 -> bin 15.
  const sae::DensityHistogram d = density.log10_histogram(16);
  CHECK(d.min_log10 == -8.0);
  std::vector<std::int64_t> expected(16, 0);
  expected[10] = expected[12] = expected[14] = expected[15] = 1;
  CHECK(d.counts == expected);
  CHECK(d.never_fired == 1);

  // Frequencies below the range go to bin 0: [-2, 0] in 2 bins: 0.003 (-2.52) -> bin 0,
  // 0.03 (-1.52) -> bin 0, 0.3 and 1 -> bin 1.
  const sae::DensityHistogram clamped = density.log10_histogram(2, -2.0);
  CHECK(clamped.counts == std::vector<std::int64_t>{2, 2});
  CHECK(clamped.never_fired == 1);

  // One bin holds every latent that fired.
  CHECK(density.log10_histogram(1).counts == std::vector<std::int64_t>{4});
}

TEST_CASE("FeatureDensity rejects bad use", "[feature_density]") {
  CHECK_THROWS_AS(sae::FeatureDensity(0), std::invalid_argument);

  sae::FeatureDensity density(4);
  // No tokens yet: every density is undefined.
  const std::string empty = message_of<std::logic_error>([&] { density.firing_frequency(); });
  CHECK(empty.find("firing_frequency") != std::string::npos);
  CHECK(empty.find("no tokens") != std::string::npos);
  CHECK_THROWS_AS(density.alive_fraction(), std::logic_error);
  CHECK_THROWS_AS(density.dead_fraction(), std::logic_error);
  CHECK_THROWS_AS(density.dense_fraction(0.01), std::logic_error);
  CHECK_THROWS_AS(density.log10_histogram(10), std::logic_error);
  density.update(sae::Batch<float>(0, 4));  // still no tokens
  CHECK_THROWS_AS(density.alive_fraction(), std::logic_error);

  const std::string width = message_of<std::invalid_argument>([&] { density.update(sae::Batch<float>::Zero(2, 5)); });
  CHECK(width.find("FeatureDensity::update") != std::string::npos);
  CHECK(width.find("2 x 5") != std::string::npos);
  CHECK(width.find("expected 4 columns") != std::string::npos);
  CHECK(density.tokens() == 0);  // the rejected batch counted nothing

  sae::FeatureDensity unsized;
  CHECK_THROWS_AS(unsized.update(sae::Batch<float>(3, 0)), std::invalid_argument);

  density.update(sae::Batch<float>::Ones(2, 4));
  CHECK_THROWS_AS(density.dense_fraction(-0.1), std::invalid_argument);
  CHECK_THROWS_AS(density.dense_fraction(1.5), std::invalid_argument);
  CHECK_THROWS_AS(density.dense_fraction(std::nan("")), std::invalid_argument);
  CHECK_THROWS_AS(density.log10_histogram(0), std::invalid_argument);
  CHECK_THROWS_AS(density.log10_histogram(10, 0.0), std::invalid_argument);
  CHECK_THROWS_AS(density.log10_histogram(10, -INFINITY), std::invalid_argument);
}
