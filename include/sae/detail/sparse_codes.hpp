// sae/detail/sparse_codes.hpp: codes stored as their nonzero entries, and the
// kernels that decode and backpropagate through them.
//
// A trained SAE fires a few dozen of its F latents per token, and a TopK SAE
// exactly k. Stored row by row (compressed sparse rows), decoding is a gather
// of the active decoder rows and every gradient that involves the codes
// touches only the active (token, latent) pairs: B·nnz·D work instead of the
// dense B·F·D, the way OpenAI's and sparsify's kernels do it on GPUs.
//
// The kernels that produce one row per token (decode, the code gradient) run
// over tokens; the two that produce one row per latent (the decoder and
// encoder gradients) run over latents through a by-latent index of the same
// entries, so under OpenMP each thread owns the rows it writes and the sums
// keep their serial order: results are the same for any thread count.
#pragma once

#include <algorithm>
#include <vector>

#include "../config.hpp"
#include "../core/types.hpp"
#include "buffers.hpp"
#include "parallel.hpp"

namespace sae {

/// How an objective computes the terms that involve the codes.
enum class Kernels {
  Automatic,  ///< sparse when the batch's codes are sparse enough, else dense (the default)
  Dense,      ///< GEMMs over the full B x F codes (the reference)
  Sparse,     ///< only the nonzero (token, latent) pairs
};

/// Kernels::Automatic takes the sparse path when at most this fraction of the
/// batch's codes is nonzero. Measured with benchmarks/sae_bench (D = 768,
/// F = 8192, B = 1024, 2 threads): the sparse step is faster than the dense
/// one up to about 20% density; the margin leaves room for other machines.
inline constexpr double automatic_sparse_density = 0.1;

/// decode gathers the active decoder rows when at most this fraction of the
/// codes is nonzero. Measured alone (B = 1024, 2 threads, Zen 5), the gather
/// beat the dense product up to about 10% density at D = 512 and 768,
/// F = 8192, but only up to about 5.5% at D = 2304, F = 16384, whose 144 MiB
/// decoder does not stay in the last-level cache between the gathers. At
/// L0 = 64 it took 1/6 and 1/14 of the product's time. Trained SAEs fire
/// well under 1% of their latents.
inline constexpr double decode_sparse_density = 0.05;

/// The nonzero codes of a B x F batch, row by row: the entries of row b are
/// positions row_start[b] .. row_start[b+1] of `latent` (column) and `value`.
template <typename Scalar>
struct SparseCodes {
  Index rows = 0;
  Index cols = 0;
  std::vector<Index> row_start{0};
  std::vector<Index> latent;
  std::vector<Scalar> value;

  /// The same entries by latent (after index_by_latent()): latent f's entries
  /// are by_latent_entry[p] (a position in latent/value) and by_latent_row[p]
  /// (its row) for p in latent_start[f] .. latent_start[f+1], in row order.
  std::vector<Index> latent_start;
  std::vector<Index> by_latent_entry;
  std::vector<Index> by_latent_row;

  /// Empties it for a rows x cols batch (keeps the capacity).
  void reset(Index rows_, Index cols_) {
    rows = rows_;
    cols = cols_;
    row_start.assign(1, 0);
    latent.clear();
    value.clear();
  }
  void push(Index f, Scalar v) {
    latent.push_back(f);
    value.push_back(v);
  }
  void end_row() { row_start.push_back(static_cast<Index>(latent.size())); }
  /// Entries stored (or counted, between count_from_dense and fill_from_dense).
  Index nonzeros() const { return row_start.back(); }
  /// Fraction of the rows x cols entries that are stored.
  double density() const {
    return rows * cols == 0 ? 0.0 : static_cast<double>(nonzeros()) / (static_cast<double>(rows) * cols);
  }

  /// Which entries of a dense batch are stored: the positive ones (an SAE's
  /// codes, whose others are 0), or every one but ±0 (any codes given to
  /// decode; a NaN is kept).
  enum class Keep { Positive, Nonzero };

