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
