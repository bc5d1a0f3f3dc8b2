// sae/core/parameters.hpp: the trainable tensors of a sparse autoencoder.
//
// Shapes follow SAELens: W_enc is D x F, b_enc has length F, W_dec is F x D
// (row f is latent f's direction in activation space), b_dec has length D.
// W_enc is column-major and W_dec row-major, so each latent's encoder column
// and decoder row are contiguous, and W_enc = W_dec^T is one contiguous copy.
//
// Some architectures add per-latent vectors of their own (SAELens' names):
// JumpReLU its `threshold`, Gated `r_mag` and `b_mag` (its gate bias is b_enc).
// They have length F in a model of that architecture and are empty (length 0)
// otherwise; every loop over the parameters (optimizers, clipping,
// checkpoints) visits all seven, so an empty one simply costs nothing.
#pragma once

#include <type_traits>

#include "../config.hpp"
#include "../detail/shape_check.hpp"
#include "types.hpp"

namespace sae {

template <typename Scalar_, int D = Dynamic, int F = Dynamic>
struct Parameters {
  static_assert(std::is_floating_point<Scalar_>::value, "sae: Scalar must be float or double");
  static_assert(D == Dynamic || D > 0, "sae: input_dim D must be positive (or Eigen::Dynamic)");
  static_assert(F == Dynamic || F > 0, "sae: dict_size F must be positive (or Eigen::Dynamic)");

  using Scalar = Scalar_;
  static constexpr int InputDim = D;
  static constexpr int DictSize = F;

  using EncoderWeights = detail::Storage<Scalar, D, F, Eigen::ColMajor>;  // D x F
  using EncoderBias = Vector<Scalar, F>;                                  // F
  using DecoderWeights = detail::Storage<Scalar, F, D, Eigen::RowMajor>;  // F x D
  using DecoderBias = Vector<Scalar, D>;                                  // D
  using LatentVector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;          // F, or empty

  EncoderWeights W_enc;
  EncoderBias b_enc;
  DecoderWeights W_dec;
  DecoderBias b_dec;
  LatentVector threshold;  ///< JumpReLU: latent f fires when its pre-activation exceeds threshold(f)
  LatentVector r_mag;      ///< Gated: the magnitude path's encoder column f is W_enc column f × exp(r_mag(f))
  LatentVector b_mag;      ///< Gated: the magnitude path's bias

  /// Zero tensors of the compile-time sizes; empty ones where a size is Dynamic.
  Parameters() {
    if constexpr (D != Dynamic && F != Dynamic) resize(D, F);
  }

  /// Zero tensors of the given sizes (which must match any compile-time size).
  Parameters(Index input_dim, Index dict_size) { resize(input_dim, dict_size); }

  Index input_dim() const { return W_enc.rows(); }
  Index dict_size() const { return W_enc.cols(); }

  /// Sizes the four core tensors for (input_dim, dict_size) and zeroes them;
  /// the architecture's vectors become empty.
  void resize(Index input_dim, Index dict_size) {
    check_sizes(input_dim, dict_size, "sae::Parameters");
    W_enc.setZero(input_dim, dict_size);
    b_enc.setZero(dict_size);
    W_dec.setZero(dict_size, input_dim);
    b_dec.setZero(input_dim);
    threshold.resize(0);
    r_mag.resize(0);
    b_mag.resize(0);
  }

  /// Zero tensors of the same shapes as `other`'s, architecture vectors included.
  void resize_like(const Parameters& other) {
    resize(other.input_dim(), other.dict_size());
    threshold.setZero(other.threshold.size());
    r_mag.setZero(other.r_mag.size());
    b_mag.setZero(other.b_mag.size());
  }

  /// True when every tensor has the same shape as `other`'s.
  bool same_shapes(const Parameters& other) const {
    return input_dim() == other.input_dim() && dict_size() == other.dict_size() &&
           threshold.size() == other.threshold.size() && r_mag.size() == other.r_mag.size() &&
           b_mag.size() == other.b_mag.size();
  }

  void set_zero() {
    for_each([](const char*, auto& t) { t.setZero(); });
  }

