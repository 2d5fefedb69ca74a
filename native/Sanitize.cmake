# MOME_SANITIZE: compile and link everything native (library, tests, harnesses) with the
# sanitizers named, e.g. -DMOME_SANITIZE=address,undefined or -DMOME_SANITIZE=thread.
# UBSan does not recover, so a finding fails the test that triggered it. The CUDA backend is
# left out: the sanitizers do not see device code, and the CUDA runtime trips ASan's shadow.
# MOME_FUZZ adds libFuzzer's coverage instrumentation (clang only).
if(MOME_SANITIZE)
  string(REPLACE "," ";" MOME_SANITIZERS "${MOME_SANITIZE}")
  foreach(s IN LISTS MOME_SANITIZERS)
    if(NOT s MATCHES "^(address|undefined|thread)$")
      message(FATAL_ERROR "MOME_SANITIZE: unknown sanitizer '${s}' (use address, undefined or thread)")
    endif()
  endforeach()
  if("thread" IN_LIST MOME_SANITIZERS AND "address" IN_LIST MOME_SANITIZERS)
    message(FATAL_ERROR "MOME_SANITIZE: thread and address cannot be combined; build them in separate folders")
  endif()
  set(MOME_CUDA OFF CACHE BOOL "Build the CUDA backend when a CUDA compiler is found" FORCE)
  add_compile_options(-fsanitize=${MOME_SANITIZE} -fno-omit-frame-pointer -g)
  if("undefined" IN_LIST MOME_SANITIZERS)
    add_compile_options(-fno-sanitize-recover=all)
  endif()
  add_link_options(-fsanitize=${MOME_SANITIZE})
  message(STATUS "Mome: sanitizers ${MOME_SANITIZE} (CUDA backend off)")
endif()

if(MOME_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MOME_FUZZ needs clang (libFuzzer), e.g. -DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  if(NOT MOME_SANITIZE)
    message(FATAL_ERROR "MOME_FUZZ needs sanitizers to find anything: add -DMOME_SANITIZE=address,undefined")
  endif()
  # Every object gets coverage instrumentation; only the harnesses link libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
