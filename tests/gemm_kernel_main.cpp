// tests/gemm_kernel_main.cpp: Catch2's main for sae_gemm_kernel_tests,
// which are built with -mavx512f -mfma: skipped on a CPU without them.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "avx512_skip.hpp"

int main(int argc, char* argv[]) {
  if (sae_test::cpu_lacks_avx512_fma()) return sae_test::ctest_skip_code;
  return Catch::Session().run(argc, argv);
}
