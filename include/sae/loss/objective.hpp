// sae/loss/objective.hpp: calling an objective.
//
// An objective (L1Objective, TopKObjective, JumpReLUObjective, GatedObjective)
// is a small struct of hyper-parameters with two methods, ensmallen-style:
//
//   LossReport evaluate(model, X, workspace) const;
//   LossReport evaluate_with_gradient(model, X, grads, workspace) const;
//
// evaluate_with_gradient writes into `grads` (sized like model.params() if it
// is not) the exact gradient of the returned r.loss with respect to every
// parameter (straight-through estimates where the architecture has a step
// function, as its header says). These free functions are the usual way in.
#pragma once

#include "../core/parameters.hpp"
#include "../core/sparse_autoencoder.hpp"
#include "loss_report.hpp"
#include "workspace.hpp"

namespace sae {

/// Loss and gradient of `objective` for `model` on the batch X, into `grads`.
/// Reuses `workspace`'s buffers: the form to call in a training loop.
template <typename Scalar, int D, int F, typename Activation, typename Derived, typename Objective>
LossReport loss_and_gradient(const SparseAutoEncoder<Scalar, D, F, Activation>& model,
                             const Eigen::MatrixBase<Derived>& X, const Objective& objective,
                             Parameters<Scalar, D, F>& grads, LossWorkspace<Scalar>& workspace) {
  return objective.evaluate_with_gradient(model, X, grads, workspace);
}

/// As above with a fresh workspace (allocates its buffers on every call).
template <typename Scalar, int D, int F, typename Activation, typename Derived, typename Objective>
LossReport loss_and_gradient(const SparseAutoEncoder<Scalar, D, F, Activation>& model,
                             const Eigen::MatrixBase<Derived>& X, const Objective& objective,
                             Parameters<Scalar, D, F>& grads) {
  LossWorkspace<Scalar> workspace;
  return objective.evaluate_with_gradient(model, X, grads, workspace);
}

/// The loss of `objective` for `model` on X, without gradients.
template <typename Scalar, int D, int F, typename Activation, typename Derived, typename Objective>
LossReport loss(const SparseAutoEncoder<Scalar, D, F, Activation>& model, const Eigen::MatrixBase<Derived>& X,
                const Objective& objective) {
  LossWorkspace<Scalar> workspace;
  return objective.evaluate(model, X, workspace);
}

}  // namespace sae
