# kiln_module(NAME DEPS ...): one static library per folder src/NAME, namespace kiln::NAME.
# Sources are globbed so adding a file pair needs no CMake edit.
function(kiln_module name)
  cmake_parse_arguments(KM "" "" "DEPS;PRIVATE_DEPS" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  add_library(kiln_${name} STATIC ${_srcs})
  add_library(kiln::${name} ALIAS kiln_${name})
  target_include_directories(kiln_${name}
    PUBLIC ${PROJECT_SOURCE_DIR}/include
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(kiln_${name} PUBLIC ${KM_DEPS} PRIVATE ${KM_PRIVATE_DEPS})
endfunction()

# kiln_use_torch(TARGET): LibTorch headers through the shared precompiled header.
function(kiln_use_torch target)
  target_link_libraries(${target} PRIVATE kiln_torch_pch)
  target_precompile_headers(${target} REUSE_FROM kiln_torch_pch)
endfunction()
