# SPDX-License-Identifier: MIT
# Findcmocka.cmake: the cmocka unit-test library, for hostmalloc's tests.
#
# Defines the imported target cmocka::cmocka and cmocka_FOUND. Tried in order: pkg-config,
# then a plain search for cmocka.h and libcmocka. `-DCMAKE_DISABLE_FIND_PACKAGE_cmocka=ON`
# makes it unfindable (CMake then skips this module), as on a machine without libcmocka-dev.
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_CMOCKA QUIET cmocka)
endif()
find_path(cmocka_INCLUDE_DIR cmocka.h HINTS ${PC_CMOCKA_INCLUDE_DIRS})
find_library(cmocka_LIBRARY NAMES cmocka HINTS ${PC_CMOCKA_LIBRARY_DIRS})
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(cmocka REQUIRED_VARS cmocka_LIBRARY cmocka_INCLUDE_DIR
  VERSION_VAR PC_CMOCKA_VERSION)
if(PC_CMOCKA_VERSION)
  set(cmocka_VERSION "${PC_CMOCKA_VERSION}")
else()
  set(cmocka_VERSION "(version unknown)")
endif()
if(cmocka_FOUND AND NOT TARGET cmocka::cmocka)
  add_library(cmocka::cmocka UNKNOWN IMPORTED)
  set_target_properties(cmocka::cmocka PROPERTIES IMPORTED_LOCATION "${cmocka_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${cmocka_INCLUDE_DIR}")
endif()
mark_as_advanced(cmocka_INCLUDE_DIR cmocka_LIBRARY)
