// sae/sae.hpp: the umbrella header. Include this for the core library:
// the model, the seed's objective, the optimizers, NumPy file I/O, metrics
// and the synthetic ground-truth data set.
#pragma once

#include "config.hpp"
#include "core/types.hpp"
#include "core/random.hpp"
#include "core/parameters.hpp"
#include "core/init.hpp"
#include "core/activation.hpp"
#include "core/topk.hpp"
#include "core/jumprelu.hpp"
#include "core/gated.hpp"
#include "core/sparse_autoencoder.hpp"
#include "core/batchtopk_export.hpp"
#include "core/any_activation.hpp"
#include "loss/loss_report.hpp"
#include "loss/workspace.hpp"
#include "loss/objective.hpp"
#include "loss/l1_objective.hpp"
#include "loss/topk_objective.hpp"
#include "loss/jumprelu_objective.hpp"
#include "loss/gated_objective.hpp"
#include "optim/sgd.hpp"
#include "optim/adam.hpp"
#include "io/npy.hpp"
#include "metrics.hpp"
#include "data/synthetic.hpp"
