# kiln_add_test_suites(TARGET [FILTER gtest-filter]): one ctest test per GoogleTest suite of TARGET
# ("Suite", running --gtest_filter=Suite.*), listed after each build (the binary run with
# --gtest_list_tests through kiln-env), instead of gtest_discover_tests' one test per test case.
# Every process that links LibTorch spends about a quarter of a second loading it (symbol binding and
# operator registration; half a second before src/core skipped LibTorch's unused libraries) before
# its first test: one process per case spent some 450 CPU seconds of a suite run on that alone. Cases of a suite share a process and run in their declared order; a
# failing case is named in the test's output.
function(kiln_add_test_suites target)
  cmake_parse_arguments(_a "" "FILTER" "" ${ARGN})
  set(_ctest_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_suites.cmake")
  set(_include_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_suites_include.cmake")
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND "${CMAKE_COMMAND}" -D "TEST_EXECUTABLE=$<TARGET_FILE:${target}>" -D "EMULATOR=${PROJECT_BINARY_DIR}/kiln-env"
            -D "TEST_FILTER=${_a_FILTER}" -D "WORKING_DIR=${CMAKE_CURRENT_BINARY_DIR}" -D "CTEST_FILE=${_ctest_file}"
            -P "${PROJECT_SOURCE_DIR}/cmake/KilnListTestSuites.cmake"
    BYPRODUCTS "${_ctest_file}"
    VERBATIM)
  file(WRITE "${_include_file}"
       "if(EXISTS \"${_ctest_file}\")\n  include(\"${_ctest_file}\")\nelse()\n  add_test(${target}_NOT_BUILT ${target}_NOT_BUILT)\nendif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${_include_file}")
endfunction()
