# shellcheck shell=bash
# Shared set-up for scripts/test and scripts/demo. Source it, don't run it.
#
# Environment:
#   BUILD_DIR    build directory (default: <repo>/build)
#   BUILD_TYPE   CMake build type (default: Release)
#   SAE_WERROR   ON to build sae's own targets with -Werror (default: OFF)
#   CMAKE_ARGS   extra arguments for the configure step (word-split)

SAE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$SAE_ROOT/build}"
BUILD_TYPE="${BUILD_TYPE:-Release}"
SAE_WERROR="${SAE_WERROR:-OFF}"
JOBS="$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)"

# Debian packages the build and tests need (nlohmann-json3-dev, zlib1g-dev and
# python3-numpy are for the file formats, sae::io, and their reference scripts;
# chromium renders sae_report's page headless in the sae.report.browser test,
# which is skipped where chromium is absent; libopenblas-openmp-dev is the
# OpenBLAS that SAE_USE_BLAS links with OpenMP, tested by sae.openblas).
SAE_PACKAGES=(make pkg-config libeigen3-dev catch2 nlohmann-json3-dev zlib1g-dev python3-numpy chromium
              libopenblas-openmp-dev)

# What scripts/test's sanitizer stage adds to them: clang and its sanitizer and
# libFuzzer runtimes (a separate package in Debian 12, for clang 14).
# shellcheck disable=SC2034  # used by scripts/test
SAE_SANITIZER_PACKAGES=(clang libclang-rt-14-dev)

# Messages go to stderr so a script's stdout carries only its own output.
section() { printf '\n==== %s ====\n' "$*" >&2; }
note() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Install whatever of SAE_PACKAGES is missing (Debian/Ubuntu, via apt-get).
ensure_packages() {
  section "Checking build dependencies"
  command -v cmake >/dev/null 2>&1 || die "cmake is not installed"
  command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || die "no C++ compiler (g++) found"

  if ! command -v dpkg >/dev/null 2>&1; then
    note "dpkg not found: not a Debian system, assuming these are installed: ${SAE_PACKAGES[*]}"
    return 0
  fi

  local missing=() pkg
  for pkg in "${SAE_PACKAGES[@]}"; do
    dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    note "all present: ${SAE_PACKAGES[*]}"
    return 0
  fi

  note "missing: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      note "Not root and no sudo. Install them with:"
      note "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
      exit 1
    fi
  fi
  "${sudo[@]}" apt-get update >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}" >&2
}

# Configure BUILD_DIR; extra arguments go to cmake.
configure() {
  section "Configuring ($BUILD_TYPE) in $BUILD_DIR"
  # shellcheck disable=SC2086  # CMAKE_ARGS is meant to be word-split
  cmake -S "$SAE_ROOT" -B "$BUILD_DIR" \
    -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DSAE_WERROR="$SAE_WERROR" \
    ${CMAKE_ARGS:-} "$@" >&2
}

# Build BUILD_DIR; extra arguments go to `cmake --build` (e.g. --target x).
build() {
  section "Building${1:+ $*} with $JOBS jobs"
  cmake --build "$BUILD_DIR" --parallel "$JOBS" "$@" >&2
}
