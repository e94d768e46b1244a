# veer_module(NAME SOURCES ... DEPS ...): a static library for one src/ folder.
function(veer_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  if(M_SOURCES)
    add_library(veer_${name} STATIC ${M_SOURCES})
    target_include_directories(veer_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(veer_${name} PUBLIC ${M_DEPS})
  else()
    add_library(veer_${name} INTERFACE)
    target_include_directories(veer_${name} INTERFACE ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(veer_${name} INTERFACE ${M_DEPS})
  endif()
endfunction()

# add_engine_test(NAME SOURCES ... DEPS ... LABELS ...): one gtest binary registered with ctest.
# Tests find ../shared/testdata through VEER_TESTDATA (set here, overridable by the environment).
function(add_engine_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main veer_testutil)
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "VEER_SOURCE_DIR=${PROJECT_SOURCE_DIR};VEER_BINARY_DIR=${PROJECT_BINARY_DIR}")
endfunction()

# veer_fuzz_target(NAME SOURCES ... DEPS ...): a libFuzzer entry point (LLVMFuzzerTestOneInput).
# With VEER_FUZZ (clang) it links -fsanitize=fuzzer as fuzz_NAME. In every build it is also
# linked with a replay driver and registered with ctest (label "fuzz") so that the committed
# corpus in corpus/ (beside the source) runs as a regression test under GCC and the sanitizers.
function(veer_fuzz_target name)
  cmake_parse_arguments(F "" "" "SOURCES;DEPS" ${ARGN})
  set(corpus ${CMAKE_CURRENT_SOURCE_DIR}/corpus)
  add_executable(fuzzreplay_${name} ${F_SOURCES} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.cc)
  target_link_libraries(fuzzreplay_${name} PRIVATE ${F_DEPS})
  if(VEER_TESTS)
    add_test(NAME fuzzreplay_${name} COMMAND fuzzreplay_${name} ${corpus})
    set_tests_properties(fuzzreplay_${name} PROPERTIES LABELS fuzz TIMEOUT 300)
  endif()
  if(VEER_FUZZ)
    add_executable(fuzz_${name} ${F_SOURCES})
    target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_${name} PRIVATE ${F_DEPS})
  endif()
endfunction()
