#ifndef OPENMMBG_POSITIONKERNELS_H_
#define OPENMMBG_POSITIONKERNELS_H_

// Conversions between OpenMM's CUDA position arrays and configurations as
// plain float64 arrays (nm), compiled by nvcc. OpenMM keeps (x, y, z, charge)
// per slot, and slot s holds atom atomIndex[s] (it sorts atoms for locality);
// in mixed precision a float4 array of corrections carries the bits a float
// position cannot.

#include <cuda_runtime_api.h>

namespace OpenMMBG {

/** How OpenMM's CUDA platform stores positions (its Precision property). */
enum class PositionStorage { Single, Mixed, Double };

/**
 * positions[3 * atom + k] = coordinate k of each atom: posq, plus the
 * correction in mixed precision (the sum OpenMM's getPositions forms).
 * Runs on `stream` in the current CUDA context.
 */
cudaError_t launchGatherPositions(PositionStorage storage, const void* posq, const void* correction,
                                  const int* atomIndex, int numAtoms, double* positions, cudaStream_t stream);

/**
 * The inverse: each slot's posq (and correction) from positions, rounded as
 * OpenMM's setPositions rounds them. The charge in posq is kept.
 */
cudaError_t launchScatterPositions(PositionStorage storage, const double* positions, const int* atomIndex,
                                   int numAtoms, void* posq, void* correction, cudaStream_t stream);

} // namespace OpenMMBG

#endif
