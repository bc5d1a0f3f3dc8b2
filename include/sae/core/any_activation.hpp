// sae/core/any_activation.hpp: an architecture chosen at run time.
//
// A model read from a file (sae::load_pretrained) has whichever architecture
// the file says. `AnyActivation` holds one of the policies and forwards to it,
// so SparseAutoEncoder<Scalar, Dynamic, Dynamic, AnyActivation> encodes and
// decodes like the model of that architecture, bit for bit and through the
// same one-pass kernel paths (SparseAutoEncoder::encode visits the held
// policy once per batch, not per element). Training needs the concrete
// type (the objective is chosen at compile time): convert with
// with_activation<TopK>(model) and friends.
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "../config.hpp"
#include "activation.hpp"
#include "gated.hpp"
#include "jumprelu.hpp"
#include "sparse_autoencoder.hpp"
#include "topk.hpp"

namespace sae {

struct AnyActivation {
  using Variant = std::variant<ReLU, TopK, BatchTopK, JumpReLU, Gated>;
  Variant policy = ReLU{};

  AnyActivation() = default;
  template <typename Policy, typename = std::enable_if_t<!std::is_same<std::decay_t<Policy>, AnyActivation>::value>>
  AnyActivation(Policy p) : policy(std::move(p)) {}  // NOLINT: implicit, so a TopK{32} converts

  static constexpr const char* name = "any";
  /// The held architecture's name ("relu", "topk", ...).
  const char* architecture() const {
    return std::visit([](const auto& p) { return std::decay_t<decltype(p)>::name; }, policy);
  }
  template <typename Policy>
  bool holds() const {
    return std::holds_alternative<Policy>(policy);
  }
  template <typename Policy>
  const Policy& get() const {
    return std::get<Policy>(policy);
  }

  template <typename Params>
  void add_parameters(Params& p) const {
    std::visit([&](const auto& a) { a.add_parameters(p); }, policy);
  }
  template <typename Params>
  void check(const Params& p, const char* where) const {
    std::visit([&](const auto& a) { a.check(p, where); }, policy);
  }
  template <typename Params, typename Derived>
  void encode_in_place(const Params& p, Eigen::MatrixBase<Derived>& H) const {
    std::visit([&](const auto& a) { a.encode_in_place(p, H); }, policy);
  }
};

/// The same model with the architecture fixed at compile time (for training,
/// or to skip the run-time dispatch). Throws std::invalid_argument if the
/// model holds another architecture.
template <typename Policy, typename Scalar, int D, int F>
SparseAutoEncoder<Scalar, D, F, Policy> with_activation(const SparseAutoEncoder<Scalar, D, F, AnyActivation>& model) {
  if (!model.activation().template holds<Policy>())
    throw std::invalid_argument(std::string("sae::with_activation: the model is a '") +
                                model.activation().architecture() + "' SAE, not '" + Policy::name + "'");
  return SparseAutoEncoder<Scalar, D, F, Policy>(model.params(), model.activation().template get<Policy>(),
                                                 model.apply_b_dec_to_input());
}

/// A model of any fixed architecture as a run-time-architecture model.
template <typename Policy, typename Scalar, int D, int F>
SparseAutoEncoder<Scalar, D, F, AnyActivation> with_any_activation(const SparseAutoEncoder<Scalar, D, F, Policy>& model) {
  return SparseAutoEncoder<Scalar, D, F, AnyActivation>(model.params(), AnyActivation(model.activation()),
                                                        model.apply_b_dec_to_input());
}

}  // namespace sae
