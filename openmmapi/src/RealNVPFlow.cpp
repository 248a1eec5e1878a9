#include "openmmbg/RealNVPFlow.h"

#include "openmmbg/internal/FlowState.h"
#include "openmmbg/internal/MLP.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <openmm/OpenMMException.h>

namespace OpenMMBG {

/** a <- a * exp(tanh(S(b))) + T(b) on the entries `updated`, conditioned on `conditioning`. */
struct RealNVPFlow::Coupling {
    at::Tensor updated, conditioning;  // int64 indices
    MLP scale, translation;
};

RealNVPFlow::RealNVPFlow(int numCoordinates, const FlowConfig& config)
    : Flow(config), numCoordinates(numCoordinates) {
    if (numCoordinates < 2)
        throw OpenMM::OpenMMException("RealNVPFlow: couplings need at least 2 coordinates, got "
                                      + std::to_string(numCoordinates));
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(config.seed);
    const double outputScale = config.outputInitScale < 0 ? 0.0 : config.outputInitScale;  // identity start
    for (int block = 0; block < config.numBlocks; block++) {
        const auto [first, second] = halvesOfBlock(numCoordinates, block);
        for (int direction = 0; direction < 2; direction++) {
            const std::vector<int64_t>& updated = direction == 0 ? first : second;
            const std::vector<int64_t>& conditioning = direction == 0 ? second : first;
            Coupling coupling;
            coupling.updated = at::tensor(updated, at::kLong);
            coupling.conditioning = at::tensor(conditioning, at::kLong);
            int in = (int) conditioning.size(), out = (int) updated.size();
            coupling.scale = MLP(in, out, config.hiddenLayers, config.hiddenWidth, MLP::Activation::Tanh,
                                 outputScale, generator);
            coupling.translation = MLP(in, out, config.hiddenLayers, config.hiddenWidth, MLP::Activation::ReLU,
                                       outputScale, generator);
            couplings.push_back(std::move(coupling));
        }
    }
}

RealNVPFlow::~RealNVPFlow() = default;

int RealNVPFlow::getNumCoordinates() const {
    return numCoordinates;
}

std::pair<at::Tensor, at::Tensor> RealNVPFlow::forward(const at::Tensor& v) const {
    checkInput(v, "RealNVPFlow::forward");
    at::Tensor h = v;
    at::Tensor logDet = at::zeros({v.size(0)}, v.options());
    for (const Coupling& c : couplings) {
        at::Tensor b = h.index_select(1, c.conditioning);
        at::Tensor s = at::tanh(c.scale(b));
        at::Tensor a = h.index_select(1, c.updated) * at::exp(s) + c.translation(b);
        logDet = logDet + s.sum(1);
        h = h.index_copy(1, c.updated, a);
    }
    return {h, logDet};
}

std::pair<at::Tensor, at::Tensor> RealNVPFlow::inverse(const at::Tensor& gamma) const {
    checkInput(gamma, "RealNVPFlow::inverse");
    at::Tensor h = gamma;
    at::Tensor logDet = at::zeros({gamma.size(0)}, gamma.options());
    for (auto c = couplings.rbegin(); c != couplings.rend(); ++c) {
        at::Tensor b = h.index_select(1, c->conditioning);
        at::Tensor s = at::tanh(c->scale(b));
        at::Tensor a = (h.index_select(1, c->updated) - c->translation(b)) * at::exp(-s);
        logDet = logDet - s.sum(1);
        h = h.index_copy(1, c->updated, a);
    }
    return {h, logDet};
}

std::shared_ptr<Flow> RealNVPFlow::to(at::Device device) const {
    auto copy = std::make_shared<RealNVPFlow>(*this);
    for (Coupling& c : copy->couplings) {
        c.updated = copyToDevice(c.updated, device);
        c.conditioning = copyToDevice(c.conditioning, device);
        c.scale = c.scale.to(device);
        c.translation = c.translation.to(device);
    }
    return copy;
}

std::vector<at::Tensor> RealNVPFlow::parameters() const {
    std::vector<at::Tensor> all;
    for (const Coupling& c : couplings)
        for (const MLP* net : {&c.scale, &c.translation})
            for (const at::Tensor& p : net->parameters())
                all.push_back(p);
    return all;
}

void RealNVPFlow::saveState(TensorMap& state, const std::string& prefix) const {
    saveFlowArchitecture(state, prefix, numCoordinates, config);
    saveParameterList(state, prefix, parameters());
}

} // namespace OpenMMBG
