// sae/sae.hpp: the umbrella header. Include this for the core library:
// the model, the seed's objective, the optimizers and NumPy file I/O.
#pragma once

#include "config.hpp"
#include "core/types.hpp"
#include "core/random.hpp"
