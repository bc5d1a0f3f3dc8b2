// sae/config.hpp: the one place that pulls in Eigen and checks the toolchain.
//
// Every other sae header includes this first. It does not define any Eigen
// configuration macro (EIGEN_DONT_PARALLELIZE, EIGEN_DEFAULT_TO_ROW_MAJOR,
// EIGEN_USE_BLAS, ...): those are the consumer's choice, made before the first
// Eigen include or through the CMake options of this project.
#pragma once

#if __cplusplus < 201703L && !(defined(_MSVC_LANG) && _MSVC_LANG >= 201703L)
#error "sae needs C++17 or later (compile with -std=c++17)"
#endif

#include <Eigen/Core>

#if !EIGEN_VERSION_AT_LEAST(3, 4, 0)
#error "sae needs Eigen 3.4 or later"
#endif

#include "version.hpp"

namespace sae {

/// Index type for sizes and positions, the same as Eigen's.
using Index = Eigen::Index;

/// Marks a size that is given at run time (the same value as Eigen::Dynamic).
inline constexpr int Dynamic = Eigen::Dynamic;

}  // namespace sae
