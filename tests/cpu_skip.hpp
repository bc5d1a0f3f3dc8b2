// tests/cpu_skip.hpp: the first thing a test program built for the GEMM
// kernel's instruction set (-mavx512f -mfma, or -mavx2 -mfma) does. On a CPU
// without it the program cannot run, so it reports ctest's "skipped" code
// (SKIP_RETURN_CODE 77 in tests/CMakeLists.txt) instead of crashing on an
// illegal instruction.
#pragma once

#include <cstdio>

namespace sae_test {

inline constexpr int ctest_skip_code = 77;

/// True, after saying so on stdout, when this CPU lacks the instruction set
/// this program was built for (AVX-512F or AVX2, with FMA either way, and
/// AVX-512 BF16 for the screened ReLU codes' build).
inline bool cpu_lacks_build_target() {
#if defined(__AVX512BF16__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx512bf16"))
    return false;
  std::printf("skipped: this CPU has no AVX-512F, FMA or AVX-512 BF16\n");
  return true;
#elif defined(__AVX512F__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) return false;
  std::printf("skipped: this CPU has no AVX-512F or FMA\n");
  return true;
#elif defined(__AVX2__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return false;
  std::printf("skipped: this CPU has no AVX2 or FMA\n");
  return true;
#else
  return false;
#endif
}

}  // namespace sae_test
