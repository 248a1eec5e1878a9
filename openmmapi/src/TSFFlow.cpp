#include "openmmbg/TSFFlow.h"

#include "openmmbg/internal/FlowState.h"
#include "openmmbg/internal/MLP.h"
#include "openmmbg/internal/RationalQuadraticSpline.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <openmm/OpenMMException.h>

#include <cmath>

namespace OpenMMBG {

/**
 * a <- a * exp(h - mean(h)) + T(b), h = tanh(H(b)): volume preserving, since
 * the log-scales of the updated entries sum to zero.
 */
struct TSFFlow::Coupling {
    bool updatesMomenta;  // q given z if true, z given q otherwise
    MLP scale, translation;

    /** The centred log-scale for conditioning part b. */
    at::Tensor logScale(const at::Tensor& b) const {
        at::Tensor h = at::tanh(scale(b));
        return h - h.mean(1, true);
    }
};

/**
 * A point transformation of the pairs (z_i, q_i), i in `updated`, given the
 * other pairs: z_i <- f_i(z_i) with a rational-quadratic spline f_i, and
 * q_i <- q_i / f_i'(z_i), the way momenta transform under a change of
 * coordinates. Each pair's Jacobian is triangular with diagonal f_i' and
 * 1/f_i', so the coupling preserves volume and the TSF stays exactly
 * steerable while its coordinates get non-affine maps.
 */
struct TSFFlow::SplineCoupling {
    at::Tensor updated, conditioning;  // int64 [m], [n - m]
    MLP network;                       // (z, q) of the conditioning pairs -> [B, m * 3K]
};

TSFFlow::TSFFlow(int numCoordinates, const FlowConfig& config) : Flow(config), numCoordinates(numCoordinates) {
    if (numCoordinates < 1)
        throw OpenMM::OpenMMException("TSFFlow: need at least 1 coordinate");
    if (config.tsfSplineCouplings && numCoordinates < 2)
        throw OpenMM::OpenMMException("TSFFlow: spline couplings need at least 2 coordinates");
    if (config.tsfSplineCouplings
        && (config.splineBins < 2 || !(config.splineTailBound > 0) || !std::isfinite(config.splineTailBound)))
        throw OpenMM::OpenMMException("TSFFlow: spline couplings need splineBins >= 2 and a positive, finite "
                                      "splineTailBound");
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(config.seed);
    logScale = at::zeros({1}, at::kDouble).requires_grad_(true);
    // Random output layers: near the identity a TSF sits on a saddle of the ML loss (FlowConfig).
    const double outputScale = config.outputInitScale < 0 ? 1.0 : config.outputInitScale;
    for (int block = 0; block < config.numBlocks; block++) {
        for (bool updatesMomenta : {true, false}) {
            Coupling coupling;
            coupling.updatesMomenta = updatesMomenta;
            coupling.scale = MLP(numCoordinates, numCoordinates, config.hiddenLayers, config.hiddenWidth,
                                 MLP::Activation::Tanh, outputScale, generator);
            coupling.translation = MLP(numCoordinates, numCoordinates, config.hiddenLayers, config.hiddenWidth,
                                       MLP::Activation::ReLU, outputScale, generator);
            couplings.push_back(std::move(coupling));
        }
    }
    // After the affine networks, so that the parameter order of TSFs without splines is unchanged.
    if (config.tsfSplineCouplings) {
        for (int block = 0; block < config.numBlocks; block++) {
            const auto [first, second] = halvesOfBlock(numCoordinates, block);
            for (int direction = 0; direction < 2; direction++) {
                const std::vector<int64_t>& updated = direction == 0 ? first : second;
                const std::vector<int64_t>& conditioning = direction == 0 ? second : first;
                SplineCoupling coupling;
                coupling.updated = at::tensor(updated, at::kLong);
                coupling.conditioning = at::tensor(conditioning, at::kLong);
                // Zero output layers: every spline starts as the identity.
                coupling.network = MLP(2 * (int) conditioning.size(), (int) updated.size() * 3 * config.splineBins,
                                       config.hiddenLayers, config.hiddenWidth, MLP::Activation::ReLU, 0.0, generator);
                splineCouplings.push_back(std::move(coupling));
            }
        }
    }
}

void TSFFlow::applySplineCoupling(const SplineCoupling& c, at::Tensor& z, at::Tensor& q, bool inverse) const {
    const at::Tensor features = at::cat({z.index_select(1, c.conditioning), q.index_select(1, c.conditioning)}, 1);
    const int64_t m = c.updated.size(0);
    const at::Tensor params = c.network(features).reshape({z.size(0), m, 3 * config.splineBins});
    auto [updated, logDerivative] = rationalQuadraticSpline(z.index_select(1, c.updated), params, at::Tensor(),
                                                            config.splineTailBound, inverse, SplineEntries::Real);
    // logDerivative is that of the map just applied (inverse or not): momenta take its reciprocal.
    const at::Tensor momenta = q.index_select(1, c.updated) * at::exp(-logDerivative);
    z = z.index_copy(1, c.updated, updated);
    q = q.index_copy(1, c.updated, momenta);
}

TSFFlow::~TSFFlow() = default;

std::shared_ptr<TSFFlow> TSFFlow::loadArchitecture(int numCoordinates, const FlowConfig& savedConfig,
                                                   const TensorMap& state, const std::string& prefix) {
    FlowConfig config = savedConfig;
    config.tsfSplineCouplings = loadSplineSizes(state, prefix, config, "TSFFlow");
    return std::make_shared<TSFFlow>(numCoordinates, config);
}

int TSFFlow::getNumCoordinates() const {
    return numCoordinates;
}

double TSFFlow::getLogScale() const {
    return logScale.item<double>();
}

std::pair<at::Tensor, at::Tensor> TSFFlow::forward(const at::Tensor& v) const {
    checkInput(v, "TSFFlow::forward");
    at::Tensor z = v.narrow(1, 0, numCoordinates) * at::exp(logScale);
    at::Tensor q = v.narrow(1, numCoordinates, numCoordinates);
    for (size_t block = 0; block < couplings.size() / 2; block++) {
        for (size_t k = 2 * block; k < 2 * block + 2 && k < splineCouplings.size(); k++)
            applySplineCoupling(splineCouplings[k], z, q, false);
        for (size_t k = 2 * block; k < 2 * block + 2; k++) {
            const Coupling& c = couplings[k];
            if (c.updatesMomenta)
                q = q * at::exp(c.logScale(z)) + c.translation(z);
            else
                z = z * at::exp(c.logScale(q)) + c.translation(q);
        }
    }
    at::Tensor logDet = (numCoordinates * logScale).expand({v.size(0)});
    return {at::cat({z, q}, 1), logDet};
}

std::pair<at::Tensor, at::Tensor> TSFFlow::inverse(const at::Tensor& gamma) const {
    checkInput(gamma, "TSFFlow::inverse");
    at::Tensor z = gamma.narrow(1, 0, numCoordinates);
    at::Tensor q = gamma.narrow(1, numCoordinates, numCoordinates);
    for (size_t block = couplings.size() / 2; block-- > 0;) {
        for (size_t k = 2 * block + 2; k-- > 2 * block;) {
            const Coupling& c = couplings[k];
            if (c.updatesMomenta)
                q = (q - c.translation(z)) * at::exp(-c.logScale(z));
            else
                z = (z - c.translation(q)) * at::exp(-c.logScale(q));
        }
        for (size_t k = 2 * block + 2; k-- > 2 * block;)
            if (k < splineCouplings.size())
                applySplineCoupling(splineCouplings[k], z, q, true);
    }
    z = z * at::exp(-logScale);
    at::Tensor logDet = (-numCoordinates * logScale).expand({gamma.size(0)});
    return {at::cat({z, q}, 1), logDet};
}

std::shared_ptr<Flow> TSFFlow::to(at::Device device) const {
    auto copy = std::make_shared<TSFFlow>(*this);
    copy->logScale = copyToDevice(logScale, device);
    for (Coupling& c : copy->couplings) {
        c.scale = c.scale.to(device);
        c.translation = c.translation.to(device);
    }
    for (SplineCoupling& c : copy->splineCouplings) {
        c.updated = copyToDevice(c.updated, device);
        c.conditioning = copyToDevice(c.conditioning, device);
        c.network = c.network.to(device);
    }
    return copy;
}

std::vector<at::Tensor> TSFFlow::parameters() const {
    std::vector<at::Tensor> all = {logScale};
    for (const Coupling& c : couplings)
        for (const MLP* net : {&c.scale, &c.translation})
            for (const at::Tensor& p : net->parameters())
                all.push_back(p);
    for (const SplineCoupling& c : splineCouplings)
        for (const at::Tensor& p : c.network.parameters())
            all.push_back(p);
    return all;
}

void TSFFlow::saveState(TensorMap& state, const std::string& prefix) const {
    saveFlowArchitecture(state, prefix, numCoordinates, config);
    if (config.tsfSplineCouplings)
        saveSplineSizes(state, prefix, config);
    saveParameterList(state, prefix, parameters());
}

} // namespace OpenMMBG
