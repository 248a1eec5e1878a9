#include "openmmbg/TSFFlow.h"

#include "openmmbg/internal/FlowState.h"
#include "openmmbg/internal/MLP.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <openmm/OpenMMException.h>

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

TSFFlow::TSFFlow(int numCoordinates, const FlowConfig& config) : Flow(config), numCoordinates(numCoordinates) {
    if (numCoordinates < 1)
        throw OpenMM::OpenMMException("TSFFlow: need at least 1 coordinate");
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
}

TSFFlow::~TSFFlow() = default;

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
    for (const Coupling& c : couplings) {
        if (c.updatesMomenta)
            q = q * at::exp(c.logScale(z)) + c.translation(z);
        else
            z = z * at::exp(c.logScale(q)) + c.translation(q);
    }
    at::Tensor logDet = (numCoordinates * logScale).expand({v.size(0)});
    return {at::cat({z, q}, 1), logDet};
}

std::pair<at::Tensor, at::Tensor> TSFFlow::inverse(const at::Tensor& gamma) const {
    checkInput(gamma, "TSFFlow::inverse");
    at::Tensor z = gamma.narrow(1, 0, numCoordinates);
    at::Tensor q = gamma.narrow(1, numCoordinates, numCoordinates);
    for (auto c = couplings.rbegin(); c != couplings.rend(); ++c) {
        if (c->updatesMomenta)
            q = (q - c->translation(z)) * at::exp(-c->logScale(z));
        else
            z = (z - c->translation(q)) * at::exp(-c->logScale(q));
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
    return copy;
}

std::vector<at::Tensor> TSFFlow::parameters() const {
    std::vector<at::Tensor> all = {logScale};
    for (const Coupling& c : couplings)
        for (const MLP* net : {&c.scale, &c.translation})
            for (const at::Tensor& p : net->parameters())
                all.push_back(p);
    return all;
}

void TSFFlow::saveState(TensorMap& state, const std::string& prefix) const {
    saveFlowArchitecture(state, prefix, numCoordinates, config);
    saveParameterList(state, prefix, parameters());
}

} // namespace OpenMMBG
