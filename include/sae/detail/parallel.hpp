// sae/detail/parallel.hpp: OpenMP for sae's own loops, when it is on.
//
// Compiled with OpenMP (-fopenmp, or SAE_USE_OPENMP in CMake), the element-wise
// and sparse loops of a training step run on OpenMP's threads, like Eigen's
// GEMM; without it SAE_OMP expands to nothing and the loops run serially. Every
// parallel loop in sae writes each output element from exactly one iteration,
// in a fixed order, so results do not depend on the number of threads.
#pragma once

#include "../config.hpp"

#if defined(_OPENMP)
#include <omp.h>
#define SAE_DETAIL_STRINGIFY(...) #__VA_ARGS__
/// SAE_OMP(parallel for ...) is `#pragma omp parallel for ...` under OpenMP.
#define SAE_OMP(...) _Pragma(SAE_DETAIL_STRINGIFY(omp __VA_ARGS__))
#else
#define SAE_OMP(...)
#endif

namespace sae {
namespace detail {

/// Below this many scalar operations a loop stays on one thread: starting a
/// parallel region costs a few microseconds.
inline constexpr Index parallel_work_threshold = Index(1) << 16;

inline bool worth_parallel(Index work) { return work >= parallel_work_threshold; }

}  // namespace detail
}  // namespace sae
