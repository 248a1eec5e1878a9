#ifndef OPENMMBG_COMPUTESETTINGS_H_
#define OPENMMBG_COMPUTESETTINGS_H_

#include <string>

namespace OpenMMBG {

/**
 * Threads LibTorch uses inside one operation, and OpenBLAS's threads with it
 * (LibTorch's own setting does not reach the pthread build of OpenBLAS).
 * Flows of the sizes used here run fastest on one thread per process; the
 * energy bridge supplies the parallelism.
 */
void setComputeThreads(int threads);

/**
 * LibTorch allocates every tensor with malloc. glibc hands blocks above
 * 128 KiB back to the kernel when they are freed, so each training step
 * page-faults the same memory in again; this keeps freed blocks up to 64 MiB
 * in the heap instead (about 2x faster training of small flows, measured on
 * the double well). Done once per process; OPENMMBG_KEEP_MALLOC_SETTINGS=1
 * leaves glibc's settings alone.
 */
void keepFreedMemoryInHeap();

/**
 * Why OpenMM cannot create a Context on OpenMM's CUDA platform here (no such
 * platform registered, no GPU or no driver: OpenMM's message), or "" if it
 * can. The flow-move kernels also need a LibTorch with CUDA (at::hasCUDA()).
 */
std::string cudaContextUnavailable();

} // namespace OpenMMBG

#endif
