#include "openmmbg/ComputeSettings.h"

#include <ATen/Parallel.h>

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

} // namespace OpenMMBG
