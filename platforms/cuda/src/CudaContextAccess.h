#ifndef OPENMMBG_CUDACONTEXTACCESS_H_
#define OPENMMBG_CUDACONTEXTACCESS_H_

#include "PositionKernels.h"
#include "TorchCudaDevice.h"
#include "openmmbg/internal/ContextAccess.h"

#include <openmm/cuda/CudaArray.h>

#include <memory>

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
 * while energies are computed, so the slot order is fixed during a kernel call.
 */
class CudaContextAccess : public ContextAccess {
public:
    CudaContextAccess(OpenMM::ContextImpl& context, OpenMM::CudaContext& cu) : context(context), cu(cu) {}
    /** Checks that LibTorch can use OpenMM's GPU (throws naming what is missing) and allocates the arrays. */
    void initialize(const std::string& who) override;
    at::Device getDevice() const override { return torch->getDevice(); }
    at::Tensor read() override;
    void write(const at::Tensor& x) override;
    void save() override;
    void restore() override;
    /**
     * With LibTorch's context current. Positions written straight into the
     * device arrays leave OpenMM's cached forces stale, so afterwards (on an
     * exception too) OpenMM is told that the state changed.
     */
    void run(const std::function<void()>& body) override;

private:
    void invalidateCachedForces();

    OpenMM::ContextImpl& context;
    OpenMM::CudaContext& cu;
    std::unique_ptr<TorchCudaDevice> torch;
    PositionStorage storage = PositionStorage::Single;
    OpenMM::CudaArray staging;  // 3N float64 in atom order, in OpenMM's context
    OpenMM::CudaArray savedPosq, savedCorrection;
    bool changed = false;       // positions written or restored since the last run()
};

} // namespace OpenMMBG

#endif
