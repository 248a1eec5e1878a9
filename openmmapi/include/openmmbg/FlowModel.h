#ifndef OPENMMBG_FLOWMODEL_H_
#define OPENMMBG_FLOWMODEL_H_

#include "openmmbg/CoordinateTransform.h"
#include "openmmbg/Flow.h"
#include "openmmbg/Topology.h"

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <openmm/System.h>

#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace OpenMMBG {

/** Flow samples and everything the samplers and trainer need about them. */
struct FlowSample {
    at::Tensor x;          // [B, N, 3] configurations, nm
    at::Tensor gamma;      // [B, d] flow output: y_n, or (y_n, p) for flows with momenta
    at::Tensor latent;     // [B, d] v, with gamma = D(v)
    at::Tensor logq;       // [B] log q_tau(gamma), with its normalising constant
    at::Tensor logJ;       // [B] log J(y) of the coordinate transform
    at::Tensor inDomain;   // [B] bool: false where the target density is zero
};

/**
 * A Boltzmann generator: coordinate transform x <-> (y, e), normalisation
 * y_n = (y - shift) / scale, flow gamma = D(v) with gamma = y_n or (y_n, p),
 * prior N(0, tau I) with tau = T / T_ref, and the fingerprint of the System it
 * was made for (docs/math.md).
 *
 * Densities follow "Log-densities used everywhere":
 *  - target  l_T(gamma) = -u_T(x) + log J(y) - |p|^2 / (2 tau)
 *  - model   log q_tau(gamma) = -|v|^2 / (2 tau) - (d/2) log(2 pi tau) - log|det dD/dv|
 * FlowModel copies share their networks (like tensors).
 */
class FlowModel {
public:
    FlowModel(std::shared_ptr<CoordinateTransform> coordinates, const at::Tensor& shift, const at::Tensor& scale,
              std::shared_ptr<Flow> flow, double referenceTemperature, const SystemFingerprint& fingerprint);

    /**
     * A flow on internal coordinates of a molecule: z-matrix from the System's
     * bond graph, torsion cuts and normalisation fitted to frames [B, N, 3] (nm).
     *
     * @param flowType  "tsf", "realnvp" or "spline" (a spline flow sees each torsion as an angle on
     *                  [-pi, pi) about its cut, the other coordinates standardised)
     */
    static FlowModel createForMolecule(const OpenMM::System& system, const at::Tensor& frames,
                                       const std::string& flowType, const FlowConfig& config,
                                       double referenceTemperature);
    /**
     * A flow on Cartesian coordinates (toy systems): `coordinates` index the
     * flattened 3N positions; normalisation fitted to frames, or the identity
     * if frames is undefined. The other coordinates take `canonicalValues` [3N].
     */
    static FlowModel createCartesian(const OpenMM::System& system, const std::vector<int>& coordinates,
                                     const at::Tensor& frames, const std::string& flowType, const FlowConfig& config,
                                     double referenceTemperature, const at::Tensor& canonicalValues = at::Tensor());

    const CoordinateTransform& getCoordinates() const { return *coordinates; }
    std::shared_ptr<CoordinateTransform> getCoordinatesPtr() const { return coordinates; }
    const Flow& getFlow() const { return *flow; }
    std::shared_ptr<Flow> getFlowPtr() const { return flow; }
    const at::Tensor& getShift() const { return shift; }
    const at::Tensor& getScale() const { return scale; }
    double getReferenceTemperature() const { return referenceTemperature; }
    /** Where the weights live (to() moves them): tensors given to the model go there. */
    at::Device getDevice() const { return shift.device(); }
    const SystemFingerprint& getFingerprint() const { return fingerprint; }
    int getNumParticles() const { return coordinates->getNumParticles(); }
    /** n, the number of modelled coordinates. */
    int getNumCoordinates() const { return coordinates->getNumCoordinates(); }
    /** d: n, or 2n for flows with momenta. */
    int getLatentDim() const { return flow->getLatentDim(); }
    bool hasMomenta() const { return flow->hasMomenta(); }
    /** tau = T / T_ref; throws for T <= 0. */
    double tau(double temperature) const;

    /** Throws an OpenMMException naming the difference if `system` is not the molecule this flow was made for. */
    void checkCompatible(const OpenMM::System& system) const;

    at::Tensor normalize(const at::Tensor& y) const;
    at::Tensor denormalize(const at::Tensor& yn) const;
    /** log|dy/dy_n| = sum log scale, a constant. */
    double getLogDetNormalization() const;

