# Build-time half of kiln_add_test_suites (cmake/KilnTestSuites.cmake): lists the test binary's
# GoogleTest suites and writes one ctest test per suite into CTEST_FILE.
#   cmake -D TEST_EXECUTABLE=... -D EMULATOR=... -D TEST_FILTER=... -D WORKING_DIR=... -D CTEST_FILE=... -P this
set(_filter_arg)
if(TEST_FILTER)
  set(_filter_arg "--gtest_filter=${TEST_FILTER}")
endif()
execute_process(COMMAND "${EMULATOR}" "${TEST_EXECUTABLE}" --gtest_list_tests ${_filter_arg}
                WORKING_DIRECTORY "${WORKING_DIR}" OUTPUT_VARIABLE _out ERROR_VARIABLE _err RESULT_VARIABLE _rc
                TIMEOUT 60)
if(NOT _rc EQUAL 0)
  file(REMOVE "${CTEST_FILE}")
  message(FATAL_ERROR "${TEST_EXECUTABLE} --gtest_list_tests failed (${_rc}):\n${_out}\n${_err}")
endif()
string(REPLACE "\n" ";" _lines "${_out}")
set(_script "")
foreach(_line IN LISTS _lines)
  # Suite lines ("Suite." or "Prefix/Suite." for parameterized suites) start in column 0; their
  # tests are indented.
  if(_line MATCHES "^([A-Za-z0-9_/]+)\\.")
    set(_suite "${CMAKE_MATCH_1}")
    string(APPEND _script
           "add_test([=[${_suite}]=] [=[${EMULATOR}]=] [=[${TEST_EXECUTABLE}]=] [=[--gtest_filter=${_suite}.*]=])\n"
           "set_tests_properties([=[${_suite}]=] PROPERTIES WORKING_DIRECTORY [=[${WORKING_DIR}]=])\n")
  endif()
endforeach()
file(WRITE "${CTEST_FILE}" "${_script}")
