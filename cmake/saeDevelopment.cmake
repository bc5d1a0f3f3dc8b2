# Helpers for sae's own targets (tests, examples, benchmarks). Not installed,
# never applied to the sae::sae interface target.

# sae_target_warnings(<target>): the warning set for our own code.
function(sae_target_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 /permissive-)
    if(SAE_WERROR)
      target_compile_options(${target} PRIVATE /WX)
    endif()
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
    if(SAE_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()
endfunction()

# sae_add_exit_test(<name> EXIT <status> STDERR <regex> [LABELS <label>...] COMMAND <target> <args>...):
# a test that runs the program and passes only if it exits with <status> and
# its standard error matches <regex> (a ctest regex alone cannot check the
# status). The arguments must not contain '|' or ';'.
set(_sae_expect_exit_script "${CMAKE_CURRENT_LIST_DIR}/saeExpectExit.cmake")
function(sae_add_exit_test name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "EXIT;STDERR" "COMMAND;LABELS")
  list(POP_FRONT arg_COMMAND program)
  list(JOIN arg_COMMAND "|" joined_args)
  add_test(NAME ${name}
    COMMAND ${CMAKE_COMMAND} "-DPROGRAM=$<TARGET_FILE:${program}>" "-DARGS=${joined_args}"
            "-DEXPECT_EXIT=${arg_EXIT}" "-DEXPECT_STDERR=${arg_STDERR}" -P "${_sae_expect_exit_script}")
  if(arg_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${arg_LABELS}")
  endif()
endfunction()
