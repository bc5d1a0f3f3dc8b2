// tests/gemm_kernel_main.cpp: Catch2's main for sae_gemm_kernel_tests and
// sae_gemm_kernel_avx2_tests, which are built with -mavx512f -mfma and
// -mavx2 -mfma: skipped on a CPU without them.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "cpu_skip.hpp"

int main(int argc, char* argv[]) {
  if (sae_test::cpu_lacks_build_target()) return sae_test::ctest_skip_code;
  return Catch::Session().run(argc, argv);
}
