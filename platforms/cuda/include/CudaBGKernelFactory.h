#ifndef OPENMMBG_CUDABGKERNELFACTORY_H_
#define OPENMMBG_CUDABGKERNELFACTORY_H_

#include <openmm/internal/windowsExport.h>

/**
 * Registers the OpenMM-BG kernels with OpenMM's CUDA platform, registering
 * the platform itself first if no plugin folder loaded it. OpenMM calls it,
 * as registerKernelFactories(), when it loads libOpenMMBGCUDA from a plugin
 * folder; a program linked to the library (the tests) may call it directly.
 */
extern "C" OPENMM_EXPORT void registerBGCudaKernelFactories();

#endif
