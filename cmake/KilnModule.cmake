include(GNUInstallDirs)

# kiln_module(NAME DEPS ...): one static library per folder src/NAME, namespace kiln::NAME.
# Sources are globbed so adding a file pair needs no CMake edit. Every module is installed and
# exported as kiln::NAME (KilnTargets.cmake, see cmake/KilnInstall.cmake); a dependency on a
# pkg-config target must come from kiln_pkg_config() so the installed KilnConfig.cmake can find it.
function(kiln_module name)
  cmake_parse_arguments(KM "" "" "DEPS;PRIVATE_DEPS" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  add_library(kiln_${name} STATIC ${_srcs})
  add_library(kiln::${name} ALIAS kiln_${name})
  target_include_directories(kiln_${name}
    PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(kiln_${name} PUBLIC ${KM_DEPS} PRIVATE ${KM_PRIVATE_DEPS})
  foreach(_dep IN LISTS KM_DEPS KM_PRIVATE_DEPS)
    if(_dep MATCHES "^PkgConfig::(.+)$")
      get_property(_known GLOBAL PROPERTY KILN_PKG_CONFIG_${CMAKE_MATCH_1} SET)
      if(NOT _known)
        message(FATAL_ERROR "kiln_module(${name}): ${_dep} was not found through kiln_pkg_config(${CMAKE_MATCH_1} ...); "
                            "use it so the installed KilnConfig.cmake looks the package up too")
      endif()
    endif()
  endforeach()
  set_target_properties(kiln_${name} PROPERTIES EXPORT_NAME ${name})
  install(TARGETS kiln_${name} EXPORT KilnTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  set_property(GLOBAL APPEND PROPERTY KILN_MODULES ${name})
endfunction()

# kiln_pkg_config(PREFIX [REQUIRED] [GLOBAL] MODULE...): pkg_check_modules(PREFIX IMPORTED_TARGET ...),
# remembered when found so the installed KilnConfig.cmake defines the same PkgConfig::PREFIX target
# for the modules that link it.
function(kiln_pkg_config prefix)
  cmake_parse_arguments(KP "REQUIRED;GLOBAL" "" "" ${ARGN})
  set(_flags)
  if(KP_REQUIRED)
    list(APPEND _flags REQUIRED)
  endif()
  if(KP_GLOBAL)
    list(APPEND _flags GLOBAL)
  endif()
  pkg_check_modules(${prefix} ${_flags} IMPORTED_TARGET ${KP_UNPARSED_ARGUMENTS})
  set(${prefix}_FOUND ${${prefix}_FOUND} PARENT_SCOPE)
  if(${prefix}_FOUND)
    set_property(GLOBAL PROPERTY KILN_PKG_CONFIG_${prefix} ${KP_UNPARSED_ARGUMENTS})
    set_property(GLOBAL APPEND PROPERTY KILN_PKG_CONFIG_PREFIXES ${prefix})
  endif()
endfunction()

# _kiln_includes_torch(FILE OUT): whether FILE includes a LibTorch header (torch/, ATen/, c10/),
# directly or through Kiln's own headers (quoted or <kiln/...> includes, resolved against the file's
# folder and include/). Results are cached per file for the configure run.
function(_kiln_includes_torch file out)
  get_property(_known GLOBAL PROPERTY "KILN_TORCHY_${file}" SET)
  if(_known)
    get_property(_v GLOBAL PROPERTY "KILN_TORCHY_${file}")
    set(${out} ${_v} PARENT_SCOPE)
    return()
  endif()
  set_property(GLOBAL PROPERTY "KILN_TORCHY_${file}" FALSE)  # breaks include cycles
  file(STRINGS ${file} _lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
  set(_result FALSE)
  get_filename_component(_dir ${file} DIRECTORY)
  foreach(_line IN LISTS _lines)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[<\"]([^>\"]+)[>\"].*" "\\1" _name "${_line}")
    if(_name MATCHES "^(torch|ATen|c10)/")
      set(_result TRUE)
      break()
    endif()
    foreach(_base ${_dir} ${PROJECT_SOURCE_DIR}/include)
      if(EXISTS ${_base}/${_name} AND NOT IS_DIRECTORY ${_base}/${_name})
        get_filename_component(_path ${_base}/${_name} REALPATH)
        _kiln_includes_torch(${_path} _sub)
        if(_sub)
          set(_result TRUE)
        endif()
        break()
      endif()
    endforeach()
    if(_result)
      break()
    endif()
  endforeach()
  set_property(GLOBAL PROPERTY "KILN_TORCHY_${file}" ${_result})
  set(${out} ${_result} PARENT_SCOPE)
endfunction()

# kiln_use_torch(TARGET): LibTorch headers through the shared precompiled header, for the sources that
# include LibTorch (the others compile without it: loading the header costs ~8 CPU-seconds per file).
# The LibTorch sources are compiled as unity batches, which pay that cost once per batch instead of
# once per file (KILN_UNITY_BATCH sources each, 0 = off).
function(kiln_use_torch target)
  # kiln_torch_pch is a build-tree helper: installed libraries link LibTorch itself instead (their
  # public headers include it, so it is part of their usage requirements there).
  target_link_libraries(${target} PRIVATE $<BUILD_INTERFACE:kiln_torch_pch>)
  get_target_property(_type ${target} TYPE)
  if(_type MATCHES "LIBRARY$")
    foreach(_lib IN LISTS TORCH_LIBRARIES OpenMP::OpenMP_CXX)
      target_link_libraries(${target} INTERFACE $<INSTALL_INTERFACE:${_lib}>)
    endforeach()
  endif()
  target_precompile_headers(${target} REUSE_FROM kiln_torch_pch)
  get_target_property(_srcs ${target} SOURCES)
  get_target_property(_src_dir ${target} SOURCE_DIR)
  foreach(_s IN LISTS _srcs)
    if(NOT _s MATCHES "\\.cpp$")
      continue()
    endif()
    if(IS_ABSOLUTE ${_s})
      set(_abs ${_s})
    else()
      set(_abs ${_src_dir}/${_s})
    endif()
    get_filename_component(_abs ${_abs} REALPATH)
    _kiln_includes_torch(${_abs} _torchy)
    if(NOT _torchy)
      set_source_files_properties(${_s} TARGET_DIRECTORY ${target} PROPERTIES
                                  SKIP_PRECOMPILE_HEADERS ON SKIP_UNITY_BUILD_INCLUSION ON)
    endif()
  endforeach()
  if(KILN_UNITY_BATCH GREATER 0)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${KILN_UNITY_BATCH})
  endif()
endfunction()
