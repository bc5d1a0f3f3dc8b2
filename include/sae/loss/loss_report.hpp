// sae/loss/loss_report.hpp: what an objective reports about one batch.
#pragma once

namespace sae {

/// The loss of one batch and its parts, in double whatever the model's Scalar.
struct LossReport {
  double loss = 0;       ///< the value whose gradient the objective returns
  double l2 = 0;         ///< reconstruction: mean over the batch of the summed squared error
  double l1 = 0;         ///< the L1 term before its coefficient, reduced as the objective says
                         ///< (objectives without an L1 penalty report mean_b Σ_f |f|)
  double l0 = 0;         ///< mean count of nonzero codes per row
  double auxiliary = 0;  ///< an architecture's extra term before its coefficient: TopK's
                         ///< AuxK, JumpReLU's L0 penalty, Gated's auxiliary reconstruction
};

}  // namespace sae
