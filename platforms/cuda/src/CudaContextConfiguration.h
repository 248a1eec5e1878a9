#ifndef OPENMMBG_CUDACONTEXTCONFIGURATION_H_
#define OPENMMBG_CUDACONTEXTCONFIGURATION_H_

#include "PositionKernels.h"
#include "TorchCudaDevice.h"
#include "openmmbg/internal/FlowMoveRunner.h"

#include <openmm/cuda/CudaArray.h>

namespace OpenMM {
class CudaContext;
}

namespace OpenMMBG {

/**
 * The configuration of an OpenMM CUDA Context, moved between OpenMM's device
 * arrays and LibTorch tensors without leaving the GPU: a small kernel
 * gathers posq (+ posqCorrection in mixed precision) into a float64 staging
 * array in atom order (undoing OpenMM's reordering), and cuMemcpyPeer copies
 * that between OpenMM's CUDA context and LibTorch's; writing goes the other
 * way. save() and restore() copy posq (and the corrections) device to
 * device, so a restored Context is bit for bit what it was.
 *
 * OpenMM reorders atoms only inside integrator steps and setPositions, never
 * while energies are computed, so the slot order is fixed while a kernel's
 * execute() runs.
 */
class CudaContextConfiguration : public ContextConfiguration {
public:
    CudaContextConfiguration(OpenMM::CudaContext& cu, const TorchCudaDevice& torch);
    at::Tensor read() override;
    void write(const at::Tensor& x) override;
    void save() override;
    void restore() override;
    /** Whether write() or restore() changed the Context since the last call (then cached forces are stale). */
    bool takeChanged();

private:
    void copyFromTorch(const at::Tensor& x);

    OpenMM::CudaContext& cu;
    const TorchCudaDevice& torch;
    PositionStorage storage;
    OpenMM::CudaArray staging;  // 3N float64 in atom order, in OpenMM's context
    OpenMM::CudaArray savedPosq, savedCorrection;
    bool changed = false;
};

} // namespace OpenMMBG

#endif
