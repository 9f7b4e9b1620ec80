# cmake --install BUILD --prefix P: public headers (P/include/kiln), every kiln_module() library
# (P/lib), the binaries (P/bin) and a CMake package (P/lib/cmake/Kiln) whose targets are
# kiln::<module>. Included at the end of the top-level CMakeLists.txt, after every module exists.
include(CMakePackageConfigHelpers)

set(KILN_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/Kiln CACHE STRING
    "Where cmake --install puts KilnConfig.cmake (relative to the prefix)")

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/kiln DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# kiln-ml runs LibTorch from wherever Torch_DIR pointed: keep non-system link directories in its RPATH.
set_target_properties(kiln kiln-ml kiln-env PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)
install(TARGETS kiln kiln-ml kiln-env RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The empty stand-ins for LibTorch's unused libraries (src/core/CMakeLists.txt), found by kiln-ml
# through its RPATH.
if(KILN_TORCH_UNUSED_LIBS)
  set(_kiln_unused_libs_dir ${CMAKE_INSTALL_LIBDIR}/kiln/torch-unused-libs)
  install(FILES ${KILN_TORCH_UNUSED_LIBS} DESTINATION ${_kiln_unused_libs_dir})
  file(RELATIVE_PATH _rel ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR} ${CMAKE_INSTALL_PREFIX}/${_kiln_unused_libs_dir})
  set_target_properties(kiln-ml PROPERTIES INSTALL_RPATH "$ORIGIN/${_rel}")
endif()

install(EXPORT KilnTargets NAMESPACE kiln:: DESTINATION ${KILN_INSTALL_CMAKEDIR} FILE KilnTargets.cmake)

# What the modules' link interfaces name, checked here so a module that starts linking a new package
# fails at configure time instead of in a user's project: each target must be a Kiln module, come
# from a package KilnConfig.cmake finds (below), or from kiln_pkg_config().
set(_kiln_known_deps Threads::Threads nlohmann_json::nlohmann_json yaml-cpp ${TORCH_LIBRARIES} OpenMP::OpenMP_CXX)
get_property(KILN_MODULES GLOBAL PROPERTY KILN_MODULES)
get_property(_pkg_prefixes GLOBAL PROPERTY KILN_PKG_CONFIG_PREFIXES)
set(_used_pkg)
foreach(_m IN LISTS KILN_MODULES)
  get_target_property(_libs kiln_${_m} INTERFACE_LINK_LIBRARIES)
  if(NOT _libs)
    continue()
  endif()
  foreach(_l IN LISTS _libs)
    if(_l MATCHES "^\\$<BUILD_INTERFACE:")
      continue()
    endif()
    string(REGEX REPLACE "^\\$<(LINK_ONLY|INSTALL_INTERFACE):(.*)>$" "\\2" _l "${_l}")
    if(_l MATCHES "^\\$<LINK_ONLY:(.*)>$")  # $<LINK_ONLY:$<INSTALL_INTERFACE:x>>
      set(_l "${CMAKE_MATCH_1}")
    endif()
    string(REGEX REPLACE "^\\$<INSTALL_INTERFACE:(.*)>$" "\\1" _l "${_l}")
    if(_l MATCHES "^kiln::(.+)$" AND CMAKE_MATCH_1 IN_LIST KILN_MODULES)
      continue()
    elseif(_l MATCHES "^PkgConfig::(.+)$" AND CMAKE_MATCH_1 IN_LIST _pkg_prefixes)
      list(APPEND _used_pkg ${CMAKE_MATCH_1})
    elseif(TARGET ${_l} AND NOT _l IN_LIST _kiln_known_deps)
      message(FATAL_ERROR "kiln::${_m} links ${_l}, which the installed KilnConfig.cmake does not look up: "
                          "add a find_dependency() for its package to cmake/KilnConfig.cmake.in and "
                          "${_l} to _kiln_known_deps in cmake/KilnInstall.cmake")
    endif()
  endforeach()
endforeach()
list(REMOVE_DUPLICATES _used_pkg)

set(KILN_CONFIG_PKG_CONFIG "")
foreach(_p IN LISTS _used_pkg)
  get_property(_mods GLOBAL PROPERTY KILN_PKG_CONFIG_${_p})
  string(APPEND KILN_CONFIG_PKG_CONFIG "_kiln_pkg_config(${_p} ${_mods})\n")
endforeach()

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/KilnConfig.cmake.in
  ${PROJECT_BINARY_DIR}/KilnConfig.cmake INSTALL_DESTINATION ${KILN_INSTALL_CMAKEDIR})
# 0.x: a minor release may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/KilnConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/KilnConfig.cmake ${PROJECT_BINARY_DIR}/KilnConfigVersion.cmake
        DESTINATION ${KILN_INSTALL_CMAKEDIR})
