#ifndef OPENMMBG_TSFFLOW_H_
#define OPENMMBG_TSFFLOW_H_

#include "openmmbg/Flow.h"

namespace OpenMMBG {

/**
 * Temperature-steerable flow (paper 001, docs/math.md "Flows"). The latent
 * v = (v_z, v_q) has 2n entries with prior N(0, tau I). D first scales
 * v_z by k = exp(s) (one trainable scalar, log-det n s), then applies
 * volume-preserving couplings that alternately update q given z and z given
 * q: a <- a * exp(h(b) - mean(h(b))) + t(b), with h = tanh(H(b)). With
 * config.tsfSplineCouplings every block first applies two point
 * transformations (z_i, q_i) <- (f_i(z_i), q_i / f_i'(z_i)) of half of the
 * pairs given the other half, f_i a rational-quadratic spline on
 * [-splineTailBound, splineTailBound] (identity outside): volume-preserving
 * as well, but not affine in z. Output
 * gamma = (y_n, p): coordinates and auxiliary momenta. log|det dD/dv| = n s
 * for every v, so q_tau(gamma) ~ q_1(gamma)^(1/tau): exact temperature
 * steering.
 */
class TSFFlow : public Flow {
public:
    /** @param numCoordinates n >= 1 */
    TSFFlow(int numCoordinates, const FlowConfig& config = FlowConfig());
    ~TSFFlow() override;
    /** The TSF that saveState() described (with spline couplings if it saved their sizes), untrained. */
    static std::shared_ptr<TSFFlow> loadArchitecture(int numCoordinates, const FlowConfig& savedConfig,
                                                     const TensorMap& state, const std::string& prefix);

    int getNumCoordinates() const override;
    int getLatentDim() const override { return 2 * getNumCoordinates(); }
    bool hasMomenta() const override { return true; }
    std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& v) const override;
    std::pair<at::Tensor, at::Tensor> inverse(const at::Tensor& gamma) const override;
    std::shared_ptr<Flow> to(at::Device device) const override;
    std::vector<at::Tensor> parameters() const override;
    std::string getTypeName() const override { return "tsf"; }
    void saveState(TensorMap& state, const std::string& prefix) const override;

    /** s, with k = exp(s) the scale of v_z. */
    double getLogScale() const;

private:
    struct Coupling;
    struct SplineCoupling;
    void applySplineCoupling(const SplineCoupling& c, at::Tensor& z, at::Tensor& q, bool inverse) const;
    int numCoordinates;
    at::Tensor logScale;  // [1]
    std::vector<Coupling> couplings;              // two per block
    std::vector<SplineCoupling> splineCouplings;  // two per block with config.tsfSplineCouplings, else none
};

} // namespace OpenMMBG

#endif