  /// Sizes the rows for the kept entries of `codes` and returns how many
  /// there are; the entries themselves are written by fill_from_dense (until
  /// then the object is empty), so a caller can look at the density first.
  template <Keep keep = Keep::Positive, typename Derived>
  Index count_from_dense(const Eigen::MatrixBase<Derived>& codes) {
    return count_rows(codes.rows(), codes.cols(), [&](Index b) { return kept<keep>(codes.row(b).array()).count(); });
  }

  /// The same with each row's count given by count_row(b), called once per
  /// row (in parallel under OpenMP): for a caller that counts while it makes
  /// the row.
  template <typename CountRow>
  Index count_rows(Index rows_, Index cols_, CountRow&& count_row) {
    reset(rows_, cols_);
    row_start.resize(static_cast<std::size_t>(rows) + 1);
    SAE_OMP(parallel for schedule(static) if (detail::worth_parallel(rows * cols)))
    for (Index b = 0; b < rows; ++b) row_start[static_cast<std::size_t>(b) + 1] = count_row(b);
    for (Index b = 0; b < rows; ++b) row_start[static_cast<std::size_t>(b) + 1] += row_start[static_cast<std::size_t>(b)];
    return row_start.back();
  }

  /// Writes the entries counted by count_from_dense<keep>(codes).
  template <Keep keep = Keep::Positive, typename Derived>
  void fill_from_dense(const Eigen::MatrixBase<Derived>& codes) {
    detail::resize_with_headroom(latent, static_cast<std::size_t>(row_start.back()));
    detail::resize_with_headroom(value, static_cast<std::size_t>(row_start.back()));
    SAE_OMP(parallel for schedule(static) if (detail::worth_parallel(rows * cols)))
    for (Index b = 0; b < rows; ++b) {
      Index j = row_start[static_cast<std::size_t>(b)];
      const auto row = codes.row(b);
      // Sparse rows are mostly zero: skip blocks of 16 with one vector test.
      constexpr Index block = 16;
      for (Index start = 0; start < cols; start += block) {
        if (start + block <= cols && !kept<keep>(row.template segment<block>(start).array()).any()) continue;
        for (Index f = start; f < std::min(start + block, cols); ++f) {
          const Scalar v = row(f);
          if (kept<keep>(v)) {
            latent[static_cast<std::size_t>(j)] = f;
            value[static_cast<std::size_t>(j)] = v;
            ++j;
          }
        }
      }
    }
  }

  /// Whether `keep` keeps v: a scalar, or an array of them (lane by lane).
  template <Keep keep, typename Value>
  static auto kept(const Value& v) {
    if constexpr (keep == Keep::Positive) return v > Scalar(0);
    else return v != Scalar(0);
  }

