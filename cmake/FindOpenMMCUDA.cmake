# Finds OpenMM's CUDA platform: its headers (openmm/cuda/CudaContext.h, with
# the lepton headers they include) and the plugin libOpenMMCUDA. Debian's
# OpenMM has no CUDA platform; scripts/build_openmm_cuda.sh builds one into
# <build dir>/openmm-cuda/install.
#
# Looks in CUDA_OPENMM_DIR (cache or environment variable), then in
# <build dir>/openmm-cuda/install, OPENMM_DIR and the system.
#
# Defines the imported target OpenMM::CUDA and
#   OpenMMCUDA_LIBRARY           libOpenMMCUDA
#   OpenMMCUDA_COMPILER_LIBRARY  libOpenMMCudaCompiler (runtime compilation with NVRTC), if present
#   OpenMMCUDA_PLUGIN_DIR        the folder holding them

set(CUDA_OPENMM_DIR "$ENV{CUDA_OPENMM_DIR}" CACHE PATH
    "Prefix of OpenMM's CUDA platform (include/openmm/cuda, lib/plugins/libOpenMMCUDA.so)")
set(_openmm_cuda_hints ${CUDA_OPENMM_DIR} "${CMAKE_BINARY_DIR}/openmm-cuda/install" ${OPENMM_DIR})

find_path(OpenMMCUDA_INCLUDE_DIR openmm/cuda/CudaContext.h HINTS ${_openmm_cuda_hints} PATH_SUFFIXES include)
find_path(OpenMMCUDA_LEPTON_INCLUDE_DIR lepton/ParsedExpression.h HINTS ${_openmm_cuda_hints} PATH_SUFFIXES include)
find_library(OpenMMCUDA_LIBRARY NAMES OpenMMCUDA HINTS ${_openmm_cuda_hints} ${OpenMM_PLUGIN_DIR}
    PATH_SUFFIXES lib/plugins lib)
if(OpenMMCUDA_LIBRARY)
    get_filename_component(OpenMMCUDA_PLUGIN_DIR "${OpenMMCUDA_LIBRARY}" DIRECTORY)
    find_library(OpenMMCUDA_COMPILER_LIBRARY NAMES OpenMMCudaCompiler HINTS "${OpenMMCUDA_PLUGIN_DIR}" NO_DEFAULT_PATH)
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(OpenMMCUDA
    REQUIRED_VARS OpenMMCUDA_LIBRARY OpenMMCUDA_INCLUDE_DIR OpenMMCUDA_LEPTON_INCLUDE_DIR)

if(OpenMMCUDA_FOUND AND NOT TARGET OpenMM::CUDA)
    add_library(OpenMM::CUDA SHARED IMPORTED)
    set_target_properties(OpenMM::CUDA PROPERTIES
        IMPORTED_LOCATION "${OpenMMCUDA_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${OpenMMCUDA_INCLUDE_DIR};${OpenMMCUDA_LEPTON_INCLUDE_DIR}")
endif()
mark_as_advanced(OpenMMCUDA_INCLUDE_DIR OpenMMCUDA_LEPTON_INCLUDE_DIR OpenMMCUDA_LIBRARY OpenMMCUDA_COMPILER_LIBRARY)
