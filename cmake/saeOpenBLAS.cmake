# sae_find_openblas_openmp(): looks for OpenBLAS's OpenMP build (Debian:
# libopenblas-openmp-dev, in /usr/lib/<arch>/openblas-openmp) and sets
# SAE_OPENBLAS_OPENMP_LIBRARY to it, or to ...-NOTFOUND.
#
# Why prefer it when sae runs on OpenMP: Debian's default OpenBLAS is the
# pthread build, whose workers keep spinning in sched_yield after each GEMM on
# the cores sae's OpenMP loops need next. The OpenMP build runs its GEMMs on the
# same OpenMP threads instead. Debian builds it against GNU's OpenMP runtime, so
# it is only looked for when the compiler's OpenMP is that runtime (libgomp).
# Needs find_package(OpenMP) to have run.
macro(sae_find_openblas_openmp)
  if(NOT DEFINED SAE_OPENBLAS_OPENMP_LIBRARY OR NOT SAE_OPENBLAS_OPENMP_LIBRARY)
    if("gomp" IN_LIST OpenMP_CXX_LIB_NAMES AND CMAKE_LIBRARY_ARCHITECTURE)
      find_library(SAE_OPENBLAS_OPENMP_LIBRARY NAMES openblas NAMES_PER_DIR
        PATHS "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp" NO_DEFAULT_PATH
        DOC "OpenBLAS built for OpenMP (sae prefers it with SAE_USE_OPENMP)")
    else()
      set(SAE_OPENBLAS_OPENMP_LIBRARY "SAE_OPENBLAS_OPENMP_LIBRARY-NOTFOUND")
    endif()
  endif()
endmacro()
