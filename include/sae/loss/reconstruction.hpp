// sae/loss/reconstruction.hpp: the parts every architecture's objective shares.
//
// With A = X − a·1 b_decᵀ (a = 1 when the model applies b_dec to its input),
// H = A W_enc is the encoder product the architecture turns into codes. Given
// the gradient G_H of the loss with respect to H:
//
//     ∇W_enc = Aᵀ G_H = Xᵀ G_H − a · b_dec sᵀ       s = Σ_b G_H (length F)
//     ∇b_dec −= a · W_enc s                          (b_dec's path through A)
//
// computed without forming A: the rank-one correction costs D·F, not B·D.
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>

#include "../config.hpp"
#include "../detail/parallel.hpp"
#include "../detail/products.hpp"
#include "../detail/shape_check.hpp"
#include "../detail/sparse_codes.hpp"
#include "workspace.hpp"

namespace sae {
namespace detail {

/// Shape and scalar checks every objective makes on its batch.
template <typename Model, typename Derived>
void check_objective_input(const Model& model, const Eigen::MatrixBase<Derived>& X, const char* where) {
  static_check_scalar<Derived, typename Model::Scalar>();
  static_assert(sizes_compatible(Derived::ColsAtCompileTime, Model::InputDim),
                "sae: the batch's compile-time column count differs from the model's input_dim D");
  require_size(X.cols(), model.input_dim(), where, "input batch", "columns");
  if (X.rows() == 0) throw std::invalid_argument(std::string(where) + ": the input batch has no rows");
}

/// Turns `decoded` = codes · W_dec (B x D, before the decoder bias) into
/// x̂ − x in place and returns (1/B) Σ_b ‖x̂_b − x_b‖², the l2 term.
template <typename Model, typename DerivedX, typename Scalar>
double reconstruction_error(const Model& model, const Eigen::MatrixBase<DerivedX>& X, Batch<Scalar>& decoded) {
  decoded.rowwise() += model.params().b_dec.transpose();
  decoded -= X.derived();
  return static_cast<double>(decoded.squaredNorm()) / static_cast<double>(X.rows());
}

/// Sizes `grads` like the model's parameters if they differ (first call).
template <typename Model, typename Grads>
void size_gradients(const Model& model, Grads& grads) {
  if (!grads.same_shapes(model.params())) grads.resize_like(model.params());
}

/// b_dec's path through A = X − b_dec into ∇b_dec only: ∇b_dec −= W_enc s,
/// for s = Σ_b G_H. The sparse kernels make the ∇W_enc part column by column
/// (sparse_encoder_gradient's shift).
template <typename Model, typename Grads, typename Sums>
void add_decoder_bias_centering_gradient(const Model& model, const Sums& latent_sums, Grads& grads) {
  if (model.apply_b_dec_to_input()) grads.b_dec.noalias() -= model.params().W_enc * latent_sums;
}

/// b_dec's path through A = X − b_dec, whole: ∇W_enc −= b_dec sᵀ and
/// ∇b_dec −= W_enc s, for s = Σ_b G_H in `latent_sums`.
template <typename Model, typename Grads, typename Sums>
void add_input_centering_gradient(const Model& model, const Sums& latent_sums, Grads& grads) {
  if (!model.apply_b_dec_to_input()) return;
  // A rank-one update and a matrix-vector product: one pass over each matrix.
  grads.W_enc.noalias() -= model.params().b_dec * latent_sums.transpose();
  add_decoder_bias_centering_gradient(model, latent_sums, grads);
}

/// The shift sparse_encoder_gradient subtracts from the input rows: b_dec
/// when the model centres its input, else none.
template <typename Model>
const typename Model::Scalar* encoder_input_shift(const Model& model) {
  return model.apply_b_dec_to_input() ? model.params().b_dec.data() : nullptr;
}

/// c = b_enc − W_encᵀ b_dec into ws.encoder_bias (b_enc for a model that
/// does not centre its input): b_dec's path through A = X − 1 b_decᵀ folded
/// into the bias, so that the pre-activations are X W_enc + 1 cᵀ.
template <typename Model, typename Scalar>
void fold_encoder_bias(const Model& model, LossWorkspace<Scalar>& ws) {
  const auto& p = model.params();
  ws.encoder_bias = p.b_enc;
  if (model.apply_b_dec_to_input()) ws.encoder_bias.noalias() -= p.W_enc.transpose() * p.b_dec;
}

/// P = A W_enc + 1 b_encᵀ, the pre-activations, into ws.codes, as X W_enc +
/// 1 cᵀ (fold_encoder_bias). The rows start as c, so no pass over the B x F
/// result adds the biases after the GEMM.
template <typename Model, typename DerivedX, typename Scalar>
void pre_activations(const Model& model, const Eigen::MatrixBase<DerivedX>& X, LossWorkspace<Scalar>& ws) {
  fold_encoder_bias(model, ws);
  start_rows_then_add_product(ws.encoder_bias.transpose(), X, model.params().W_enc, ws.codes);
}

/// ReLU's codes max(0, P) into ws.codes when the GEMM kernel applies, the
/// clamp in the kernel's epilogue (the same bits as pre_activations and then
/// a pass of cwiseMax(0), without writing the B x F codes twice), and true;
/// otherwise P itself, as pre_activations leaves it, and false.
template <typename Model, typename DerivedX, typename Scalar>
bool relu_of_pre_activations(const Model& model, const Eigen::MatrixBase<DerivedX>& X, LossWorkspace<Scalar>& ws) {
  fold_encoder_bias(model, ws);
  const auto& W_enc = model.params().W_enc;
  ws.codes.resize(X.rows(), W_enc.cols());
  if constexpr (std::is_same<Scalar, float>::value) {  // the kernel's products are float
    if (gemm_kernel_product(X.derived(), W_enc, ws.codes, /*relu=*/true, ws.encoder_bias.data())) return true;
  }
  start_rows_then_add_product(ws.encoder_bias.transpose(), X, W_enc, ws.codes);
  return false;
}

/// ∇W_enc from a dense G_H (B x F): Xᵀ G_H, plus the centring correction.
/// Leaves Σ_b G_H in ws.latent_sums.
template <typename Model, typename DerivedX, typename Grads, typename Scalar>
void dense_encoder_gradient(const Model& model, const Eigen::MatrixBase<DerivedX>& X, const Batch<Scalar>& G_H,
                            Grads& grads, LossWorkspace<Scalar>& ws) {
  product_into(X.derived().transpose(), G_H, grads.W_enc);
  column_sums(G_H, ws.latent_sums);
  add_input_centering_gradient(model, ws.latent_sums, grads);
}

}  // namespace detail
}  // namespace sae
