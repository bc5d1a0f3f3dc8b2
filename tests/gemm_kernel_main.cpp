// tests/gemm_kernel_main.cpp: Catch2's main for sae_gemm_kernel_tests,
// which are built with -mavx512f -mfma: on a CPU without AVX-512F they cannot run,
// and report ctest's "skipped" code instead of crashing on an illegal
// instruction.
#define CATCH_CONFIG_RUNNER
#include <cstdio>

#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("fma")) {
    std::printf("skipped: this CPU has no AVX-512F or FMA\n");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
