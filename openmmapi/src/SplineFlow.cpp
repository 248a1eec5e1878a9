#include "openmmbg/SplineFlow.h"

#include "openmmbg/internal/FlowState.h"
#include "openmmbg/internal/MLP.h"
#include "openmmbg/internal/RationalQuadraticSpline.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <openmm/OpenMMException.h>

#include <cmath>

using OpenMM::OpenMMException;

namespace OpenMMBG {

/**
 * Updates the entries `updated` with splines whose parameters a network
 * computes from the entries `conditioning` (real ones as they are, circular
 * ones as cosine and sine).
 */
struct SplineFlow::Coupling {
    at::Tensor updated;              // int64 [m]
    at::Tensor updatedCircular;      // bool [m]
    at::Tensor conditioningReal;     // int64
    at::Tensor conditioningCircular; // int64
    MLP network;                     // -> [B, m * 3K]
};

SplineFlow::SplineFlow(int numCoordinates, const std::vector<bool>& circularFlags, const FlowConfig& config)
    : Flow(config), numCoordinates(numCoordinates) {
    if (numCoordinates < 2)
        throw OpenMMException("SplineFlow: couplings need at least 2 coordinates, got " + std::to_string(numCoordinates));
    if ((int) circularFlags.size() != numCoordinates)
        throw OpenMMException("SplineFlow: got " + std::to_string(circularFlags.size()) + " circular flags for "
                              + std::to_string(numCoordinates) + " coordinates");
    if (config.splineBins < 2 || !(config.splineTailBound > 0) || !std::isfinite(config.splineTailBound))
        throw OpenMMException("SplineFlow: need splineBins >= 2 and a positive, finite splineTailBound");
    std::vector<uint8_t> flags(circularFlags.begin(), circularFlags.end());
    circular = at::tensor(flags, at::kByte).to(at::kBool);
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(config.seed);
    // Zero output layers give zero spline parameters: the identity. A positive scale starts elsewhere.
    const double outputScale = config.outputInitScale < 0 ? 0.0 : config.outputInitScale;
    const int parametersPerSpline = 3 * config.splineBins;
    for (int block = 0; block < config.numBlocks; block++) {
        std::vector<int64_t> first, second;
        for (int i = 0; i < numCoordinates; i++) {
            const bool inFirst = block % 2 == 0 ? i % 2 == 0 : i < (numCoordinates + 1) / 2;
            (inFirst ? first : second).push_back(i);
        }
        for (int direction = 0; direction < 2; direction++) {
            const std::vector<int64_t>& updated = direction == 0 ? first : second;
            const std::vector<int64_t>& conditioning = direction == 0 ? second : first;
            Coupling coupling;
            std::vector<int64_t> real, angular;
            for (int64_t i : conditioning)
                (circularFlags[i] ? angular : real).push_back(i);
            std::vector<uint8_t> updatedFlags;
            for (int64_t i : updated)
                updatedFlags.push_back(circularFlags[i] ? 1 : 0);
            coupling.updated = at::tensor(updated, at::kLong);
            coupling.updatedCircular = at::tensor(updatedFlags, at::kByte).to(at::kBool);
            coupling.conditioningReal = at::tensor(real, at::kLong);
            coupling.conditioningCircular = at::tensor(angular, at::kLong);
            const int inputs = (int) (real.size() + 2 * angular.size());
            coupling.network = MLP(inputs, (int) updated.size() * parametersPerSpline, config.hiddenLayers,
                                   config.hiddenWidth, MLP::Activation::ReLU, outputScale, generator);
            couplings.push_back(std::move(coupling));
        }
    }
}

SplineFlow::~SplineFlow() = default;

std::shared_ptr<SplineFlow> SplineFlow::loadArchitecture(int numCoordinates, const FlowConfig& savedConfig,
                                                         const TensorMap& state, const std::string& prefix) {
    auto flags = state.find(prefix + "circular");
    auto spline = state.find(prefix + "spline");
    if (flags == state.end() || spline == state.end() || flags->second.numel() != numCoordinates
        || spline->second.numel() != 2)
        throw OpenMMException("SplineFlow: the saved architecture lacks or garbles '" + prefix + "circular' or '"
                              + prefix + "spline'");
    FlowConfig config = savedConfig;
    const at::Tensor sizes = spline->second.to(at::kDouble);
    config.splineBins = (int) sizes[0].item<double>();
    config.splineTailBound = sizes[1].item<double>();
    const at::Tensor circular = flags->second.to(at::kLong).contiguous();
    std::vector<bool> circularFlags;
    for (int64_t i = 0; i < circular.numel(); i++)
        circularFlags.push_back(circular.data_ptr<int64_t>()[i] != 0);
    return std::make_shared<SplineFlow>(numCoordinates, circularFlags, config);
}

at::Tensor SplineFlow::rotateCircular(const at::Tensor& h, double angle) const {
    if (angle == 0)
        return h;
    const at::Tensor isCircular = circular.to(h.device()).reshape({1, -1});
    return at::where(isCircular, wrapAngle(h + angle), h);
}

at::Tensor SplineFlow::applyCoupling(const Coupling& c, const at::Tensor& h, at::Tensor& logDet, bool inverse) const {
    const at::Tensor angles = h.index_select(1, c.conditioningCircular);
    const at::Tensor features = at::cat({h.index_select(1, c.conditioningReal), at::cos(angles), at::sin(angles)}, 1);
    const int64_t m = c.updated.size(0);
    const at::Tensor params = c.network(features).reshape({h.size(0), m, 3 * config.splineBins});
    auto [updated, logDerivative] = rationalQuadraticSpline(h.index_select(1, c.updated), params, c.updatedCircular,
                                                            config.splineTailBound, inverse);
    logDet = logDet + logDerivative.sum(1);
    return h.index_copy(1, c.updated, updated);
}

std::pair<at::Tensor, at::Tensor> SplineFlow::forward(const at::Tensor& v) const {
    checkInput(v, "SplineFlow::forward");
    at::Tensor h = v;
    at::Tensor logDet = at::zeros({v.size(0)}, v.options());
    for (size_t k = 0; k < couplings.size(); k++) {
        const double angle = 2 * M_PI * (double) (k / 2) / config.numBlocks;  // the block's frame
        if (k % 2 == 0)
            h = rotateCircular(h, angle);
        h = applyCoupling(couplings[k], h, logDet, false);
        if (k % 2 == 1)
            h = rotateCircular(h, -angle);
    }
    return {h, logDet};
}

std::pair<at::Tensor, at::Tensor> SplineFlow::inverse(const at::Tensor& gamma) const {
    checkInput(gamma, "SplineFlow::inverse");
    at::Tensor h = gamma;
    at::Tensor logDet = at::zeros({gamma.size(0)}, gamma.options());
    for (size_t k = couplings.size(); k-- > 0;) {
        const double angle = 2 * M_PI * (double) (k / 2) / config.numBlocks;
        if (k % 2 == 1)
            h = rotateCircular(h, angle);
        h = applyCoupling(couplings[k], h, logDet, true);
        if (k % 2 == 0)
            h = rotateCircular(h, -angle);
    }
    return {h, logDet};
}

at::Tensor SplineFlow::logPrior(const at::Tensor& v, const at::Tensor& tau) const {
    const at::Tensor isCircular = circular.to(v.device()).reshape({1, -1});
    const at::Tensor t = tau.to(v.options()).reshape({-1, 1});
    const at::Tensor gaussian = -(v * v) / (2 * t) - 0.5 * at::log(2 * M_PI * t);
    const at::Tensor uniform = at::full_like(v, -std::log(2 * M_PI));
    return at::where(isCircular, uniform, gaussian).sum(1);
}

at::Tensor SplineFlow::priorFromNormal(const at::Tensor& z, const at::Tensor& tau) const {
    const at::Tensor isCircular = circular.to(z.device()).reshape({1, -1});
    // A standard normal z through its CDF is uniform on (0, 1).
    const at::Tensor uniform = 2 * M_PI * (0.5 * at::erfc(-z / std::sqrt(2.0))) - M_PI;
    return at::where(isCircular, uniform, Flow::priorFromNormal(z, tau));
}

at::Tensor SplineFlow::wrapLatent(const at::Tensor& v) const {
    return at::where(circular.to(v.device()).reshape({1, -1}), wrapAngle(v), v);
}

std::shared_ptr<Flow> SplineFlow::to(at::Device device) const {
    auto copy = std::make_shared<SplineFlow>(*this);
    copy->circular = copyToDevice(circular, device);
    for (Coupling& c : copy->couplings) {
        for (at::Tensor* index : {&c.updated, &c.updatedCircular, &c.conditioningReal, &c.conditioningCircular})
            *index = copyToDevice(*index, device);
        c.network = c.network.to(device);
    }
    return copy;
}

std::vector<at::Tensor> SplineFlow::parameters() const {
    std::vector<at::Tensor> all;
    for (const Coupling& c : couplings)
        for (const at::Tensor& p : c.network.parameters())
            all.push_back(p);
    return all;
}

void SplineFlow::saveState(TensorMap& state, const std::string& prefix) const {
    saveFlowArchitecture(state, prefix, numCoordinates, config);
    state[prefix + "circular"] = circular.to(at::kLong);
    state[prefix + "spline"] = at::tensor({(double) config.splineBins, config.splineTailBound}, at::kDouble);
    saveParameterList(state, prefix, parameters());
}

} // namespace OpenMMBG
