#ifndef OPENMMBG_REALNVPFLOW_H_
#define OPENMMBG_REALNVPFLOW_H_

#include "openmmbg/Flow.h"

namespace OpenMMBG {

/**
 * RealNVP (paper 000): affine couplings a <- a * exp(s(b)) + t(b), with a
 * bounded log-scale s = tanh(S(b)) from a network with tanh activations and
 * a translation t from a network with ReLU activations. Each block updates
 * one part given the other and then the other way round; blocks alternate
 * between an even/odd and a first-half/second-half split. Latent = output
 * dimension = n (no momenta); prior N(0, tau I). Not exactly temperature
 * steerable: the baseline for TSFFlow.
 */
class RealNVPFlow : public Flow {
public:
    /** @param numCoordinates n >= 2 */
    RealNVPFlow(int numCoordinates, const FlowConfig& config = FlowConfig());
    ~RealNVPFlow() override;

    int getNumCoordinates() const override;
    int getLatentDim() const override { return getNumCoordinates(); }
    bool hasMomenta() const override { return false; }
    std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& v) const override;
    std::pair<at::Tensor, at::Tensor> inverse(const at::Tensor& gamma) const override;
    std::shared_ptr<Flow> to(at::Device device) const override;
    std::vector<at::Tensor> parameters() const override;
    std::string getTypeName() const override { return "realnvp"; }
    void saveState(TensorMap& state, const std::string& prefix) const override;

private:
    struct Coupling;
    int numCoordinates;
    std::vector<Coupling> couplings;
};

} // namespace OpenMMBG

#endif
