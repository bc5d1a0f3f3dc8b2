// Tests for sae/train/schedules.hpp. Expected values are worked by hand in the
// comments from the formulas in the header.
#include <catch2/catch.hpp>

#include <cmath>
#include <stdexcept>

#include <sae/train/schedules.hpp>

TEST_CASE("LinearWarmupDecay: warm-up from 0, constant, decay to 0 over the last steps", "[schedules]") {
  // T = 100, W = 10, K = 20: warm-up t/10 for t < 10, decay (100 - t)/20 from t = 80.
  const sae::LinearWarmupDecay s(100, 10, 20);
  CHECK(s.value(0) == 0.0);
  CHECK(s.value(1) == Approx(0.1));
  CHECK(s.value(5) == Approx(0.5));
  CHECK(s.value(9) == Approx(0.9));
  CHECK(s.value(10) == 1.0);
  CHECK(s.value(50) == 1.0);
  CHECK(s.value(79) == 1.0);
  CHECK(s.value(80) == 1.0);            // (100 - 80) / 20
  CHECK(s.value(90) == Approx(0.5));    // 10 / 20
  CHECK(s.value(99) == Approx(0.05));   // the last step: 1 / 20
  CHECK(s.value(100) == 0.0);           // past the end: the end fraction
  CHECK(s.value(1000000) == 0.0);
}

TEST_CASE("LinearWarmupDecay: start and end fractions", "[schedules]") {
  // s = 0.1, e = 0.2: warm-up 0.1 + 0.9 t/10, decay 0.2 + 0.8 (100 - t)/20.
  const sae::LinearWarmupDecay s(100, 10, 20, 0.1, 0.2);
  CHECK(s.value(0) == Approx(0.1));
  CHECK(s.value(5) == Approx(0.55));
  CHECK(s.value(10) == 1.0);
  CHECK(s.value(80) == Approx(1.0));
  CHECK(s.value(90) == Approx(0.6));
  CHECK(s.value(95) == Approx(0.4));
  CHECK(s.value(100) == Approx(0.2));
  CHECK(s.value(150) == Approx(0.2));
}

TEST_CASE("LinearWarmupDecay: ramps turned off, overlapping ramps and the decay fraction", "[schedules]") {
  const sae::LinearWarmupDecay flat(50, 0, 0);
  for (std::int64_t t : {0, 1, 25, 49, 50, 51}) CHECK(flat.value(t) == 1.0);

  // Warm-up only: no decay, 1 to the end and beyond.
  const sae::LinearWarmupDecay warm(50, 4, 0);
  CHECK(warm.value(2) == Approx(0.5));
  CHECK(warm.value(49) == 1.0);
  CHECK(warm.value(60) == 1.0);

  // T = 10, W = 6, K = 6: the ramps overlap on steps 4 and 5; the smaller wins.
  // t = 4: min(4/6, 6/6) = 4/6;  t = 5: min(5/6, 5/6);  t = 6: min(1, 4/6) = 4/6.
  const sae::LinearWarmupDecay overlap(10, 6, 6);
  CHECK(overlap.value(3) == Approx(3.0 / 6));
  CHECK(overlap.value(4) == Approx(4.0 / 6));
  CHECK(overlap.value(5) == Approx(5.0 / 6));
  CHECK(overlap.value(6) == Approx(4.0 / 6));
  CHECK(overlap.value(9) == Approx(1.0 / 6));

  // SAELens: decay over the last 20% of 1000 steps = 200 steps, from t = 800.
  const auto saelens = sae::LinearWarmupDecay::with_decay_fraction(1000, 100);
  CHECK(saelens.decay_steps() == 200);
  CHECK(saelens.value(50) == Approx(0.5));
  CHECK(saelens.value(799) == 1.0);
  CHECK(saelens.value(800) == 1.0);
  CHECK(saelens.value(900) == Approx(0.5));
  // 20% of 7 steps is 1.4: rounded down to 1 step.
  CHECK(sae::LinearWarmupDecay::with_decay_fraction(7, 0).decay_steps() == 1);
}

TEST_CASE("LinearWarmupDecay: non-decreasing in warm-up, non-increasing in decay, within [0, 1]", "[schedules]") {
  const sae::LinearWarmupDecay s(1000, 137, 211, 0.05, 0.01);
  double previous = s.value(0);
  for (std::int64_t t = 1; t <= 1000; ++t) {
    CAPTURE(t);
    const double v = s.value(t);
    CHECK(v >= 0.01);
    CHECK(v <= 1.0);
    if (t <= 137) CHECK(v >= previous);
    if (t > 137) CHECK(v <= previous);
    previous = v;
  }
}

TEST_CASE("LinearWarmupDecay rejects nonsense configurations", "[schedules][errors]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(sae::LinearWarmupDecay(0, 0, 0), Contains("total_steps must be positive"));
  CHECK_THROWS_WITH(sae::LinearWarmupDecay(-5, 0, 0), Contains("total_steps"));
  CHECK_THROWS_WITH(sae::LinearWarmupDecay(100, -1, 0), Contains("warmup_steps") && Contains("-1"));
  CHECK_THROWS_WITH(sae::LinearWarmupDecay(100, 101, 0), Contains("warmup_steps") && Contains("101"));
  CHECK_THROWS_WITH(sae::LinearWarmupDecay(100, 0, 101), Contains("decay_steps") && Contains("101"));
  CHECK_THROWS_WITH(sae::LinearWarmupDecay(100, 0, -3), Contains("decay_steps"));
  CHECK_THROWS_WITH(sae::LinearWarmupDecay(100, 0, 0, 1.5), Contains("start_fraction"));
  CHECK_THROWS_WITH(sae::LinearWarmupDecay(100, 0, 0, 0.0, -0.1), Contains("end_fraction"));
  CHECK_THROWS_WITH(sae::LinearWarmupDecay(100, 0, 0, 0.0, NAN), Contains("end_fraction"));
  CHECK_THROWS_WITH(sae::LinearWarmupDecay::with_decay_fraction(100, 0, 1.2), Contains("decay_fraction"));
  CHECK_THROWS_AS(sae::LinearWarmupDecay(100, 10, 10).value(-1), std::invalid_argument);
  CHECK_NOTHROW(sae::LinearWarmupDecay(100, 100, 100));  // whole-run ramps are allowed
}

TEST_CASE("L1Warmup: 0 to 1 over the warm-up, then 1", "[schedules]") {
  // dictionary_learning's λ warm-up of 2000 steps: t / 2000.
  const sae::L1Warmup w(2000);
  CHECK(w.value(0) == 0.0);
  CHECK(w.value(500) == Approx(0.25));
  CHECK(w.value(1000) == Approx(0.5));
  CHECK(w.value(1999) == Approx(0.9995));
  CHECK(w.value(2000) == 1.0);
  CHECK(w.value(1000000) == 1.0);

  const sae::L1Warmup none;
  CHECK(none.value(0) == 1.0);
  CHECK(none.value(7) == 1.0);

  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(sae::L1Warmup(-1), Contains("warmup_steps") && Contains("-1"));
  CHECK_THROWS_AS(w.value(-2), std::invalid_argument);
}
