#ifndef OPENMMBG_CONTEXTACCESS_H_
#define OPENMMBG_CONTEXTACCESS_H_

// What a platform supplies to the flow-move kernels: how configurations move
// between its Context and LibTorch tensors, and where those tensors live.
// Everything else the kernels do is written once (CommonFlowMoveKernels.h).

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <openmm/Vec3.h>
#include <openmm/internal/ContextImpl.h>

#include <functional>
#include <string>
#include <vector>

namespace OpenMMBG {

class ContextAccess {
public:
    virtual ~ContextAccess() = default;
    /** Prepares the device, once, from the kernel's initialize(); `who` names the integrator in errors. */
    virtual void initialize(const std::string& who) {}
    /** Where the kernel's tensors live. */
    virtual at::Device getDevice() const = 0;
    /** The Context's positions, [1, N, 3] float64 nm on the device. */
    virtual at::Tensor read() = 0;
    /** Sets the Context's positions to x [1, N, 3]. */
    virtual void write(const at::Tensor& x) = 0;
    /** Remembers exactly what the Context holds now ... */
    virtual void save() = 0;
    /** ... and puts it back bit for bit (OpenMM's own values, not a conversion of them). */
    virtual void restore() = 0;
    /**
     * Runs a kernel call: with LibTorch working on the device, and, afterwards
     * (on an exception too), with OpenMM told of positions written behind its back.
     */
    virtual void run(const std::function<void()>& body) { body(); }
};

/**
 * Through ContextImpl::getPositions and setPositions, with tensors on the
 * CPU: exact on the Reference and CPU platforms (they store double
 * positions), usable on any platform at a host round trip per call.
 */
class HostContextAccess : public ContextAccess {
public:
    explicit HostContextAccess(OpenMM::ContextImpl& context) : context(context) {}
    at::Device getDevice() const override { return at::kCPU; }
    at::Tensor read() override;
    void write(const at::Tensor& x) override;
    void save() override;
    void restore() override;

private:
    OpenMM::ContextImpl& context;
    std::vector<OpenMM::Vec3> saved, written;
};

} // namespace OpenMMBG

#endif
