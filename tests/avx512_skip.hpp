// tests/avx512_skip.hpp: the first thing a test program built with -mavx512f
// -mfma does. On a CPU without AVX-512F or FMA it cannot run, so it reports
// ctest's "skipped" code (SKIP_RETURN_CODE 77 in tests/CMakeLists.txt)
// instead of crashing on an illegal instruction.
#pragma once

#include <cstdio>

namespace sae_test {

inline constexpr int ctest_skip_code = 77;

/// True, after saying so on stdout, when this CPU lacks AVX-512F or FMA.
inline bool cpu_lacks_avx512_fma() {
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) return false;
  std::printf("skipped: this CPU has no AVX-512F or FMA\n");
  return true;
}

}  // namespace sae_test
