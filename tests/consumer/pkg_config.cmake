# cmake -P pkg_config.cmake: compile and run SOURCE using only the flags that
# `pkg-config --cflags sae` gives for the installed prefix.
# Variables (-D): PKG_CONFIG, PKG_CONFIG_DIR, PREFIX, VERSION, CXX_COMPILER, SOURCE, BINARY_DIR.
cmake_minimum_required(VERSION 3.16)

set(ENV{PKG_CONFIG_PATH} "${PKG_CONFIG_DIR}")

execute_process(COMMAND "${PKG_CONFIG}" --modversion sae
  RESULT_VARIABLE rc OUTPUT_VARIABLE modversion ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config --modversion sae failed (${rc}): ${err}")
endif()
if(NOT modversion STREQUAL VERSION)
  message(FATAL_ERROR "pkg-config says sae ${modversion}, the project is ${VERSION}")
endif()

execute_process(COMMAND "${PKG_CONFIG}" --cflags sae
  RESULT_VARIABLE rc OUTPUT_VARIABLE cflags ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config --cflags sae failed (${rc}): ${err}")
endif()
message(STATUS "pkg-config --cflags sae: ${cflags}")
string(FIND "${cflags}" "-I${PREFIX}/" at)
if(at EQUAL -1)
  message(FATAL_ERROR "pkg-config --cflags sae does not point into ${PREFIX}: ${cflags}")
endif()
separate_arguments(cflags UNIX_COMMAND "${cflags}")

execute_process(COMMAND "${PKG_CONFIG}" --libs sae
  RESULT_VARIABLE rc OUTPUT_VARIABLE libs ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config --libs sae failed (${rc}): ${err}")
endif()
separate_arguments(libs UNIX_COMMAND "${libs}")

file(REMOVE_RECURSE "${BINARY_DIR}")
file(MAKE_DIRECTORY "${BINARY_DIR}")
set(app "${BINARY_DIR}/app")
execute_process(
  COMMAND "${CXX_COMPILER}" -std=c++17 ${cflags} "${SOURCE}" -o "${app}" ${libs}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "compiling ${SOURCE} with pkg-config flags failed (${rc})")
endif()
execute_process(COMMAND "${app}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${app} exited with ${rc}")
endif()
