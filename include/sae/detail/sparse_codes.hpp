// sae/detail/sparse_codes.hpp: codes stored as their nonzero entries, and the
// kernels that decode and backpropagate through them.
//
// A trained SAE fires a few dozen of its F latents per token, and a TopK SAE
// exactly k. Stored row by row (compressed sparse rows), decoding is a gather
// of the active decoder rows and every gradient that involves the codes
// touches only the active (token, latent) pairs: B·nnz·D work instead of the
// dense B·F·D, the way OpenAI's and sparsify's kernels do it on GPUs.
#pragma once

#include <vector>

#include "../config.hpp"
#include "../core/types.hpp"

namespace sae {

/// The nonzero codes of a B x F batch, row by row: the entries of row b are
/// positions row_start[b] .. row_start[b+1] of `latent` (column) and `value`.
template <typename Scalar>
struct SparseCodes {
  Index rows = 0;
  Index cols = 0;
  std::vector<Index> row_start{0};
  std::vector<Index> latent;
  std::vector<Scalar> value;

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
  Index nonzeros() const { return static_cast<Index>(latent.size()); }

  /// The nonzero entries of a dense batch.
  template <typename Derived>
  void assign_from_dense(const Eigen::MatrixBase<Derived>& codes) {
    reset(codes.rows(), codes.cols());
    for (Index b = 0; b < codes.rows(); ++b) {
      for (Index f = 0; f < codes.cols(); ++f)
        if (codes(b, f) != Scalar(0)) push(f, codes(b, f));
      end_row();
    }
  }
};

namespace detail {

/// out = codes · W_dec (+ b_dec when given): each output row is the sum of the
/// active decoder rows, weighted by their codes.
template <typename Scalar, typename DecoderWeights, typename Out>
void sparse_decode(const SparseCodes<Scalar>& codes, const DecoderWeights& W_dec, Out& out) {
  out.resize(codes.rows, W_dec.cols());
  out.setZero();
  for (Index b = 0; b < codes.rows; ++b) {
    auto row = out.row(b);
    for (Index j = codes.row_start[b]; j < codes.row_start[b + 1]; ++j)
      row.noalias() += codes.value[j] * W_dec.row(codes.latent[j]);
  }
}

/// grad_W_dec += codesᵀ · G (G is B x D): a scatter of G's rows into the
/// active latents' rows.
template <typename Scalar, typename DerivedG, typename GradW>
void sparse_decoder_gradient(const SparseCodes<Scalar>& codes, const Eigen::MatrixBase<DerivedG>& G, GradW& grad_W_dec) {
  for (Index b = 0; b < codes.rows; ++b)
    for (Index j = codes.row_start[b]; j < codes.row_start[b + 1]; ++j)
      grad_W_dec.row(codes.latent[j]).noalias() += codes.value[j] * G.row(b);
}

/// gradient[j] = G.row(b) · W_dec.row(latent[j]) for every active entry j of
/// row b: (G W_decᵀ) at the active entries only.
template <typename Scalar, typename DerivedG, typename DecoderWeights>
void sparse_code_gradient(const SparseCodes<Scalar>& codes, const Eigen::MatrixBase<DerivedG>& G,
                          const DecoderWeights& W_dec, std::vector<Scalar>& gradient) {
  gradient.resize(codes.latent.size());
  for (Index b = 0; b < codes.rows; ++b)
    for (Index j = codes.row_start[b]; j < codes.row_start[b + 1]; ++j)
      gradient[j] = G.row(b).dot(W_dec.row(codes.latent[j]));
}

/// grad_W_enc += Xᵀ G_P and latent_sums += Σ_b G_P, where G_P is nonzero only
/// at the active entries of `pattern` (its values are `gradient`): a scatter
/// of input rows into the active latents' encoder columns.
template <typename Scalar, typename DerivedX, typename GradW, typename Sums>
void sparse_encoder_gradient(const SparseCodes<Scalar>& pattern, const std::vector<Scalar>& gradient,
                             const Eigen::MatrixBase<DerivedX>& X, GradW& grad_W_enc, Sums& latent_sums) {
  for (Index b = 0; b < pattern.rows; ++b)
    for (Index j = pattern.row_start[b]; j < pattern.row_start[b + 1]; ++j) {
      const Index f = pattern.latent[j];
      grad_W_enc.col(f).noalias() += gradient[j] * X.row(b).transpose();
      latent_sums(f) += gradient[j];
    }
}

}  // namespace detail
}  // namespace sae
