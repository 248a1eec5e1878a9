#include "openmmbg/Flow.h"

#include "openmmbg/RealNVPFlow.h"
#include "openmmbg/SplineFlow.h"
#include "openmmbg/TSFFlow.h"
#include "openmmbg/internal/FlowState.h"
#include "openmmbg/internal/TensorChecks.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <openmm/OpenMMException.h>

#include <cmath>
#include <numeric>

using OpenMM::OpenMMException;

namespace OpenMMBG {

Flow::Flow(const FlowConfig& config) : config(config) {
    if (config.numBlocks < 1 || config.hiddenLayers < 0 || config.hiddenWidth < 1)
        throw OpenMMException("Flow: need numBlocks >= 1, hiddenLayers >= 0 and hiddenWidth >= 1");
    if (!std::isfinite(config.outputInitScale))
        throw OpenMMException("Flow: outputInitScale must be finite");
}

int64_t Flow::getNumParameters() const {
    int64_t count = 0;
    for (const at::Tensor& p : parameters())
        count += p.numel();
    return count;
}

at::Tensor Flow::logPrior(const at::Tensor& v, const at::Tensor& tau) const {
    const at::Tensor t = tau.to(v.options()).reshape({-1, 1});
    return (-(v * v) / (2 * t) - 0.5 * at::log(2 * M_PI * t)).sum(1);
}

at::Tensor Flow::priorFromNormal(const at::Tensor& z, const at::Tensor& tau) const {
    return z * at::sqrt(tau.to(z.options()).reshape({-1, 1}));
}

bool Flow::hasFiniteParameters() const {
    for (const at::Tensor& p : parameters())
        if (!at::isfinite(p).all().item<bool>())
            return false;
    return true;
}

void Flow::checkInput(const at::Tensor& input, const char* where) const {
    if (!input.defined() || input.dim() != 2 || input.size(1) != getLatentDim() || input.scalar_type() != at::kDouble)
        throw OpenMMException(std::string(where) + ": expected a float64 tensor of shape [batch, "
                              + std::to_string(getLatentDim()) + "], got " + shapeString(input));
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> halvesOfBlock(const std::vector<int64_t>& indices, int block) {
    std::vector<int64_t> first, second;
    const size_t n = indices.size();
    for (size_t i = 0; i < n; i++) {
        const bool inFirst = block % 2 == 0 ? i % 2 == 0 : i < (n + 1) / 2;
        (inFirst ? first : second).push_back(indices[i]);
    }
    return {first, second};
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> halvesOfBlock(int count, int block) {
    std::vector<int64_t> all(count);
    std::iota(all.begin(), all.end(), 0);
    return halvesOfBlock(all, block);
}

void saveFlowArchitecture(TensorMap& state, const std::string& prefix, int numCoordinates, const FlowConfig& config) {
    state[prefix + "architecture"] = at::tensor(
        std::vector<int64_t>{numCoordinates, config.numBlocks, config.hiddenLayers, config.hiddenWidth, 0,
                             (int64_t) config.seed},
        at::kLong);
    state[prefix + "output_init_scale"] = at::tensor({config.outputInitScale}, at::kDouble);
}

void saveSplineSizes(TensorMap& state, const std::string& prefix, const FlowConfig& config) {
    state[prefix + "spline"] = at::tensor({(double) config.splineBins, config.splineTailBound}, at::kDouble);
}

bool loadSplineSizes(const TensorMap& state, const std::string& prefix, FlowConfig& config, const std::string& owner) {
    auto spline = state.find(prefix + "spline");
    if (spline == state.end())
        return false;
    if (spline->second.numel() != 2)
        throw OpenMMException(owner + ": the saved architecture garbles '" + prefix + "spline'");
    const at::Tensor sizes = spline->second.to(at::kDouble);
    config.splineBins = (int) sizes[0].item<double>();
    config.splineTailBound = sizes[1].item<double>();
    return true;
}

std::pair<int, FlowConfig> loadFlowArchitecture(const TensorMap& state, const std::string& prefix) {
    auto found = state.find(prefix + "architecture");
    if (found == state.end() || found->second.numel() != 6)
        throw OpenMMException("Flow: the saved architecture '" + prefix + "architecture' is missing or malformed");
    at::Tensor a = found->second.to(at::kLong);
    FlowConfig config;
    config.numBlocks = (int) a[1].item<int64_t>();
    config.hiddenLayers = (int) a[2].item<int64_t>();
    config.hiddenWidth = (int) a[3].item<int64_t>();
    config.seed = (uint64_t) a[5].item<int64_t>();
    // Only informative: loading replaces the initial weights.
    auto scale = state.find(prefix + "output_init_scale");
    if (scale != state.end())
        config.outputInitScale = scale->second.item<double>();
    return {(int) a[0].item<int64_t>(), config};
}

std::shared_ptr<Flow> Flow::loadState(const std::string& typeName, const TensorMap& state, const std::string& prefix) {
    auto [numCoordinates, config] = loadFlowArchitecture(state, prefix);
    std::shared_ptr<Flow> flow;
    if (typeName == "realnvp")
        flow = std::make_shared<RealNVPFlow>(numCoordinates, config);
    else if (typeName == "tsf")
        flow = TSFFlow::loadArchitecture(numCoordinates, config, state, prefix);
    else if (typeName == "spline")
        flow = SplineFlow::loadArchitecture(numCoordinates, config, state, prefix);
    else
        throw OpenMMException("Flow: unknown flow type '" + typeName + "' (known: realnvp, tsf, spline)");
    loadParameterList(state, prefix, flow->parameters(), "Flow");
    return flow;
}

void saveParameterList(TensorMap& state, const std::string& prefix, const std::vector<at::Tensor>& parameters) {
    for (size_t i = 0; i < parameters.size(); i++)
        state[prefix + "parameter." + std::to_string(i)] = parameters[i].detach().clone();
}

void loadParameterList(const TensorMap& state, const std::string& prefix, const std::vector<at::Tensor>& parameters,
                       const std::string& owner) {
    // Copy the saved weights into the freshly built networks, in parameter order.
    at::NoGradGuard noGrad;
    for (size_t i = 0; i < parameters.size(); i++) {
        std::string key = prefix + "parameter." + std::to_string(i);
        auto found = state.find(key);
        if (found == state.end())
            throw OpenMMException(owner + ": the saved weights lack '" + key + "'");
        if (!found->second.sizes().equals(parameters[i].sizes()))
            throw OpenMMException(owner + ": saved weight '" + key + "' has shape " + shapeString(found->second)
                                  + ", the architecture needs " + shapeString(parameters[i]));
        at::Tensor target = parameters[i];
        target.copy_(found->second);
    }
    if (state.count(prefix + "parameter." + std::to_string(parameters.size())))
        throw OpenMMException(owner + ": the saved weights have more tensors than the architecture");
}

} // namespace OpenMMBG