  /// Builds the by-latent index (a counting sort of the entries by latent).
  void index_by_latent() {
    latent_start.assign(static_cast<std::size_t>(cols) + 1, 0);
    for (Index f : latent) ++latent_start[static_cast<std::size_t>(f) + 1];
    for (Index f = 0; f < cols; ++f) latent_start[static_cast<std::size_t>(f) + 1] += latent_start[static_cast<std::size_t>(f)];
    detail::resize_with_headroom(by_latent_entry, latent.size());
    detail::resize_with_headroom(by_latent_row, latent.size());
    // latent_start[f] is used as f's fill position, then shifted back.
    for (Index b = 0; b < rows; ++b)
      for (Index j = row_start[static_cast<std::size_t>(b)]; j < row_start[static_cast<std::size_t>(b) + 1]; ++j) {
        const std::size_t p = static_cast<std::size_t>(latent_start[static_cast<std::size_t>(latent[static_cast<std::size_t>(j)])]++);
        by_latent_entry[p] = j;
        by_latent_row[p] = b;
      }
    for (Index f = cols; f > 0; --f) latent_start[static_cast<std::size_t>(f)] = latent_start[static_cast<std::size_t>(f) - 1];
    latent_start[0] = 0;
  }
};

namespace detail {

/// Whether the codes-side terms of a step should use the sparse kernels.
inline bool use_sparse_kernels(Kernels kernels, double density) {
  return kernels == Kernels::Sparse || (kernels == Kernels::Automatic && density <= automatic_sparse_density);
}

/// out = codes · W_dec (without b_dec). Token by token: each output row is
/// summed in a core's L1 cache from the row's active decoder rows, each
/// written once; the decoder (F x D floats, 25 MB at F = 8192, D = 768)
/// mostly stays in the last-level cache between the gathers. (Latent by
/// latent, each decoder row is read once but every output row is read and
/// written once per active latent; at L0 = 64 that took 1.5-3 times as long.)
/// Under OpenMP each thread owns whole rows, so results do not depend on the
/// thread count.
template <typename Scalar, typename DecoderWeights, typename Out>
void sparse_decode(const SparseCodes<Scalar>& codes, const DecoderWeights& W_dec, Out& out) {
  out.resize(codes.rows, W_dec.cols());
  SAE_OMP(parallel for schedule(static) if (worth_parallel(codes.nonzeros() * W_dec.cols())))
  for (Index b = 0; b < codes.rows; ++b) {
    auto row = out.row(b);
    row.setZero();
    const Index end = codes.row_start[b + 1];
    Index j = codes.row_start[b];
    // Four entries per pass over the output row: a quarter of its loads and stores.
    for (; j + 4 <= end; j += 4)
      row.noalias() += codes.value[j] * W_dec.row(codes.latent[j]) +
                       codes.value[j + 1] * W_dec.row(codes.latent[j + 1]) +
                       codes.value[j + 2] * W_dec.row(codes.latent[j + 2]) +
                       codes.value[j + 3] * W_dec.row(codes.latent[j + 3]);
    for (; j < end; ++j) row.noalias() += codes.value[j] * W_dec.row(codes.latent[j]);
  }
}

/// recon = codes · W_dec + b_dec through the nonzero codes alone
/// (sparse_decode), when at most decode_sparse_density of them are nonzero:
/// a trained SAE's codes cost B·L0·D instead of the dense product's B·F·D.
/// False, recon untouched, when they are denser (a fresh model's);
/// a sample of rows tells most such batches before the full count. The sums
/// are sparse_decode's, so they round differently from the dense product's
/// (and a non-finite decoder row of a latent at 0 does not reach recon).
template <typename Derived, typename DecoderWeights, typename Bias, typename Out>
bool decode_if_sparse(const Eigen::MatrixBase<Derived>& codes, const DecoderWeights& W_dec, const Bias& b_dec,
                      Out& recon) {
  using Scalar = typename Derived::Scalar;
  using Keep = typename SparseCodes<Scalar>::Keep;
  const Index rows = codes.rows(), cols = codes.cols();
  if (rows == 0 || cols == 0) return false;
  constexpr Index sampled_rows = 16;
  if (rows >= 4 * sampled_rows) {  // a fresh model's codes, half nonzero, stop here
    Index sampled = 0;
    for (Index i = 0; i < sampled_rows; ++i) {
      const auto row = codes.row(i * (rows / sampled_rows)).array();
      sampled += SparseCodes<Scalar>::template kept<Keep::Nonzero>(row).count();
    }
    if (static_cast<double>(sampled) > 2.0 * decode_sparse_density * static_cast<double>(sampled_rows * cols))
      return false;
  }
  thread_local SparseCodes<Scalar> sparse;  // keeps its capacity: warm calls allocate nothing
  sparse.template count_from_dense<Keep::Nonzero>(codes);
  if (sparse.density() > decode_sparse_density) return false;
  sparse.template fill_from_dense<Keep::Nonzero>(codes);
  sparse_decode(sparse, W_dec, recon);
  recon.rowwise() += b_dec.transpose();
  return true;
}

/// The decoder side of the backward pass, given G = ∂L/∂(codes · W_dec) (B x D):
///     grad_W_dec = codesᵀ G (or += with `accumulate`)
///     gradient[j] = G.row(b) · W_dec.row(latent[j]) for each entry j (row b),
/// that is (G W_decᵀ) at the active entries only. Latent by latent, each
/// decoder row and its gradient row are touched once, and the gradient row
/// takes four entries per pass, as sparse_decode's output rows do. Needs
/// codes.index_by_latent().
template <typename Scalar, typename DerivedG, typename DecoderWeights, typename GradW>
void sparse_decoder_backward(const SparseCodes<Scalar>& codes, const Eigen::MatrixBase<DerivedG>& G,
                             const DecoderWeights& W_dec, GradW& grad_W_dec, std::vector<Scalar>& gradient,
                             bool accumulate) {
  resize_with_headroom(gradient, codes.latent.size());
  SAE_OMP(parallel for schedule(dynamic, 64) if (worth_parallel(codes.nonzeros() * G.cols())))
  for (Index f = 0; f < codes.cols; ++f) {
    const auto w = W_dec.row(f);
    auto grad_row = grad_W_dec.row(f);
    if (!accumulate) grad_row.setZero();
    const Index end = codes.latent_start[f + 1];
    Index p = codes.latent_start[f];
    for (; p + 4 <= end; p += 4) {
      const Index* j = &codes.by_latent_entry[p];
      const auto g0 = G.row(codes.by_latent_row[p]), g1 = G.row(codes.by_latent_row[p + 1]),
                 g2 = G.row(codes.by_latent_row[p + 2]), g3 = G.row(codes.by_latent_row[p + 3]);
      gradient[j[0]] = g0.dot(w);
      gradient[j[1]] = g1.dot(w);
      gradient[j[2]] = g2.dot(w);
      gradient[j[3]] = g3.dot(w);
      grad_row.noalias() += codes.value[j[0]] * g0 + codes.value[j[1]] * g1 + codes.value[j[2]] * g2 +
                            codes.value[j[3]] * g3;
    }
    for (; p < end; ++p) {
      const Index j = codes.by_latent_entry[p];
      const auto g = G.row(codes.by_latent_row[p]);
      gradient[j] = g.dot(w);
      grad_row.noalias() += codes.value[j] * g;
    }
  }
}

/// grad_W_enc = Aᵀ G_P and latent_sums = Σ_b G_P (or += with `accumulate`),
/// where G_P is nonzero only at the entries of `pattern` (its values are
/// `gradient`) and A = X − 1 shiftᵀ (shift = b_dec for a model that centres
/// its input, else nullptr: A = X). Each latent's encoder column is a sum of
/// the input rows where it is active (four per pass over the column), less
/// shift times the column's sum, all while the column is in cache. Needs
/// pattern.index_by_latent().
template <typename Scalar, typename DerivedX, typename GradW, typename Sums>
void sparse_encoder_gradient(const SparseCodes<Scalar>& pattern, const std::vector<Scalar>& gradient,
                             const Eigen::MatrixBase<DerivedX>& X, const Scalar* shift, GradW& grad_W_enc,
                             Sums& latent_sums, bool accumulate) {
  const Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, 1>> shift_vector(shift, shift ? X.cols() : 0);
  SAE_OMP(parallel for schedule(dynamic, 64) if (worth_parallel(pattern.nonzeros() * X.cols())))
  for (Index f = 0; f < pattern.cols; ++f) {
    auto column = grad_W_enc.col(f);
    if (!accumulate) column.setZero();
    Scalar sum = 0;
    const Index end = pattern.latent_start[f + 1];
    Index p = pattern.latent_start[f];
    for (; p + 4 <= end; p += 4) {
      const Scalar g0 = gradient[pattern.by_latent_entry[p]], g1 = gradient[pattern.by_latent_entry[p + 1]],
                   g2 = gradient[pattern.by_latent_entry[p + 2]], g3 = gradient[pattern.by_latent_entry[p + 3]];
      column.noalias() += (g0 * X.row(pattern.by_latent_row[p]) + g1 * X.row(pattern.by_latent_row[p + 1]) +
                           g2 * X.row(pattern.by_latent_row[p + 2]) + g3 * X.row(pattern.by_latent_row[p + 3]))
                              .transpose();
      sum += g0;
      sum += g1;
      sum += g2;
      sum += g3;
    }
    for (; p < end; ++p) {
      const Scalar g = gradient[pattern.by_latent_entry[p]];
      column.noalias() += g * X.row(pattern.by_latent_row[p]).transpose();
      sum += g;
    }
    if (shift && sum != Scalar(0)) column.noalias() -= sum * shift_vector;
    latent_sums(f) = accumulate ? latent_sums(f) + sum : sum;
  }
}

}  // namespace detail
}  // namespace sae
