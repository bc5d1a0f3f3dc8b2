// Smoke test: the umbrella header compiles, links and reports its version.
#include <sae/sae.hpp>

#include <catch2/catch.hpp>

TEST_CASE("sae.hpp compiles and reports version 0.x", "[smoke]") {
  REQUIRE(sae::version.major == 0);
  REQUIRE(sae::version.major == SAE_VERSION_MAJOR);
  REQUIRE(sae::version.minor == SAE_VERSION_MINOR);
  REQUIRE(sae::version.patch == SAE_VERSION_PATCH);
}
