// sae/io.hpp: the umbrella header for file formats: NumPy .npy and .npz,
// safetensors, the layouts SAEs are published in (load_pretrained,
// save_pretrained), and top activating rows over a .npy file. Includes
// nlohmann/json (for safetensors), so link sae::io, not just sae::sae; the
// core umbrella (sae.hpp) stays free of it.
#pragma once

#include "io/npy.hpp"
#include "io/npz.hpp"
#include "io/safetensors.hpp"
#include "io/pretrained.hpp"
#include "top_activations.hpp"
