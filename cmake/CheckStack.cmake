# Checks that OpenMM and LibTorch form one consistent stack before anything is
# compiled against them (docs/stacks.md):
#  - the LibTorch libraries come from the installation whose CMake files were
#    found (a Torch_DIR of a wheel can otherwise pick up a system libtorch);
#  - OpenMM, LibTorch and this build use the same libstdc++ string ABI
#    (_GLIBCXX_USE_CXX11_ABI): mixing them links, then fails at load time
#    with undefined symbols or crashes on the first std::string passed across.
#
# A library built with the C++11 ABI names std::string
# std::__cxx11::basic_string in its symbols; one built without it never
# mentions __cxx11.

function(_bg_library_abi library result)
    file(STRINGS "${library}" _cxx11 REGEX "St7__cxx11" LIMIT_COUNT 1)
    if(_cxx11)
        set(${result} 1 PARENT_SCOPE)
    else()
        set(${result} 0 PARENT_SCOPE)
    endif()
endfunction()

function(bg_check_stack)
    get_filename_component(_torch_prefix "${TORCH_INSTALL_PREFIX}" REALPATH)
    get_filename_component(_torch_library "${TORCH_LIBRARY}" REALPATH)
    string(FIND "${_torch_library}" "${_torch_prefix}/" _inside)
    if(NOT _inside EQUAL 0)
        message(FATAL_ERROR "OpenMM-BG: LibTorch's CMake files are those of ${_torch_prefix}, but its library was "
                            "found at ${TORCH_LIBRARY}, another installation. Put the intended one first with "
                            "-DCMAKE_PREFIX_PATH=${_torch_prefix} (in a fresh build directory).")
    endif()

    # This build's ABI: the one LibTorch asks for, else the compiler's default.
    if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=([01])")
        set(_build_abi ${CMAKE_MATCH_1})
    else()
        include(CheckCXXSourceCompiles)
        check_cxx_source_compiles("#include <string>
            #if !_GLIBCXX_USE_CXX11_ABI
            #error old ABI
            #endif
            int main() { return 0; }" BG_COMPILER_USES_CXX11_ABI)
        if(BG_COMPILER_USES_CXX11_ABI)
            set(_build_abi 1)
        else()
            set(_build_abi 0)
        endif()
    endif()
    # libc10 beside libtorch (libtorch.so itself can be a stub without strings).
    get_filename_component(_torch_libdir "${_torch_library}" DIRECTORY)
    find_library(_bg_c10 c10 HINTS "${_torch_libdir}" NO_DEFAULT_PATH)
    if(NOT _bg_c10)
        message(WARNING "OpenMM-BG: no libc10 beside ${TORCH_LIBRARY}: the C++ ABI of LibTorch is not checked")
        return()
    endif()
    _bg_library_abi("${_bg_c10}" _torch_abi)
    _bg_library_abi("${OpenMM_LIBRARY}" _openmm_abi)
    message(STATUS "C++ string ABI (_GLIBCXX_USE_CXX11_ABI): this build ${_build_abi}, OpenMM ${_openmm_abi} "
                   "(${OpenMM_LIBRARY}), LibTorch ${_torch_abi} (${_bg_c10})")
    if(NOT _openmm_abi EQUAL _torch_abi OR NOT _build_abi EQUAL _torch_abi)
        message(FATAL_ERROR "OpenMM-BG: OpenMM (${OpenMM_LIBRARY}) uses _GLIBCXX_USE_CXX11_ABI=${_openmm_abi}, "
                            "LibTorch (${_bg_c10}) ${_torch_abi} and this build ${_build_abi}: they must agree. "
                            "Use an OpenMM and a LibTorch built with the same ABI (docs/stacks.md lists the "
                            "tested pairs).")
    endif()
endfunction()
