// tests/test_double_sums.cpp: the double-accumulated dot products and sums of
// squares (sae/detail/double_sums.hpp) on hand-worked data, and, under
// OpenMP, the training step's bookkeeping built on them (gradient norm and
// clipping, the decoder constraint, dead-latent counts) giving the same
// numbers on 1 and 2 threads.
#include <cmath>
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>
#include <sae/sae.hpp>
#include <sae/train.hpp>

#include "support.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

using sae::Index;
using sae::detail::dot_in_double;
using sae::detail::sum_of_squares_in_double;

TEST_CASE("dot_in_double: hand-worked sums, with and without a tail", "[double_sums]") {
  const std::vector<float> a{1, 2, 3}, b{4, 5, 6};
  CHECK(dot_in_double(a.data(), b.data(), 0) == 0.0);
  CHECK(dot_in_double(a.data(), b.data(), 3) == 32.0);
  // 1 + 2 + ... + n for n = 16 (whole lanes), 37 and 50 (a tail): n(n + 1)/2.
  std::vector<double> counting(50), ones(50, 1.0);
  for (int i = 0; i < 50; ++i) counting[static_cast<std::size_t>(i)] = i + 1;
  for (const Index n : {Index(16), Index(37), Index(50)})
    CHECK(dot_in_double(counting.data(), ones.data(), n) == static_cast<double>(n * (n + 1) / 2));
}

TEST_CASE("dot_in_double accumulates float data in double", "[double_sums]") {
  // 2^24 then 40 ones: a float running sum stays at 2^24 (each 1 is half an
  // ulp, rounded away); in double the sum is exact.
  std::vector<float> a(41, 1.0f), ones(41, 1.0f);
  a[0] = 16777216.0f;
  CHECK(dot_in_double(a.data(), ones.data(), 41) == 16777256.0);
  // And the squares: (2^24)² + 40.
  CHECK(sum_of_squares_in_double(a.data(), 41) == 281474976710656.0 + 40.0);
}

TEST_CASE("sum_of_squares_in_double over many blocks: exact on integers, close on normals", "[double_sums]") {
  // n = 100003, above the threshold for threads and not a multiple of the 64
  // blocks: values (i mod 7) - 3, small integers whose squares sum exactly in
  // double in any order, so the blocked sum must equal a plain loop's.
  const Index n = 100003;
  std::vector<float> v(static_cast<std::size_t>(n));
  double expected = 0.0;
  for (Index i = 0; i < n; ++i) {
    const int value = static_cast<int>(i % 7) - 3;
    v[static_cast<std::size_t>(i)] = static_cast<float>(value);
    expected += value * value;  // integers: exact in double at this size
  }
  CHECK(sum_of_squares_in_double(v.data(), n) == expected);

  const auto X = sae_test::normal_batch<float>(301, 333, 5);  // 100233 entries
  long double reference = 0.0L;
  for (Index i = 0; i < X.size(); ++i) reference += static_cast<long double>(X.data()[i]) * X.data()[i];
  CHECK(sum_of_squares_in_double(X.data(), X.size()) ==
        Approx(static_cast<double>(reference)).epsilon(1e-14));
}

#if defined(_OPENMP)
TEST_CASE("gradient norm, clipping, the decoder constraint and dead-latent counts are the same on 1 and 2 threads",
          "[double_sums][openmp]") {
  sae::Parameters<float> params(96, 1024), grads(96, 1024);  // 98,304 entries per weight matrix
  sae::initialize(params, sae::Init::Tied, 1, 1.0);
  sae::Rng rng(2);
  grads.for_each([&](const char*, auto& t) {
    sae_test::fill_normal(t, rng);
  });
  sae::Batch<float> codes = sae_test::normal_batch<float>(200, 1024, 3);  // 204,800 codes, about half fire
  codes = codes.cwiseMax(0.0f);
  codes.col(7).setZero();  // a latent that does not fire

  struct Result {
    double norm;
    sae::Parameters<float> params, grads;
    std::vector<std::uint64_t> tokens_since_fired;
  };
  const auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    Result r{0.0, params, grads, {}};
    sae::project_decoder_gradient(r.params, r.grads);
    r.norm = sae::clip_gradient_norm(r.grads, 1.0);
    sae::normalize_decoder_rows(r.params);
    sae::DeadLatentTracker tracker(1024);
    tracker.update(codes);
    r.tokens_since_fired = tracker.tokens_since_fired();
    omp_set_num_threads(saved);
    return r;
  };
  const Result one = run(1), two = run(2);
  CHECK(one.norm == two.norm);
  CHECK(one.grads.W_dec == two.grads.W_dec);
  CHECK(one.grads.W_enc == two.grads.W_enc);
  CHECK(one.params.W_dec == two.params.W_dec);
  CHECK(one.tokens_since_fired == two.tokens_since_fired);
  CHECK(one.tokens_since_fired[7] == 200);
  CHECK(one.tokens_since_fired[8] == 0);
  // And what they computed: projected rows orthogonal to their weights, unit
  // rows, a clipped norm of one.
  CHECK(std::abs(one.grads.W_dec.row(5).cast<double>().dot(params.W_dec.row(5).cast<double>())) < 1e-4);
  CHECK(one.params.W_dec.row(5).cast<double>().norm() == Approx(1.0).epsilon(1e-6));
  CHECK(sae::gradient_norm(one.grads) == Approx(1.0).epsilon(1e-5));
}
#endif
