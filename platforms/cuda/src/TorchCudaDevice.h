#ifndef OPENMMBG_TORCHCUDADEVICE_H_
#define OPENMMBG_TORCHCUDADEVICE_H_

#include <c10/core/Device.h>
#include <cuda.h>

#include <string>

namespace OpenMM {
class CudaContext;
}

namespace OpenMMBG {

/**
 * The GPU of an OpenMM CUDA context, as LibTorch uses it. OpenMM 7.7 works in
 * a CUDA context it creates itself; LibTorch works in the device's primary
 * context, or in whatever context is current on the thread. So LibTorch is
 * called only with the primary context pushed (a Scope), OpenMM only with its
 * own (OpenMM's ContextSelector), and memory crosses between the two
 * contexts only through cuMemcpyPeer.
 */
class TorchCudaDevice {
public:
    /**
     * Checks that LibTorch can work on OpenMM's device and retains its
     * primary context. Throws an OpenMMException, prefixed with `who`, that
     * names what is missing: a LibTorch with CUDA, or the device.
     */
    TorchCudaDevice(OpenMM::CudaContext& cu, const std::string& who);
    ~TorchCudaDevice();
    TorchCudaDevice(const TorchCudaDevice&) = delete;
    TorchCudaDevice& operator=(const TorchCudaDevice&) = delete;

    at::Device getDevice() const { return device; }
    CUcontext getContext() const { return primary; }

    /** Makes LibTorch's (the primary) context current while it lives. */
    class Scope {
    public:
        explicit Scope(const TorchCudaDevice& torch);
        ~Scope();
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;
    };

private:
    CUdevice cuDevice;
    CUcontext primary = nullptr;
    at::Device device;
};

/** Throws an OpenMMException naming `what` unless result is CUDA_SUCCESS. */
void checkCudaResult(CUresult result, const std::string& what);

} // namespace OpenMMBG

#endif
