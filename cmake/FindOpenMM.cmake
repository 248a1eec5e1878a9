# Finds an installed OpenMM (headers, library and plugin directory).
#
# OpenMM installs no CMake package file, so this looks for OpenMM.h and
# libOpenMM in OPENMM_DIR (a cache variable or environment variable, e.g. a
# conda prefix) first and in the system directories (Debian's libopenmm-dev)
# after that.
#
# Defines the imported target OpenMM::OpenMM and
#   OpenMM_INCLUDE_DIR     directory holding OpenMM.h
#   OpenMM_LIBRARY         libOpenMM
#   OpenMM_PLUGIN_DIR      the directory OpenMM loads plugins from by default
#   OpenMM_VERSION         e.g. 7.7

set(OPENMM_DIR "$ENV{OPENMM_DIR}" CACHE PATH "OpenMM installation prefix (empty: search the system)")

find_path(OpenMM_INCLUDE_DIR OpenMM.h HINTS ${OPENMM_DIR}/include)
# lib/<multiarch>: a Debian package unpacked under OPENMM_DIR (scripts/gpu_check.sh).
find_library(OpenMM_LIBRARY NAMES OpenMM
    HINTS ${OPENMM_DIR}/lib ${OPENMM_DIR}/lib64 ${OPENMM_DIR}/lib/${CMAKE_LIBRARY_ARCHITECTURE})

if(OpenMM_LIBRARY)
    # OpenMM's headers carry no version macro; the library's file name does
    # (libOpenMM.so.7.7).
    get_filename_component(_openmm_real "${OpenMM_LIBRARY}" REALPATH)
    string(REGEX MATCH "[0-9]+\\.[0-9]+(\\.[0-9]+)?$" OpenMM_VERSION "${_openmm_real}")
    # PyPI's wheel and conda name it plain libOpenMM.so; their Python package
    # beside it has openmm/version.py (wheel: <site>/OpenMM.libs next to
    # <site>/openmm; conda: <prefix>/lib/python3.X/site-packages/openmm).
    if(NOT OpenMM_VERSION)
        file(GLOB _openmm_version_files "${OpenMM_INCLUDE_DIR}/../../openmm/version.py"
                                        "${OpenMM_INCLUDE_DIR}/../lib/python3*/site-packages/openmm/version.py")
        foreach(_file ${_openmm_version_files})
            file(STRINGS "${_file}" _line REGEX "^short_version = ")
            string(REGEX MATCH "[0-9]+\\.[0-9]+(\\.[0-9]+)?" OpenMM_VERSION "${_line}")
        endforeach()
    endif()
endif()

# The default plugin directory: <prefix>/lib/plugins for OpenMM's own
# installs and conda, <libdir>/openmm/plugins for Debian.
if(OpenMM_LIBRARY)
    get_filename_component(_openmm_libdir "${OpenMM_LIBRARY}" DIRECTORY)
    if(EXISTS "${_openmm_libdir}/plugins")
        set(_openmm_plugins "${_openmm_libdir}/plugins")
    elseif(EXISTS "${_openmm_libdir}/openmm/plugins")
        set(_openmm_plugins "${_openmm_libdir}/openmm/plugins")
    else()
        set(_openmm_plugins "${_openmm_libdir}/plugins")
    endif()
    set(OpenMM_PLUGIN_DIR "${_openmm_plugins}" CACHE PATH "Directory OpenMM loads plugins from")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(OpenMM
    REQUIRED_VARS OpenMM_LIBRARY OpenMM_INCLUDE_DIR OpenMM_PLUGIN_DIR
    VERSION_VAR OpenMM_VERSION)

if(OpenMM_FOUND AND NOT TARGET OpenMM::OpenMM)
    add_library(OpenMM::OpenMM SHARED IMPORTED)
    set_target_properties(OpenMM::OpenMM PROPERTIES
        IMPORTED_LOCATION "${OpenMM_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${OpenMM_INCLUDE_DIR}")
endif()
mark_as_advanced(OpenMM_INCLUDE_DIR OpenMM_LIBRARY)
