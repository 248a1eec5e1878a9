#ifndef OPENMMBG_COORDINATETRANSFORM_H_
#define OPENMMBG_COORDINATETRANSFORM_H_

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace OpenMMBG {

/** Named tensors: how the parts of a FlowModel describe themselves for saving. */
using TensorMap = std::map<std::string, at::Tensor>;

/**
 * An invertible map between Cartesian positions x [B, N, 3] (nm) and a pair
 * (y, e): y [B, n] are the coordinates a flow models, e [B, m] the remaining
 * (external) degrees of freedom, which Monte Carlo moves keep fixed. All
 * tensors are float64; inverse() is differentiable with respect to y.
 */
class CoordinateTransform {
public:
    virtual ~CoordinateTransform() = default;

    virtual int getNumParticles() const = 0;
    /** n, the number of coordinates in y. */
    virtual int getNumCoordinates() const = 0;
    /** m, the number of external degrees of freedom in e. */
    virtual int getNumExternal() const = 0;

    /** y and e of configurations x [B, N, 3]. */
    virtual std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& x) const = 0;
    /** Configurations x [B, N, 3] from y [B, n] and e [B, m]. */
    virtual at::Tensor inverse(const at::Tensor& y, const at::Tensor& e) const = 0;
    /** log|det dx/d(e, y)|, only the part that depends on y [B]. */
    virtual at::Tensor logDetJacobian(const at::Tensor& y) const = 0;
    /** [B] bool: true where y lies in the domain; outside it the target density is zero. */
    virtual at::Tensor inDomain(const at::Tensor& y) const = 0;
    /** [B] summed squared distance of y outside its domain (0 inside), a training penalty. */
    virtual at::Tensor domainViolation(const at::Tensor& y) const = 0;
    /** e [B, m] of a fixed frame, for configurations generated from scratch. */
    virtual at::Tensor canonicalExternal(int64_t batch) const = 0;

    /** [n] flags: which coordinates are angles on a circle (torsions); none by default. */
    virtual std::vector<bool> circularCoordinates() const { return std::vector<bool>(getNumCoordinates(), false); }
    /**
     * [n] levels for flows that condition level by level
     * (FlowConfig::conditionByLevel): a coordinate of level k is modelled
     * given those of levels below k. All 0 (one level) by default.
     */
    virtual std::vector<int> conditioningLevels() const { return std::vector<int>(getNumCoordinates(), 0); }
    /** "internal" or "cartesian": the key a saved FlowModel records. */
    virtual std::string getTypeName() const = 0;
    /** Everything needed to rebuild this transform, under keys beginning with `prefix`. */
    virtual void saveState(TensorMap& state, const std::string& prefix) const = 0;
};

} // namespace OpenMMBG

#endif
