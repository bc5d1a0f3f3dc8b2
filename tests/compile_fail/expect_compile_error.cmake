# cmake -P expect_compile_error.cmake: build TARGET (one compile-fail source) in
# BUILD_DIR and succeed only if the build FAILS with output matching the regex
# on SOURCE's first line, `// EXPECT-ERROR: <CMake regex>`.
# Variables (-D): CMAKE_COMMAND, BUILD_DIR, TARGET, SOURCE, CONFIG.
cmake_minimum_required(VERSION 3.16)

file(STRINGS "${SOURCE}" first_line LIMIT_COUNT 1)
if(NOT first_line MATCHES "^// EXPECT-ERROR: (.+)$")
  message(FATAL_ERROR "${SOURCE}: first line must be `// EXPECT-ERROR: <regex>`")
endif()
string(STRIP "${CMAKE_MATCH_1}" expected)

if(NOT CONFIG)
  set(CONFIG Release)
endif()
# Nothing to clean first: a file that fails to compile leaves no object file,
# and one that compiled is rebuilt whenever it (or a header it includes) changes.
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BUILD_DIR}" --config "${CONFIG}"
                        --target "${TARGET}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)

if(rc EQUAL 0)
  message(FATAL_ERROR
    "${SOURCE} compiled, but it must not (expected an error matching `${expected}`).\n${out}")
endif()
if(NOT out MATCHES "${expected}")
  message(FATAL_ERROR
    "${SOURCE} failed to compile, but not with the expected error.\n"
    "expected (regex): ${expected}\ncompiler output:\n${out}")
endif()
message(STATUS "${SOURCE}: fails to compile as expected (matched `${expected}`)")
