// sae/detail/shape_check.hpp: run-time and compile-time shape checks with
// messages that name what was expected and what arrived.
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>

#include "../config.hpp"

namespace sae {
namespace detail {

inline std::string shape_string(Index rows, Index cols) {
  return std::to_string(rows) + " x " + std::to_string(cols);
}

/// Throws std::invalid_argument "<where>: <what> has <actual> <dimension>, expected <expected>".
inline void require_size(Index actual, Index expected, const char* where, const char* what,
                         const char* dimension) {
  if (actual != expected) {
    throw std::invalid_argument(std::string(where) + ": " + what + " has " + std::to_string(actual) + " " +
                                dimension + ", expected " + std::to_string(expected));
  }
}

/// Throws std::invalid_argument unless `m` is exactly rows x cols.
template <typename Derived>
void require_shape(const Eigen::EigenBase<Derived>& m, Index rows, Index cols, const char* where,
                   const char* what) {
  if (m.rows() != rows || m.cols() != cols) {
    throw std::invalid_argument(std::string(where) + ": " + what + " is " + shape_string(m.rows(), m.cols()) +
                                ", expected " + shape_string(rows, cols));
  }
}

/// True when two compile-time sizes can agree (either may be Dynamic).
constexpr bool sizes_compatible(int a, int b) { return a == Eigen::Dynamic || b == Eigen::Dynamic || a == b; }

/// Compile-time checks shared by every function that takes a batch or vector
/// from the user. `Expected` is the model's compile-time width.
template <typename Derived, typename Scalar>
constexpr void static_check_scalar() {
  static_assert(std::is_same<typename Derived::Scalar, Scalar>::value,
                "sae: the argument's scalar type differs from the model's Scalar; "
                "convert it first with .template cast<Scalar>()");
}

}  // namespace detail
}  // namespace sae
