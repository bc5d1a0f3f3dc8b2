// Benchmarks of the library's random number generator.
#define CATCH_CONFIG_ENABLE_BENCHMARKING
#include <catch2/catch.hpp>

#include <sae/sae.hpp>

TEST_CASE("Rng draws", "[rng][benchmark]") {
  sae::Rng rng(12345);

  BENCHMARK("Rng::uniform") { return rng.uniform(); };
  BENCHMARK("Rng::normal") { return rng.normal(); };
  BENCHMARK("Rng::normal x 1024") {
    double sum = 0.0;
    for (int i = 0; i < 1024; ++i) sum += rng.normal();
    return sum;
  };
}
