// sae/core/sparse_autoencoder.hpp: the sparse autoencoder model.
//
//     codes  f = act(a W_enc)          a = x − b_dec if apply_b_dec_to_input(), else x
//     recon  x̂ = f W_dec + b_dec
//
// `act` is the architecture, a policy given as the fourth template argument:
// ReLU (the seed: f = ReLU(a W_enc + b_enc), the default), TopK, BatchTopK,
// JumpReLU or Gated (sae/core/activation.hpp describes the policies). Every
// architecture shares the decoder, the parameters, the trainer and the file
// formats.
//
// The model holds parameters and computes encode/decode; it does not train
// itself. Objectives (sae/loss) compute losses and gradients from it, and
// optimizers (sae/optim) update its params().
//
// Argument conventions (every method):
//   - a batch is B x D, one activation per row (any Eigen expression; row-major
//     sae::Batch avoids a copy); the result is a row-major B x F (or B x D) Batch;
//   - a compile-time column vector (Eigen::VectorXf, Vector<float, 768>, ...) is
//     one activation and gives a column vector back (unless the width is the
//     compile-time 1, where it is a batch);
//   - a wrong width throws std::invalid_argument naming expected and actual
//     sizes; a wrong compile-time width or scalar type is a static_assert.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "../config.hpp"
#include "../detail/buffers.hpp"
#include "../detail/parallel.hpp"
#include "../detail/products.hpp"
#include "../detail/shape_check.hpp"
#include "../detail/sparse_codes.hpp"
#include "activation.hpp"
#include "gated.hpp"
#include "init.hpp"
#include "jumprelu.hpp"
#include "parameters.hpp"
#include "topk.hpp"
#include "types.hpp"

namespace sae {

struct AnyActivation;  // core/any_activation.hpp: an architecture chosen at run time

/// Reconstruction and codes of one forward pass; `auto [recon, codes] = m.forward(X);`.
template <typename Recon, typename Codes>
struct ForwardResult {
  Recon recon;
  Codes codes;
};

template <typename Scalar_, int D = Dynamic, int F = Dynamic, typename Activation_ = ReLU>
class SparseAutoEncoder {
 public:
  using Scalar = Scalar_;
  using Activation = Activation_;
  using Params = Parameters<Scalar, D, F>;
  static constexpr int InputDim = D;
  static constexpr int DictSize = F;

  using InputBatch = Batch<Scalar, D>;  // B x D
  using CodeBatch = Batch<Scalar, F>;   // B x F
  using InputVector = Vector<Scalar, D>;
  using CodeVector = Vector<Scalar, F>;

  /// Compile-time sizes only: a model initialised by `init` from `seed`.
  explicit SparseAutoEncoder(Init init = Init::LinearDefault, std::uint64_t seed = 0) {
    static_assert(D != Dynamic && F != Dynamic,
                  "sae: this model has a run-time size; construct it as SparseAutoEncoder<Scalar>(input_dim, "
                  "dict_size)");
    initialize(params_, init, seed);
    adopt_activation();
  }

  /// A D x F model initialised by `init` from `seed`. Sizes must be positive
  /// and match any compile-time size.
  SparseAutoEncoder(Index input_dim, Index dict_size, Init init = Init::LinearDefault, std::uint64_t seed = 0)
      : params_(input_dim, dict_size) {
    initialize(params_, init, seed);
    adopt_activation();
  }

  /// A D x F model of the given architecture settings (`TopK{64}`, say).
  SparseAutoEncoder(Index input_dim, Index dict_size, Activation activation, Init init = Init::LinearDefault,
                    std::uint64_t seed = 0)
      : params_(input_dim, dict_size), activation_(std::move(activation)) {
    initialize(params_, init, seed);
    adopt_activation();
  }

  /// A model with the given parameters (loaded from a file, say); their shapes
  /// must agree, and include what the architecture needs (a JumpReLU
  /// threshold, say; missing ones are created as the architecture initialises them).
  explicit SparseAutoEncoder(Params params, Activation activation = Activation{}, bool apply_b_dec_to_input = false)
      : params_(std::move(params)), activation_(std::move(activation)), apply_b_dec_to_input_(apply_b_dec_to_input) {
    params_.check_consistent("sae::SparseAutoEncoder");
    adopt_activation();
  }

  Index input_dim() const { return params_.input_dim(); }
  Index dict_size() const { return params_.dict_size(); }

  /// The architecture's settings (k, a BatchTopK threshold, ...).
  const Activation& activation() const { return activation_; }
  Activation& activation() { return activation_; }

