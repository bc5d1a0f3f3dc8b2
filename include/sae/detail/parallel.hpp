// sae/detail/parallel.hpp: OpenMP for sae's own loops, when it is on.
//
// Compiled with OpenMP (-fopenmp, or SAE_USE_OPENMP in CMake), the element-wise
// and sparse loops of a training step run on OpenMP's threads, like Eigen's
// GEMM; without it SAE_OMP expands to nothing and the loops run serially. Every
// parallel loop in sae writes each output element from exactly one iteration,
// in a fixed order, so results do not depend on the number of threads.
#pragma once

#include <algorithm>
#include <vector>

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

/// The start of thread `thread`'s share of `n` columns split `threads` ways,
/// on 16-column boundaries (whole cache lines of floats).
inline Index column_share_start(Index n, int threads, int thread) {
  if (thread >= threads) return n;
  return std::min(n, (n * thread / threads) / 16 * 16);
}

/// value(f) for each column f of a slice [begin, end), at [f - begin] of a
/// buffer the calling thread keeps (so warm calls allocate nothing): a
/// per-column factor gathered before a slice's row loop, which then has no
/// load that depends on how the factor is made.
template <typename Scalar, typename Value>
const Scalar* slice_values(Index begin, Index end, Value&& value) {
  thread_local std::vector<Scalar> values;
  values.resize(static_cast<std::size_t>(end - begin));
  for (Index f = begin; f < end; ++f) values[static_cast<std::size_t>(f - begin)] = value(f);
  return values.data();
}

/// Calls slice(begin, end) once per thread with that thread's share of the
/// columns [0, cols): for loops that walk every row of a row-major batch and
/// accumulate per column, so each column's sum keeps its row order whatever
/// the thread count. `work` decides whether threads are worth starting.
///
/// Inside `slice`, read scalars and data pointers into locals first, and loop
/// through those: the lambda captures by reference, and a store through a
/// Scalar (or byte) pointer may alias a captured value, which the compiler
/// must then reload at every element; such loops stay scalar (3-4x slower).
template <typename Slice>
void for_column_slices(Index cols, Index work, Slice&& slice) {
  const bool threaded = worth_parallel(work);
  SAE_OMP(parallel if (threaded))
  {
    int threads = 1, thread = 0;
#if defined(_OPENMP)
    threads = omp_get_num_threads();
    thread = omp_get_thread_num();
#else
    (void)threaded;
#endif
    slice(column_share_start(cols, threads, thread), column_share_start(cols, threads, thread + 1));
  }
}

/// sums = the column sums of a row-major batch, each thread summing its slice
/// of the columns down the rows (Eigen's colwise().sum() walks a row-major
/// batch column by column, a strided read).
template <typename Batch, typename Sums>
void column_sums(const Batch& batch, Sums& sums) {
  sums.setZero(batch.cols());
  for_column_slices(batch.cols(), batch.size(), [&](Index begin, Index end) {
    for (Index b = 0; b < batch.rows(); ++b)
      sums.segment(begin, end - begin) += batch.row(b).segment(begin, end - begin).transpose();
  });
}

}  // namespace detail
}  // namespace sae
