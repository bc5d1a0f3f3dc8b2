// The benchmark executable's main: Catch2 with benchmarking switched on.
// Every bench_*.cpp defines CATCH_CONFIG_ENABLE_BENCHMARKING before including
// catch.hpp as well, so all translation units see the same Catch2 configuration.
#define CATCH_CONFIG_ENABLE_BENCHMARKING
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
