#ifndef OPENMMBG_CUDABGKERNELS_H_
#define OPENMMBG_CUDABGKERNELS_H_

#include "CudaContextConfiguration.h"
#include "TorchCudaDevice.h"
#include "openmmbg/BGKernels.h"
#include "openmmbg/internal/FlowMoveRunner.h"

#include <memory>

namespace OpenMM {
class CudaContext;
}

namespace OpenMMBG {

/**
 * LatentMetropolisIntegrator on the CUDA platform: the flow and the
 * Metropolis test run with LibTorch on the GPU, positions stay on the GPU
 * (CudaContextConfiguration), energies come from the Context itself.
 */
class CudaIntegrateLatentMetropolisStepKernel : public IntegrateLatentMetropolisStepKernel {
public:
    CudaIntegrateLatentMetropolisStepKernel(const std::string& name, const OpenMM::Platform& platform,
                                            OpenMM::CudaContext& cu)
        : IntegrateLatentMetropolisStepKernel(name, platform), cu(cu) {}
    void initialize(const OpenMM::System& system, LatentMetropolisIntegrator& integrator) override;
    void execute(OpenMM::ContextImpl& context, LatentMetropolisIntegrator& integrator, int steps,
                 bool warmUp) override;
    void invalidate() override {}

private:
    OpenMM::CudaContext& cu;
    std::unique_ptr<TorchCudaDevice> torch;
    std::unique_ptr<CudaContextConfiguration> configuration;
    std::unique_ptr<LatentMetropolisMoves> moves;
};

/**
 * TSFParallelTemperingIntegrator on the CUDA platform: all replicas go
 * through the flow in one batch on the GPU; their energies are evaluated in
 * the Context itself, each replica's positions written into its device
 * arrays in turn (SequentialContextEnergies), which then get back replica 0.
 * A GPU evaluates one small molecule far below its capacity either way, and
 * this needs no second Context on the device.
 */
class CudaIntegrateTSFParallelTemperingStepKernel : public IntegrateTSFParallelTemperingStepKernel {
public:
    CudaIntegrateTSFParallelTemperingStepKernel(const std::string& name, const OpenMM::Platform& platform,
                                                OpenMM::CudaContext& cu)
        : IntegrateTSFParallelTemperingStepKernel(name, platform), cu(cu) {}
    void initialize(const OpenMM::System& system, TSFParallelTemperingIntegrator& integrator) override;
    void execute(OpenMM::ContextImpl& context, TSFParallelTemperingIntegrator& integrator, int steps,
                 bool warmUp) override;
    void invalidate() override {}

private:
    OpenMM::CudaContext& cu;
    std::unique_ptr<TorchCudaDevice> torch;
    std::unique_ptr<CudaContextConfiguration> configuration;
    std::unique_ptr<ParallelTemperingSteps> steps;
};

} // namespace OpenMMBG

#endif