  /// Whether b_dec is subtracted from the input before encoding (SAELens'
  /// apply_b_dec_to_input; dictionary_learning's standard SAE does it, the
  /// seed and Gemma Scope do not). Off by default.
  bool apply_b_dec_to_input() const { return apply_b_dec_to_input_; }
  bool& apply_b_dec_to_input() { return apply_b_dec_to_input_; }

  /// Throws std::invalid_argument unless the parameters are consistent and
  /// hold what the architecture needs. Call after editing params() by hand.
  void check(const char* where = "sae::SparseAutoEncoder") const {
    params_.check_consistent(where);
    activation_.check(params_, where);
  }

  /// The parameters, for optimizers and for reading or editing weights.
  /// Keep the shapes: the model's methods assume W_enc D x F, b_enc F, W_dec F x D, b_dec D.
  Params& params() { return params_; }
  const Params& params() const { return params_; }

  // ---- encode -------------------------------------------------------------

  /// Codes of a batch (B x D → B x F) or of one activation (D → F).
  template <typename Derived>
  auto encode(const Eigen::MatrixBase<Derived>& x) const {
    if constexpr (is_single<Derived, D>) {
      check_vector<Derived, D>(x, input_dim(), "sae::SparseAutoEncoder::encode", "activation");
      CodeVector codes = params_.W_enc.transpose() * x.derived();
      if (apply_b_dec_to_input_) codes.noalias() -= params_.W_enc.transpose() * params_.b_dec;
      Eigen::Map<Batch<Scalar, F>> row(codes.data(), 1, dict_size());
      activation_.encode_in_place(params_, row);
      return codes;
    } else {
      CodeBatch codes;
      encode(x, codes);
      return codes;
    }
  }

  /// Codes of a batch written into `codes` (resized only if its shape differs,
  /// so a reused buffer costs no allocation).
  template <typename Derived>
  void encode(const Eigen::MatrixBase<Derived>& X, CodeBatch& codes) const {
    check_batch<Derived, D>(X, input_dim(), "sae::SparseAutoEncoder::encode", "input batch");
    const RowMap start = encoder_start_row();
    if (kernel_codes(activation_, start, X, codes)) return;
    detail::start_rows_then_add_product(start, X, params_.W_enc, codes);
    activation_.encode_in_place(params_, codes);
  }

  /// The encoder product H = A W_enc written into `H` (A = X − b_dec when
  /// apply_b_dec_to_input()): what the architecture turns into codes. The
  /// objectives start from it.
  template <typename Derived, typename Out>
  void encoder_product(const Eigen::MatrixBase<Derived>& X, Out& H) const {
    check_batch<Derived, D>(X, input_dim(), "sae::SparseAutoEncoder::encoder_product", "input batch");
    detail::start_rows_then_add_product(encoder_start_row(), X, params_.W_enc, H);
  }

  // ---- decode -------------------------------------------------------------

  /// Reconstruction from codes (B x F → B x D) or from one code vector (F → D).
  template <typename Derived>
  auto decode(const Eigen::MatrixBase<Derived>& codes) const {
    if constexpr (is_single<Derived, F>) {
      check_vector<Derived, F>(codes, dict_size(), "sae::SparseAutoEncoder::decode", "code vector");
      InputVector recon = params_.W_dec.transpose() * codes.derived();
      recon += params_.b_dec;
      return recon;
    } else {
      InputBatch recon;
      decode(codes, recon);
      return recon;
    }
  }

  /// Reconstruction written into `recon` (resized only if its shape differs).
  template <typename Derived>
  void decode(const Eigen::MatrixBase<Derived>& codes, InputBatch& recon) const {
    check_batch<Derived, F>(codes, dict_size(), "sae::SparseAutoEncoder::decode", "code batch");
    // A trained SAE's codes are mostly zeros: then only the active decoder rows are gathered.
    if (detail::decode_if_sparse(codes, params_.W_dec, params_.b_dec, recon)) return;
    detail::start_rows_then_add_product(params_.b_dec.transpose(), codes, params_.W_dec, recon);
  }

  // ---- forward ------------------------------------------------------------

  /// Reconstruction and codes in one call: `auto [recon, codes] = m.forward(X);`.
  template <typename Derived>
  auto forward(const Eigen::MatrixBase<Derived>& x) const {
    auto codes = encode(x);
    auto recon = decode(codes);
    return ForwardResult<decltype(recon), decltype(codes)>{std::move(recon), std::move(codes)};
  }

 private:
  // A compile-time column vector is one activation, unless the width itself is 1.
  template <typename Derived, int Width>
  static constexpr bool is_single = Derived::ColsAtCompileTime == 1 && Width != 1;

