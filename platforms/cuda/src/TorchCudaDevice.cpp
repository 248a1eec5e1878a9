#include "TorchCudaDevice.h"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <openmm/OpenMMException.h>
#include <openmm/cuda/CudaContext.h>

using OpenMM::OpenMMException;

namespace OpenMMBG {

void checkCudaResult(CUresult result, const std::string& what) {
    if (result == CUDA_SUCCESS)
        return;
    const char* name = nullptr;
    cuGetErrorName(result, &name);
    throw OpenMMException("OpenMM-BG CUDA: " + what + " failed: " + (name ? name : "unknown error") + " ("
                          + std::to_string((int) result) + ")");
}

TorchCudaDevice::TorchCudaDevice(OpenMM::CudaContext& cu, const std::string& who)
    : cuDevice(cu.getDevice()), device(at::kCUDA, (c10::DeviceIndex) cu.getDeviceIndex()) {
    if (!at::hasCUDA())
        throw OpenMMException(who + " on the CUDA platform runs its flow with LibTorch on the GPU, but this LibTorch "
                              "was built without CUDA (at::hasCUDA() is false). Use the Reference or CPU platform, "
                              "or build OpenMM-BG against a LibTorch with CUDA (platforms/cuda/README.md).");
    const int gpus = at::detail::getCUDAHooks().getNumGPUs();
    if (cu.getDeviceIndex() >= gpus)
        throw OpenMMException(who + ": OpenMM runs on CUDA device " + std::to_string(cu.getDeviceIndex())
                              + ", but LibTorch sees " + std::to_string(gpus)
                              + " device(s); check CUDA_VISIBLE_DEVICES and the CUDA driver");
    checkCudaResult(cuDevicePrimaryCtxRetain(&primary, cuDevice), "retaining the device's primary context");
}

TorchCudaDevice::~TorchCudaDevice() {
    if (primary != nullptr)
        cuDevicePrimaryCtxRelease(cuDevice);
}

TorchCudaDevice::Scope::Scope(const TorchCudaDevice& torch) {
    checkCudaResult(cuCtxPushCurrent(torch.getContext()), "making LibTorch's CUDA context current");
}

TorchCudaDevice::Scope::~Scope() {
    CUcontext popped;
    cuCtxPopCurrent(&popped);
}

} // namespace OpenMMBG
