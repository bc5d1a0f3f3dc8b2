# cmake -DPROGRAM=<path> -DARGS=<a|b|...> -DEXPECT_EXIT=<status> -DEXPECT_STDERR=<regex> -P saeExpectExit.cmake
# Runs PROGRAM with ARGS ('|'-separated) and fails unless it exits with
# EXPECT_EXIT and its standard error matches EXPECT_STDERR. For
# sae_add_exit_test (saeDevelopment.cmake): how the programs treat bad input.
string(REPLACE "|" ";" args "${ARGS}")
execute_process(COMMAND "${PROGRAM}" ${args} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status STREQUAL "${EXPECT_EXIT}")
  message(FATAL_ERROR "exit status ${status}, expected ${EXPECT_EXIT}\nstderr:\n${err}\nstdout:\n${out}")
endif()
if(NOT err MATCHES "${EXPECT_STDERR}")
  message(FATAL_ERROR "stderr does not match '${EXPECT_STDERR}':\n${err}")
endif()
message(STATUS "exit status ${status}; stderr: ${err}")