  template <typename Derived, int Width>
  static void check_batch(const Eigen::MatrixBase<Derived>& X, Index width, const char* where, const char* what) {
    detail::static_check_scalar<Derived, Scalar>();
    static_assert(detail::sizes_compatible(Derived::ColsAtCompileTime, Width),
                  "sae: the batch's compile-time column count differs from the model's size "
                  "(a batch is B x D for encode, B x F for decode: one row per token)");
    detail::require_size(X.cols(), width, where, what, "columns");
  }

  template <typename Derived, int Width>
  static void check_vector(const Eigen::MatrixBase<Derived>& x, Index width, const char* where,
                           const char* what) {
    detail::static_check_scalar<Derived, Scalar>();
    static_assert(detail::sizes_compatible(Derived::RowsAtCompileTime, Width),
                  "sae: the vector's compile-time length differs from the model's size "
                  "(D for encode, F for decode)");
    detail::require_size(x.rows(), width, where, what, "entries");
  }

  using RowMap = Eigen::Map<Eigen::Matrix<Scalar, 1, Eigen::Dynamic>>;

  // A row of n of the calling thread's, read by the product's threads. Its
  // storage keeps its capacity, so warm calls allocate nothing, even with
  // models of different widths in turn (SAEs at several layers).
  static RowMap thread_row(std::vector<Scalar>& storage, Index n) {
    detail::resize_with_headroom(storage, static_cast<std::size_t>(n));
    return RowMap(storage.data(), n);
  }

  // The row every encoder product starts from: −b_decᵀ W_enc (b_dec's path
  // through A = X − b_dec), or 0, so the centring costs no pass over H.
  RowMap encoder_start_row() const {
    thread_local std::vector<Scalar> storage;
    RowMap start = thread_row(storage, dict_size());
    start.setZero();
    if (apply_b_dec_to_input_) start.noalias() -= params_.b_dec.transpose() * params_.W_enc;
    return start;
  }

  // BatchTopK's θ as a row of F thresholds (as static_cast<Scalar> makes it
  // in BatchTopK::encode_in_place).
  RowMap batchtopk_threshold_row(double theta) const {
    thread_local std::vector<Scalar> storage;
    RowMap row = thread_row(storage, dict_size());
    row.setConstant(static_cast<Scalar>(theta));
    return row;
  }

  // The codes of X by `policy` on the GEMM kernel, each tile finished as it is
  // stored: the same bits as the product followed by encode_in_place, in one
  // pass over the codes. False where the kernel has no such path (Gated,
  // double, a build without the kernel). A loaded model's AnyActivation takes
  // the path of the architecture it holds.
  template <typename Policy, typename Derived>
  bool kernel_codes(const Policy& policy, const RowMap& start, const Eigen::MatrixBase<Derived>& X,
                    CodeBatch& codes) const {
    if constexpr (std::is_same_v<Policy, AnyActivation>) {
      return std::visit([&](const auto& held) { return kernel_codes(held, start, X, codes); }, policy.policy);
    } else if constexpr (std::is_same_v<Policy, ReLU>) {
      // b_enc and the clamp at zero in the epilogue (on CPUs with AVX-512
      // BF16 first the screen, which skips the entries it proves negative).
      return detail::kernel_relu_codes(start, params_.b_enc, X, params_.W_enc, codes);
    } else if constexpr (std::is_same_v<Policy, JumpReLU>) {
      // Likewise b_enc and the thresholds.
      return detail::kernel_jumprelu_codes(start, params_.b_enc, params_.threshold, X, params_.W_enc, codes);
    } else if constexpr (std::is_same_v<Policy, TopK>) {
      // On the screen, only the entries that could be among a token's k
      // largest are summed exactly.
      return detail::kernel_topk_codes(start, params_.b_enc, policy.k, X, params_.W_enc, codes);
    } else if constexpr (std::is_same_v<Policy, BatchTopK>) {
      // Before training has set θ, TopK's rule (as above); after, JumpReLU's
      // with θ for every latent.
      if (policy.threshold < 0.0)
        return detail::kernel_topk_codes(start, params_.b_enc, policy.k, X, params_.W_enc, codes);
      return detail::kernel_jumprelu_codes(start, params_.b_enc, batchtopk_threshold_row(policy.threshold), X,
                                           params_.W_enc, codes);
    } else {
      return false;
    }
  }

  void adopt_activation() {
    activation_.add_parameters(params_);
    check("sae::SparseAutoEncoder");
  }

  Params params_;
  Activation activation_{};
  bool apply_b_dec_to_input_ = false;
};

}  // namespace sae
