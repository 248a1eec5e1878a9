#ifndef OPENMMBG_FLOW_H_
#define OPENMMBG_FLOW_H_

#include "openmmbg/CoordinateTransform.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace OpenMMBG {

/** Shape and initialisation of a flow's networks. */
struct FlowConfig {
    int numBlocks = 4;      // coupling blocks, each updating both parts once
    int hiddenLayers = 3;   // hidden layers per network
    int hiddenWidth = 256;  // units per hidden layer
    /**
     * Scale of the output layers' initial weights relative to the usual
     * uniform(+-1/sqrt(fan_in)) start: 0 makes the untrained flow exactly the
     * identity, 1 fully random. Negative (the default): the flow type's own
     * choice, 0 for RealNVP and 1 for TSF. A TSF correlates its coordinates
     * only through the momenta, so near the identity the effect of its
     * couplings on the loss is of second order: a saddle that minibatch noise
     * hides. Measured on a correlated 20-dimensional Gaussian (1500 steps):
     * TSF from scales 0, 0.01 and 0.1 stayed at the NLL of a diagonal
     * Gaussian, from 0.3 and 1 it learned the correlations; RealNVP learned
     * from 0 and 1 alike.
     */
    double outputInitScale = -1.0;
    uint64_t seed = 1;      // initial weights
    /** Spline flows: bins per spline, and the half-width (in normalised units) of the non-circular splines' interval. */
    int splineBins = 8;
    double splineTailBound = 5.0;
    /**
     * Spline flows: model the coordinates level by level, as the coordinate
     * transform orders them (CoordinateTransform::conditioningLevels(); for
     * internal coordinates torsions, then angles given the torsions, then
     * bonds given both), numBlocks blocks per level, each updating the two
     * halves of its level given the other half and every earlier level.
     * False: every block splits all coordinates into two halves.
     */
    bool conditionByLevel = false;
    /**
     * TSFs: add to every block two volume-preserving spline couplings, point
     * transformations of (coordinate, momentum) pairs (TSFFlow), with
     * splineBins and splineTailBound. The flow stays temperature-steerable.
     */
    bool tsfSplineCouplings = false;
};

/**
 * An invertible map D from a latent vector v to gamma: gamma = y_n (the
 * normalized coordinates, RealNVP) or gamma = (y_n, p) with auxiliary
 * momenta p (TSF). All tensors float64 [B, dim]; both directions are
 * differentiable and return their log-determinants.
 */
class Flow {
public:
    virtual ~Flow() = default;

    /** n: the number of modelled coordinates y_n. */
    virtual int getNumCoordinates() const = 0;
    /** Dimension of v and gamma: n, or 2n with momenta. */
    virtual int getLatentDim() const = 0;
    /** True if gamma carries auxiliary momenta p after y_n. */
    virtual bool hasMomenta() const = 0;

    /** gamma = D(v) and log|det dD/dv| [B]. */
    virtual std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& v) const = 0;
    /** v = D^-1(gamma) and log|det dD^-1/dgamma| [B]. */
    virtual std::pair<at::Tensor, at::Tensor> inverse(const at::Tensor& gamma) const = 0;

    /**
     * The latent prior at tau (docs/math.md, "Flows"): log density [B] of
     * v [B, d], with its normalising constant; tau is a number or a tensor
     * [B, 1]. The default is N(0, tau I).
     */
    virtual at::Tensor logPrior(const at::Tensor& v, const at::Tensor& tau) const;
    /**
     * Prior samples from standard normal draws z [B, d], entry by entry (the
     * default scales them by sqrt(tau)), so that every flow draws the same
     * random numbers.
     */
    virtual at::Tensor priorFromNormal(const at::Tensor& z, const at::Tensor& tau) const;
    /** Latent vectors after a random-walk step, brought back to the prior's support (the default: unchanged). */
    virtual at::Tensor wrapLatent(const at::Tensor& v) const { return v; }

    /**
     * A copy whose weights live on `device` (float64 inputs must then live
     * there too). The copy has its own weights: training one leaves the
     * other unchanged.
     */
    virtual std::shared_ptr<Flow> to(at::Device device) const = 0;

    /** The trainable tensors (leaves that require gradients). */
    virtual std::vector<at::Tensor> parameters() const = 0;
    int64_t getNumParameters() const;
    /** False if any weight is NaN or infinite (a diverged training). */
    bool hasFiniteParameters() const;

    /** "realnvp", "tsf" or "spline". */
    virtual std::string getTypeName() const = 0;
    const FlowConfig& getConfig() const { return config; }
    /** Architecture and weights, under keys beginning with `prefix`. */
    virtual void saveState(TensorMap& state, const std::string& prefix) const = 0;
    /** Rebuilds a flow of the named type from saveState() output. */
    static std::shared_ptr<Flow> loadState(const std::string& typeName, const TensorMap& state,
                                           const std::string& prefix);

protected:
    explicit Flow(const FlowConfig& config);
    void checkInput(const at::Tensor& input, const char* where) const;
    FlowConfig config;
};

} // namespace OpenMMBG

#endif
