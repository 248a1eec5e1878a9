#ifndef OPENMMBG_REFERENCEBGKERNELFACTORY_H_
#define OPENMMBG_REFERENCEBGKERNELFACTORY_H_

#include <openmm/internal/windowsExport.h>

/**
 * Registers the OpenMM-BG kernels with every registered platform built on
 * OpenMM's Reference platform (Reference and CPU). OpenMM calls it, as
 * registerKernelFactories(), when it loads libOpenMMBGReference from a plugin
 * folder; a program linked to the library (the tests) may call it directly
 * after OpenMM's CPU platform is registered.
 */
extern "C" OPENMM_EXPORT void registerBGReferenceKernelFactories();

#endif
