#ifndef OPENMMBG_POSITIONS_H_
#define OPENMMBG_POSITIONS_H_

// OpenMM positions and LibTorch tensors: the one conversion every part uses.

#include <ATen/core/Tensor.h>
#include <openmm/Vec3.h>

#include <vector>

namespace OpenMMBG {

/** Positions (nm) as a [1, N, 3] float64 tensor on the CPU. */
at::Tensor positionsToTensor(const std::vector<OpenMM::Vec3>& positions);
/** A configuration [1, N, 3] or [N, 3] (nm, any device and floating type) as positions. */
void tensorToPositions(const at::Tensor& frame, std::vector<OpenMM::Vec3>& positions);

} // namespace OpenMMBG

#endif