    /** gamma = D(v) and log|det dD/dv|. */
    std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& v) const { return flow->forward(v); }
    /** v = D^-1(gamma) and log|det dD^-1/dgamma|. */
    std::pair<at::Tensor, at::Tensor> inverse(const at::Tensor& gamma) const { return flow->inverse(gamma); }
    /** log N(v; 0, tau I) [B] with its normalising constant (e.g. of TSF momenta). */
    static at::Tensor logPrior(const at::Tensor& v, double tau);
    /** The flow's latent prior at tau (Flow::logPrior): log density [B] of v [B, d]. */
    at::Tensor logLatentPrior(const at::Tensor& v, double tau) const;
    /** log q_tau(gamma) [B] from v = D^-1(gamma) and log|det dD/dv| at v. */
    at::Tensor logModel(const at::Tensor& v, const at::Tensor& logDetForward, double tau) const;
    /** count latent vectors [count, d] from the flow's prior at temperature T (K). */
    at::Tensor drawLatent(int64_t count, double temperature, at::Generator& generator) const;
    /** l_T(gamma) [B]: -u + log J - |p|^2/(2 tau); -inf where !valid (out of domain, stereo flip, non-finite u). */
    at::Tensor logTarget(const at::Tensor& gamma, const at::Tensor& reducedEnergy, const at::Tensor& logJ,
                         double tau, const at::Tensor& valid) const;
    /**
     * Importance log-weights [B] of samples drawn at temperature T (K):
     * logTarget - logq, the target being the Boltzmann density whose reduced
     * energies [B] are `reducedEnergy` (usually at T; at another temperature to
     * reweight there). -inf out of the domain, for non-finite u and where
     * `valid` [B] (optional) is false. On the device of `reducedEnergy`.
     */
    at::Tensor logImportanceWeights(const FlowSample& sample, const at::Tensor& reducedEnergy, double temperature,
                                    const at::Tensor& valid = at::Tensor()) const;

    /**
     * count samples at temperature T (K): v from the prior (drawLatent), gamma = D(v),
     * x from y = denormalize(y_n) and the external coordinates e [count, m]
     * (the coordinate transform's canonical frame if undefined).
     * Differentiable with respect to the flow's weights.
     */
    FlowSample sample(int64_t count, double temperature, at::Generator& generator,
                      const at::Tensor& external = at::Tensor()) const;
    /** The same from given latent vectors v [B, d]. */
    FlowSample decode(const at::Tensor& latent, double temperature, const at::Tensor& external = at::Tensor()) const;

    /**
     * log q_T of configurations x [B, N, 3] in nats: the density of their
     * modelled coordinates in Cartesian measure, log q_tau(y_n) - log|dy/dy_n|
     * - log J(y), so that numbers compare across coordinate choices. For flows
     * with momenta this is log q(y, p) - log N(p; 0, tau) with p drawn from
     * `generator` (or given as `momenta` [B, n]): in expectation a lower
     * bound of log q(y).
     */
    at::Tensor logProb(const at::Tensor& x, double temperature, at::Generator& generator,
                       const at::Tensor& momenta = at::Tensor()) const;

    /** Free-text training metadata saved with the model. */
    const std::string& getMetadata() const { return metadata; }
    void setMetadata(const std::string& text) { metadata = text; }

    /**
     * Writes one file: format version, architecture, coordinates, normalisation, T_ref, fingerprint, metadata,
     * weights. The file holds CPU tensors whatever the device: load() gives a model on the CPU.
     */
    void save(const std::string& path) const;
    void save(std::ostream& stream) const;
    /**
     * Throws an OpenMMException for a missing, truncated or corrupt file (the
     * header's length and checksum cover every byte after it), a newer
     * format version, or weights that are not finite.
     */
    static FlowModel load(const std::string& path);
    static FlowModel load(std::istream& stream, const std::string& description = "stream");
    /** load(path), then checkCompatible(system). */
    static FlowModel load(const std::string& path, const OpenMM::System& system);

    /** A copy with its own weights (training one does not change the other), on the same device. */
    FlowModel clone() const;
    /**
     * A copy with its own weights on `device`, where it evaluates tensors
     * that live there (the coordinate transform is shared: it moves its
     * few index tensors to its inputs' device).
     */
    FlowModel to(at::Device device) const;

    /**
     * The newest version read. 4: as 2, for TSFs with spline couplings
     * (FlowConfig::tsfSplineCouplings); 3: as 2, for spline flows conditioned
     * level by level (FlowConfig::conditionByLevel); every other flow is
     * still written as version 2, which has a header with the archive's
     * length and checksum; 1: the bare archive (still read).
     */
    static const int FORMAT_VERSION = 4;

private:
    /** load() without the check of the weights: clone() copies whatever the model holds. */
    static FlowModel read(std::istream& stream, const std::string& description);

    std::shared_ptr<CoordinateTransform> coordinates;
    at::Tensor shift, scale;  // [n]
    std::shared_ptr<Flow> flow;
    double referenceTemperature;
    SystemFingerprint fingerprint;
    std::string metadata;
};

} // namespace OpenMMBG

#endif
