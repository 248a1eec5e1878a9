#include "CudaContextAccess.h"

#include "openmmbg/internal/TensorChecks.h"

#include <ATen/ATen.h>
#include <openmm/OpenMMException.h>
#include <openmm/common/ContextSelector.h>
#include <openmm/cuda/CudaContext.h>
#include <openmm/internal/ContextImpl.h>

using namespace OpenMM;

namespace OpenMMBG {

namespace {

void checkLaunch(cudaError_t result, const std::string& what) {
    if (result != cudaSuccess)
        throw OpenMMException("OpenMM-BG CUDA: " + what + " failed: " + cudaGetErrorString(result));
}

} // namespace

void CudaContextAccess::initialize(const std::string& who) {
    // OpenMM's CUDA platform completes its contexts (velocities, the pinned
    // host buffer every download goes through, bonded forces) only when an
    // integrator's kernel asks for it; without this, Context creation fails
    // in setVelocities when no other integrator runs in the Context.
    cu.initializeContexts();
    torch = std::make_unique<TorchCudaDevice>(cu, who);
    storage = cu.getUseDoublePrecision()  ? PositionStorage::Double
              : cu.getUseMixedPrecision() ? PositionStorage::Mixed
                                          : PositionStorage::Single;
    staging.initialize(cu, 3 * cu.getNumAtoms(), sizeof(double), "openmmbgStaging");
    savedPosq.initialize(cu, cu.getPosq().getSize(), cu.getPosq().getElementSize(), "openmmbgSavedPosq");
    if (storage == PositionStorage::Mixed)
        savedCorrection.initialize(cu, cu.getPosqCorrection().getSize(), cu.getPosqCorrection().getElementSize(),
                                   "openmmbgSavedPosqCorrection");
}

void CudaContextAccess::run(const std::function<void()>& body) {
    try {
        TorchCudaDevice::Scope scope(*torch);
        body();
    } catch (...) {
        invalidateCachedForces();
        throw;
    }
    invalidateCachedForces();
}

void CudaContextAccess::invalidateCachedForces() {
    // OpenMM integrators that keep forces from one step to the next must
    // recompute them: ContextImpl::systemChanged() reaches CustomIntegrator
    // (through stateChanged), the atoms-reordered flag NoseHooverIntegrator's
    // kernel. ContextImpl::setPositions would do both at a host round trip.
    if (!changed)
        return;
    changed = false;
    context.systemChanged();
    cu.setAtomsWereReordered(true);
}

at::Tensor CudaContextAccess::read() {
    const int atoms = cu.getNumAtoms();
    {
        ContextSelector selector(cu);
        CUdeviceptr correction = storage == PositionStorage::Mixed ? cu.getPosqCorrection().getDevicePointer() : 0;
        checkLaunch(launchGatherPositions(storage, (const void*) cu.getPosq().getDevicePointer(),
                                          (const void*) correction,
                                          (const int*) cu.getAtomIndexArray().getDevicePointer(), atoms,
                                          (double*) staging.getDevicePointer(), (cudaStream_t) cu.getCurrentStream()),
                    "reading positions");
    }
    at::Tensor x = at::empty({1, atoms, 3}, at::TensorOptions().dtype(at::kDouble).device(torch->getDevice()));
    // Ordered after the gather (pending work in OpenMM's context) and before any later LibTorch work.
    checkCudaResult(cuMemcpyPeer((CUdeviceptr) x.data_ptr<double>(), torch->getContext(), staging.getDevicePointer(),
                                 cu.getContext(), staging.getSize() * sizeof(double)),
                    "copying positions to LibTorch");
    return x;
}

void CudaContextAccess::write(const at::Tensor& x) {
    checkConfigurationTensor(x, cu.getNumAtoms(), "CudaContextAccess::write");
    if (x.size(0) != 1 || x.device() != torch->getDevice())
        throw OpenMMException("CudaContextAccess::write: expected one configuration on " + torch->getDevice().str()
                              + ", got " + shapeString(x) + " on " + x.device().str());
    const at::Tensor source = x.contiguous();
    // Serialised with the LibTorch work that produced x and with later work in OpenMM's context.
    checkCudaResult(cuMemcpyPeer(staging.getDevicePointer(), cu.getContext(), (CUdeviceptr) source.data_ptr<double>(),
                                 torch->getContext(), staging.getSize() * sizeof(double)),
                    "copying positions from LibTorch");
    ContextSelector selector(cu);
    CUdeviceptr correction = storage == PositionStorage::Mixed ? cu.getPosqCorrection().getDevicePointer() : 0;
    checkLaunch(launchScatterPositions(storage, (const double*) staging.getDevicePointer(),
                                       (const int*) cu.getAtomIndexArray().getDevicePointer(), cu.getNumAtoms(),
                                       (void*) cu.getPosq().getDevicePointer(), (void*) correction,
                                       (cudaStream_t) cu.getCurrentStream()),
                "writing positions");
    changed = true;
}

void CudaContextAccess::save() {
    ContextSelector selector(cu);
    cu.getPosq().copyTo(savedPosq);
    if (storage == PositionStorage::Mixed)
        cu.getPosqCorrection().copyTo(savedCorrection);
}

void CudaContextAccess::restore() {
    ContextSelector selector(cu);
    savedPosq.copyTo(cu.getPosq());
    if (storage == PositionStorage::Mixed)
        savedCorrection.copyTo(cu.getPosqCorrection());
    changed = true;
}

} // namespace OpenMMBG