  /// Throws std::invalid_argument unless the four tensors agree with each
  /// other: W_enc D x F, b_enc F, W_dec F x D, b_dec D.
  void check_consistent(const char* where = "sae::Parameters") const {
    const Index d = input_dim(), f = dict_size();
    check_sizes(d, f, where);
    detail::require_shape(b_enc, f, 1, where, "b_enc");
    detail::require_shape(W_dec, f, d, where, "W_dec");
    detail::require_shape(b_dec, d, 1, where, "b_dec");
    check_latent_vector(threshold, "threshold", where);
    check_latent_vector(r_mag, "r_mag", where);
    check_latent_vector(b_mag, "b_mag", where);
  }

  /// Number of tensors for_each visits.
  static constexpr int tensor_count = 7;

  /// Calls fn(name, tensor) for W_enc, b_enc, W_dec, b_dec, threshold, r_mag,
  /// b_mag, in that order (the last three possibly empty).
  template <typename Fn>
  void for_each(Fn&& fn) {
    fn("W_enc", W_enc);
    fn("b_enc", b_enc);
    fn("W_dec", W_dec);
    fn("b_dec", b_dec);
    fn("threshold", threshold);
    fn("r_mag", r_mag);
    fn("b_mag", b_mag);
  }
  template <typename Fn>
  void for_each(Fn&& fn) const {
    fn("W_enc", W_enc);
    fn("b_enc", b_enc);
    fn("W_dec", W_dec);
    fn("b_dec", b_dec);
    fn("threshold", threshold);
    fn("r_mag", r_mag);
    fn("b_mag", b_mag);
  }

 private:
  static void check_sizes(Index input_dim, Index dict_size, const char* where) {
    if (input_dim <= 0 || dict_size <= 0) {
      throw std::invalid_argument(std::string(where) + ": sizes must be positive, got input_dim " +
                                  std::to_string(input_dim) + " and dict_size " + std::to_string(dict_size));
    }
    if (D != Dynamic) detail::require_size(input_dim, D, where, "input_dim", "(compile-time D)");
    if (F != Dynamic) detail::require_size(dict_size, F, where, "dict_size", "(compile-time F)");
  }

  void check_latent_vector(const LatentVector& v, const char* name, const char* where) const {
    if (v.size() != 0 && v.size() != dict_size())
      throw std::invalid_argument(std::string(where) + ": " + name + " has " + std::to_string(v.size()) +
                                  " entries, expected dict_size " + std::to_string(dict_size()) +
                                  " (or none, for architectures without it)");
  }
};

/// Zero parameters of the same type and sizes as `p`: the buffer for gradients.
template <typename Scalar, int D, int F>
Parameters<Scalar, D, F> zeros_like(const Parameters<Scalar, D, F>& p) {
  Parameters<Scalar, D, F> zeros;
  zeros.resize_like(p);
  return zeros;
}

/// Calls fn(name, a_tensor, b_tensor) for the matching tensors of two parameter
/// sets of the same type (parameters and their gradients, say), after checking
/// that every pair has the same shape.
template <typename Scalar, int D, int F, typename Other, typename Fn>
void for_each_pair(Parameters<Scalar, D, F>& a, Other& b, const char* where, Fn&& fn) {
  static_assert(std::is_same<std::remove_const_t<Other>, Parameters<Scalar, D, F>>::value,
                "sae: both parameter sets must have the same type");
  detail::require_shape(b.W_enc, a.W_enc.rows(), a.W_enc.cols(), where, "W_enc of the second set");
  detail::require_shape(b.b_enc, a.b_enc.rows(), 1, where, "b_enc of the second set");
  detail::require_shape(b.W_dec, a.W_dec.rows(), a.W_dec.cols(), where, "W_dec of the second set");
  detail::require_shape(b.b_dec, a.b_dec.rows(), 1, where, "b_dec of the second set");
  detail::require_shape(b.threshold, a.threshold.rows(), 1, where, "threshold of the second set");
  detail::require_shape(b.r_mag, a.r_mag.rows(), 1, where, "r_mag of the second set");
  detail::require_shape(b.b_mag, a.b_mag.rows(), 1, where, "b_mag of the second set");
  fn("W_enc", a.W_enc, b.W_enc);
  fn("b_enc", a.b_enc, b.b_enc);
  fn("W_dec", a.W_dec, b.W_dec);
  fn("b_dec", a.b_dec, b.b_dec);
  fn("threshold", a.threshold, b.threshold);
  fn("r_mag", a.r_mag, b.r_mag);
  fn("b_mag", a.b_mag, b.b_mag);
}

}  // namespace sae
