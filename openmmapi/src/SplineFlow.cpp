#include "openmmbg/SplineFlow.h"

#include "openmmbg/internal/FlowState.h"
#include "openmmbg/internal/MLP.h"
#include "openmmbg/internal/RationalQuadraticSpline.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <openmm/OpenMMException.h>

#include <algorithm>
#include <cmath>

using OpenMM::OpenMMException;

namespace OpenMMBG {

/**
 * Updates the entries `updated` with splines whose parameters a network
 * computes from the entries `conditioning` (real ones as they are, circular
 * ones as cosine and sine; a constant 1 if there are none). The coupling
 * works in a frame where every circular coordinate is rotated by
 * frameAngle: the first coupling of a block enters it, the last leaves it.
 */
struct SplineFlow::Coupling {
    at::Tensor updated;              // int64 [m]
    at::Tensor updatedCircular;      // bool [m]
    at::Tensor conditioningReal;     // int64
    at::Tensor conditioningCircular; // int64
    MLP network;                     // -> [B, m * 3K]
    SplineEntries kind = SplineEntries::Mixed;  // of the updated entries
    double frameAngle = 0;           // rad
    bool entersFrame = false, leavesFrame = false;
};

namespace {

/** The entries of a saved integer tensor. */
std::vector<int> integerValues(const at::Tensor& saved) {
    const at::Tensor values = saved.to(at::kLong).contiguous();
    return std::vector<int>(values.data_ptr<int64_t>(), values.data_ptr<int64_t>() + values.numel());
}

} // namespace

SplineFlow::SplineFlow(int numCoordinates, const std::vector<bool>& circularFlags, const FlowConfig& config,
                       const std::vector<int>& levels)
    : Flow(config), numCoordinates(numCoordinates) {
    if (numCoordinates < 2)
        throw OpenMMException("SplineFlow: couplings need at least 2 coordinates, got " + std::to_string(numCoordinates));
    if ((int) circularFlags.size() != numCoordinates)
        throw OpenMMException("SplineFlow: got " + std::to_string(circularFlags.size()) + " circular flags for "
                              + std::to_string(numCoordinates) + " coordinates");
    if (config.splineBins < 2 || !(config.splineTailBound > 0) || !std::isfinite(config.splineTailBound))
        throw OpenMMException("SplineFlow: need splineBins >= 2 and a positive, finite splineTailBound");
    if (config.conditionByLevel) {
        if ((int) levels.size() != numCoordinates)
            throw OpenMMException("SplineFlow: conditionByLevel needs one level per coordinate, got "
                                  + std::to_string(levels.size()) + " for " + std::to_string(numCoordinates));
        levelOf = levels;
    } else {
        levelOf.assign(numCoordinates, 0);
    }
    std::vector<uint8_t> flags(circularFlags.begin(), circularFlags.end());
    circular = at::tensor(flags, at::kByte).to(at::kBool);
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(config.seed);
    std::vector<int> distinctLevels(levelOf.begin(), levelOf.end());
    std::sort(distinctLevels.begin(), distinctLevels.end());
    distinctLevels.erase(std::unique(distinctLevels.begin(), distinctLevels.end()), distinctLevels.end());
    for (int level : distinctLevels) {
        std::vector<int64_t> members, earlier;
        for (int i = 0; i < numCoordinates; i++) {
            if (levelOf[i] == level)
                members.push_back(i);
            else if (levelOf[i] < level)
                earlier.push_back(i);
        }
        for (int block = 0; block < config.numBlocks; block++) {
            const auto [first, second] = halvesOfBlock(members, block);
            const size_t blockStart = couplings.size();
            for (int direction = 0; direction < 2; direction++) {
                const std::vector<int64_t>& updated = direction == 0 ? first : second;
                if (updated.empty())
                    continue;
                std::vector<int64_t> conditioning = direction == 0 ? second : first;
                conditioning.insert(conditioning.end(), earlier.begin(), earlier.end());
                std::sort(conditioning.begin(), conditioning.end());
                couplings.push_back(makeCoupling(updated, conditioning, circularFlags, generator));
                couplings.back().frameAngle = 2 * M_PI * (double) block / config.numBlocks;
            }
            couplings[blockStart].entersFrame = true;
            couplings.back().leavesFrame = true;
        }
    }
}

SplineFlow::Coupling SplineFlow::makeCoupling(const std::vector<int64_t>& updated,
                                              const std::vector<int64_t>& conditioning,
                                              const std::vector<bool>& circularFlags, at::Generator& generator) const {
    Coupling coupling;
    std::vector<int64_t> real, angular;
    for (int64_t i : conditioning)
        (circularFlags[i] ? angular : real).push_back(i);
    std::vector<uint8_t> updatedFlags;
    for (int64_t i : updated)
        updatedFlags.push_back(circularFlags[i] ? 1 : 0);
    coupling.updated = at::tensor(updated, at::kLong);
    coupling.updatedCircular = at::tensor(updatedFlags, at::kByte).to(at::kBool);
    const size_t circularCount = std::count(updatedFlags.begin(), updatedFlags.end(), 1);
    coupling.kind = circularCount == updated.size() ? SplineEntries::Circular
                    : circularCount == 0            ? SplineEntries::Real
                                                    : SplineEntries::Mixed;
    coupling.conditioningReal = at::tensor(real, at::kLong);
    coupling.conditioningCircular = at::tensor(angular, at::kLong);
    // Zero output layers give zero spline parameters: the identity. A positive scale starts elsewhere.
    const double outputScale = config.outputInitScale < 0 ? 0.0 : config.outputInitScale;
    const int inputs = std::max(1, (int) (real.size() + 2 * angular.size()));
    coupling.network = MLP(inputs, (int) updated.size() * 3 * config.splineBins, config.hiddenLayers,
                           config.hiddenWidth, MLP::Activation::ReLU, outputScale, generator);
    return coupling;
}

SplineFlow::~SplineFlow() = default;

std::shared_ptr<SplineFlow> SplineFlow::loadArchitecture(int numCoordinates, const FlowConfig& savedConfig,
                                                         const TensorMap& state, const std::string& prefix) {
    FlowConfig config = savedConfig;
    auto flags = state.find(prefix + "circular");
    if (flags == state.end() || flags->second.numel() != numCoordinates
        || !loadSplineSizes(state, prefix, config, "SplineFlow"))
        throw OpenMMException("SplineFlow: the saved architecture lacks or garbles '" + prefix + "circular' or '"
                              + prefix + "spline'");
    auto savedLevels = state.find(prefix + "levels");
    config.conditionByLevel = savedLevels != state.end();
    if (config.conditionByLevel && savedLevels->second.numel() != numCoordinates)
        throw OpenMMException("SplineFlow: the saved architecture garbles '" + prefix + "levels'");
    const std::vector<int> levels = config.conditionByLevel ? integerValues(savedLevels->second) : std::vector<int>();
    std::vector<bool> circularFlags;
    for (int flag : integerValues(flags->second))
        circularFlags.push_back(flag != 0);
    return std::make_shared<SplineFlow>(numCoordinates, circularFlags, config, levels);
}

at::Tensor SplineFlow::rotateCircular(const at::Tensor& h, double angle) const {
    if (angle == 0)
        return h;
    const at::Tensor isCircular = circular.to(h.device()).reshape({1, -1});
    return at::where(isCircular, wrapAngle(h + angle), h);
}

at::Tensor SplineFlow::applyCoupling(const Coupling& c, const at::Tensor& h, at::Tensor& logDet, bool inverse) const {
    const at::Tensor angles = h.index_select(1, c.conditioningCircular);
    at::Tensor features = at::cat({h.index_select(1, c.conditioningReal), at::cos(angles), at::sin(angles)}, 1);
    if (features.size(1) == 0)
        features = at::ones({h.size(0), 1}, h.options());
    const int64_t m = c.updated.size(0);
    const at::Tensor params = c.network(features).reshape({h.size(0), m, 3 * config.splineBins});
    auto [updated, logDerivative] = rationalQuadraticSpline(h.index_select(1, c.updated), params, c.updatedCircular,
                                                            config.splineTailBound, inverse, c.kind);
    logDet = logDet + logDerivative.sum(1);
    return h.index_copy(1, c.updated, updated);
}

std::pair<at::Tensor, at::Tensor> SplineFlow::forward(const at::Tensor& v) const {
    checkInput(v, "SplineFlow::forward");
    at::Tensor h = v;
    at::Tensor logDet = at::zeros({v.size(0)}, v.options());
    for (const Coupling& c : couplings) {
        if (c.entersFrame)
            h = rotateCircular(h, c.frameAngle);
        h = applyCoupling(c, h, logDet, false);
        if (c.leavesFrame)
            h = rotateCircular(h, -c.frameAngle);
    }
    return {h, logDet};
}

std::pair<at::Tensor, at::Tensor> SplineFlow::inverse(const at::Tensor& gamma) const {
    checkInput(gamma, "SplineFlow::inverse");
    at::Tensor h = gamma;
    at::Tensor logDet = at::zeros({gamma.size(0)}, gamma.options());
    for (auto c = couplings.rbegin(); c != couplings.rend(); ++c) {
        if (c->leavesFrame)
            h = rotateCircular(h, c->frameAngle);
        h = applyCoupling(*c, h, logDet, true);
        if (c->entersFrame)
            h = rotateCircular(h, -c->frameAngle);
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
    saveSplineSizes(state, prefix, config);
    if (config.conditionByLevel)
        state[prefix + "levels"] = at::tensor(std::vector<int64_t>(levelOf.begin(), levelOf.end()), at::kLong);
    saveParameterList(state, prefix, parameters());
}

} // namespace OpenMMBG
