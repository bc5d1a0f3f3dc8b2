// sae/loss/loss_report.hpp: what an objective reports about one batch.
#pragma once

namespace sae {

/// The loss of one batch and its parts, in double whatever the model's Scalar.
struct LossReport {
  double loss = 0;  ///< the value whose gradient the objective returns: l2 + coefficient * l1
  double l2 = 0;    ///< reconstruction: mean over the batch of the summed squared error
  double l1 = 0;    ///< the sparsity term before its coefficient, reduced as the objective says
  double l0 = 0;    ///< mean count of nonzero codes per row
};

}  // namespace sae
