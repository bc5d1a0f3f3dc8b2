// sae/version.hpp: the library's version, kept in step with CMakeLists.txt.
#pragma once

#define SAE_VERSION_MAJOR 0
#define SAE_VERSION_MINOR 1
#define SAE_VERSION_PATCH 0
#define SAE_VERSION_STRING "0.1.0"

namespace sae {

struct Version {
  int major, minor, patch;
};

/// The version of the headers this translation unit was compiled with.
inline constexpr Version version{SAE_VERSION_MAJOR, SAE_VERSION_MINOR, SAE_VERSION_PATCH};

}  // namespace sae
