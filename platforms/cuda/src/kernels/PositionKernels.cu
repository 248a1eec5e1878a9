#include "PositionKernels.h"

#include <algorithm>

namespace OpenMMBG {

namespace {

// OpenMM's double4 (CUDA 13 deprecates the name, not the 16-byte aligned layout).
struct alignas(16) Double4 {
    double x, y, z, w;
};

const int THREADS = 128;

int blocksFor(int numAtoms) {
    return std::max(1, std::min((numAtoms + THREADS - 1) / THREADS, 4096));
}

template <class Real4>
__global__ void gatherPositions(const Real4* __restrict__ posq, const float4* __restrict__ correction,
                                const int* __restrict__ atomIndex, int numAtoms, double* __restrict__ positions) {
    for (int slot = blockIdx.x * blockDim.x + threadIdx.x; slot < numAtoms; slot += gridDim.x * blockDim.x) {
        const Real4 p = posq[slot];
        double x = p.x, y = p.y, z = p.z;
        if (correction != nullptr) {
            const float4 c = correction[slot];
            x += (double) c.x;
            y += (double) c.y;
            z += (double) c.z;
        }
        double* out = positions + 3 * (size_t) atomIndex[slot];
        out[0] = x;
        out[1] = y;
        out[2] = z;
    }
}

template <class Real4, class Real>
__global__ void scatterPositions(const double* __restrict__ positions, const int* __restrict__ atomIndex,
                                 int numAtoms, Real4* __restrict__ posq, float4* __restrict__ correction) {
    for (int slot = blockIdx.x * blockDim.x + threadIdx.x; slot < numAtoms; slot += gridDim.x * blockDim.x) {
        const double* in = positions + 3 * (size_t) atomIndex[slot];
        Real4 p = posq[slot];  // .w is the charge: kept
        p.x = (Real) in[0];
        p.y = (Real) in[1];
        p.z = (Real) in[2];
        posq[slot] = p;
        if (correction != nullptr)
            correction[slot] = make_float4((float) (in[0] - (float) in[0]), (float) (in[1] - (float) in[1]),
                                           (float) (in[2] - (float) in[2]), 0.0f);
    }
}

} // namespace

cudaError_t launchGatherPositions(PositionStorage storage, const void* posq, const void* correction,
                                  const int* atomIndex, int numAtoms, double* positions, cudaStream_t stream) {
    const int blocks = blocksFor(numAtoms);
    if (storage == PositionStorage::Double)
        gatherPositions<<<blocks, THREADS, 0, stream>>>((const Double4*) posq, nullptr, atomIndex, numAtoms, positions);
    else
        gatherPositions<<<blocks, THREADS, 0, stream>>>(
            (const float4*) posq, storage == PositionStorage::Mixed ? (const float4*) correction : nullptr,
            atomIndex, numAtoms, positions);
    return cudaGetLastError();
}

cudaError_t launchScatterPositions(PositionStorage storage, const double* positions, const int* atomIndex,
                                   int numAtoms, void* posq, void* correction, cudaStream_t stream) {
    const int blocks = blocksFor(numAtoms);
    if (storage == PositionStorage::Double)
        scatterPositions<Double4, double><<<blocks, THREADS, 0, stream>>>(positions, atomIndex, numAtoms,
                                                                          (Double4*) posq, nullptr);
    else
        scatterPositions<float4, float><<<blocks, THREADS, 0, stream>>>(
            positions, atomIndex, numAtoms, (float4*) posq,
            storage == PositionStorage::Mixed ? (float4*) correction : nullptr);
    return cudaGetLastError();
}

} // namespace OpenMMBG
