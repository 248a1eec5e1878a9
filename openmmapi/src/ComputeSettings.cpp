#include "openmmbg/ComputeSettings.h"

#include <ATen/Parallel.h>
#include <openmm/Context.h>
#include <openmm/Platform.h>
#include <openmm/System.h>
#include <openmm/VerletIntegrator.h>

#include <cstdlib>
#include <dlfcn.h>
#include <malloc.h>
#include <mutex>
#include <string>

namespace OpenMMBG {

void setComputeThreads(int threads) {
    if (threads < 1)
        return;
    at::set_num_threads(threads);
    // OpenBLAS is loaded as LibTorch's BLAS on Debian; look it up instead of linking it.
    using SetThreads = void (*)(int);
    if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
        set(threads);
}

void keepFreedMemoryInHeap() {
    static std::once_flag once;
    std::call_once(once, [] {
        const char* keep = std::getenv("OPENMMBG_KEEP_MALLOC_SETTINGS");
        if (keep != nullptr && std::string(keep) == "1")
            return;
        mallopt(M_MMAP_THRESHOLD, 64 << 20);
        mallopt(M_TRIM_THRESHOLD, 256 << 20);
    });
}

std::string cudaContextUnavailable() {
    try {
        OpenMM::System system;
        system.addParticle(1.0);
        OpenMM::VerletIntegrator integrator(0.001);
        OpenMM::Context context(system, integrator, OpenMM::Platform::getPlatformByName("CUDA"));
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

} // namespace OpenMMBG
