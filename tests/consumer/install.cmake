# cmake -P install.cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DPREFIX=... -DINCLUDEDIR=...
#   -DCMAKEDIR=... -DPKGCONFIGDIR=... [-DCONFIG=...]:
# a fresh install of the sae build tree into PREFIX, then a check of its layout.
cmake_minimum_required(VERSION 3.16)
if(NOT CONFIG)
  set(CONFIG Release)
endif()

file(REMOVE_RECURSE "${PREFIX}")
execute_process(
  COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}" --config "${CONFIG}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed (${rc})")
endif()

# Everything under include/sae in the source tree must be installed.
file(GLOB_RECURSE headers RELATIVE "${SOURCE_DIR}/include" "${SOURCE_DIR}/include/sae/*.hpp")
if(NOT headers)
  message(FATAL_ERROR "no headers found under ${SOURCE_DIR}/include/sae")
endif()
set(missing "")
foreach(h IN LISTS headers)
  if(NOT EXISTS "${PREFIX}/${INCLUDEDIR}/${h}")
    list(APPEND missing "${INCLUDEDIR}/${h}")
  endif()
endforeach()
if(missing)
  message(FATAL_ERROR "not installed: ${missing}")
endif()
foreach(f "${CMAKEDIR}/saeConfig.cmake" "${CMAKEDIR}/saeConfigVersion.cmake"
          "${CMAKEDIR}/saeTargets.cmake" "${PKGCONFIGDIR}/sae.pc")
  if(NOT EXISTS "${PREFIX}/${f}")
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()
list(LENGTH headers n)
message(STATUS "installed ${n} headers into ${PREFIX}/include/sae")
