# cmake -P build_and_run.cmake: configure, build and run a consumer project from
# scratch. Variables (-D): SOURCE_DIR, BINARY_DIR, GENERATOR, CXX_COMPILER,
# CONFIG, CACHE_ARGS ("|"-separated -D options), and optionally
# GENERATOR_PLATFORM, GENERATOR_TOOLSET, MAKE_PROGRAM, CMAKE_COMMAND.
cmake_minimum_required(VERSION 3.16)

foreach(var SOURCE_DIR BINARY_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "build_and_run.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT CONFIG)
  set(CONFIG Release)
endif()

string(REPLACE "|" ";" cache_args "${CACHE_ARGS}")
set(configure_args -S "${SOURCE_DIR}" -B "${BINARY_DIR}" -G "${GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_BUILD_TYPE=${CONFIG}"
    # Only what we pass may be found: no user/system package registries.
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
    ${cache_args})
if(GENERATOR_PLATFORM)
  list(APPEND configure_args -A "${GENERATOR_PLATFORM}")
endif()
if(GENERATOR_TOOLSET)
  list(APPEND configure_args -T "${GENERATOR_TOOLSET}")
endif()
if(MAKE_PROGRAM)
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer ${what} failed (${rc}): ${ARGN}")
  endif()
endfunction()

file(REMOVE_RECURSE "${BINARY_DIR}")
message(STATUS "consumer: configure ${SOURCE_DIR}")
run_step(configure "${CMAKE_COMMAND}" ${configure_args})
message(STATUS "consumer: build")
run_step(build "${CMAKE_COMMAND}" --build "${BINARY_DIR}" --config "${CONFIG}")

set(app "")
foreach(candidate "${BINARY_DIR}/app" "${BINARY_DIR}/${CONFIG}/app"
                  "${BINARY_DIR}/app.exe" "${BINARY_DIR}/${CONFIG}/app.exe")
  if(EXISTS "${candidate}" AND NOT IS_DIRECTORY "${candidate}")
    set(app "${candidate}")
    break()
  endif()
endforeach()
if(NOT app)
  message(FATAL_ERROR "consumer: built, but no `app` executable found under ${BINARY_DIR}")
endif()
message(STATUS "consumer: run ${app}")
run_step(run "${app}")
