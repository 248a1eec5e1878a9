#ifndef OPENMMBG_SPLINEFLOW_H_
#define OPENMMBG_SPLINEFLOW_H_

#include "openmmbg/Flow.h"

#include <ATen/core/Generator.h>

#include <vector>

namespace OpenMMBG {

/**
 * Neural-spline flow (Durkan et al. 2019) on normalised coordinates of two
 * kinds (docs/math.md, "Flows"): circular ones (torsions, normalised to
 * [-pi, pi)) and real ones (bonds, angles, Cartesian coordinates). Each
 * coupling updates one part of the coordinates given the other: a network
 * of the conditioning part (circular coordinates enter as their cosine and
 * sine) gives each updated coordinate a monotone rational-quadratic spline
 * of config.splineBins bins,
 *  - circular coordinates: a spline of [-pi, pi) onto itself with equal
 *    derivatives at both ends, a diffeomorphism of the circle (Rezende et
 *    al. 2020);
 *  - real coordinates: a spline of [-B, B], B = config.splineTailBound,
 *    with the identity outside.
 * Blocks alternate an even/odd and a first/second-half split. Block k works
 * in a frame where every circular coordinate is rotated by 2 pi k / blocks,
 * so that each block's splines fix a different point of the circle. With
 * config.conditionByLevel the coordinates are modelled level by level
 * (`levels`, lowest first, numBlocks blocks each): a block splits its
 * level's coordinates and conditions each half on the other half and on
 * every lower level, so the density factorises as p(level 0) p(level 1 |
 * level 0) ... in the direction from latent to data.
 *
 * The output layers start at zero, which makes the untrained flow exactly
 * the identity. Latent = output dimension = n (no momenta). Prior: uniform
 * on [-pi, pi) for circular coordinates, N(0, tau) for real ones, so at
 * another temperature only the real part of the prior widens: a valid,
 * exactly known proposal density, but not a temperature-steered one (use
 * TSFFlow for that). log|det| is the sum of the splines' log-derivatives.
 */
class SplineFlow : public Flow {
public:
    /**
     * @param numCoordinates  n >= 2
     * @param circular        n flags: which coordinates are angles on [-pi, pi)
     * @param levels          n levels, used with config.conditionByLevel (CoordinateTransform::conditioningLevels())
     */
    SplineFlow(int numCoordinates, const std::vector<bool>& circular, const FlowConfig& config = FlowConfig(),
               const std::vector<int>& levels = {});
    ~SplineFlow() override;

    /** Rebuilds a spline flow's architecture (weights still initial) from saveState() output. */
    static std::shared_ptr<SplineFlow> loadArchitecture(int numCoordinates, const FlowConfig& config,
                                                        const TensorMap& state, const std::string& prefix);

    int getNumCoordinates() const override { return numCoordinates; }
    int getLatentDim() const override { return numCoordinates; }
    bool hasMomenta() const override { return false; }
    std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& v) const override;
    std::pair<at::Tensor, at::Tensor> inverse(const at::Tensor& gamma) const override;
    at::Tensor logPrior(const at::Tensor& v, const at::Tensor& tau) const override;
    at::Tensor priorFromNormal(const at::Tensor& z, const at::Tensor& tau) const override;
    at::Tensor wrapLatent(const at::Tensor& v) const override;
    std::shared_ptr<Flow> to(at::Device device) const override;
    std::vector<at::Tensor> parameters() const override;
    std::string getTypeName() const override { return "spline"; }
    void saveState(TensorMap& state, const std::string& prefix) const override;

    /** [n] bool: the circular coordinates. */
    const at::Tensor& getCircular() const { return circular; }

private:
    struct Coupling;
    /** A coupling updating `updated` given `conditioning` (indices of coordinates), frame angle 0. */
    Coupling makeCoupling(const std::vector<int64_t>& updated, const std::vector<int64_t>& conditioning,
                          const std::vector<bool>& circularFlags, at::Generator& generator) const;
    /** One coupling in the direction given, on h [B, n]; adds its log-determinant to logDet. */
    at::Tensor applyCoupling(const Coupling& coupling, const at::Tensor& h, at::Tensor& logDet, bool inverse) const;
    /** h with the circular coordinates rotated by `angle` (rad). */
    at::Tensor rotateCircular(const at::Tensor& h, double angle) const;

    int numCoordinates;
    at::Tensor circular;  // [n] bool
    std::vector<int> levelOf;  // [n]: all 0 without config.conditionByLevel
    std::vector<Coupling> couplings;  // two per block
};

} // namespace OpenMMBG

#endif
