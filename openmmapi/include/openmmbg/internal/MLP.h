#ifndef OPENMMBG_MLP_H_
#define OPENMMBG_MLP_H_

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <vector>

namespace OpenMMBG {

/**
 * A copy of `tensor` on `device` that never shares storage with it (even on
 * the same device) and keeps requires_grad: how flows copy their weights.
 */
at::Tensor copyToDevice(const at::Tensor& tensor, at::Device device);

/**
 * The global norm of the gradients of `parameters` (non-finite if any entry
 * is); if it is finite and above maxNorm > 0, every gradient is scaled so that
 * it becomes maxNorm. Summed where the weights live and read once: one
 * transfer from a GPU, not one per parameter.
 */
double clipGradientNorm(const std::vector<at::Tensor>& parameters, double maxNorm);

/**
 * A multi-layer perceptron on plain float64 tensors (no torch::nn, which
 * costs compile time): `hiddenLayers` layers of `width` units with the given
 * activation, then a linear output layer. Weights are leaf tensors that
 * require gradients.
 */
class MLP {
public:
    enum class Activation { Tanh, ReLU, SELU, LogSigmoid };

    MLP() = default;
    /**
     * Weights and biases start uniform in +-1/sqrt(fan_in) (PyTorch's Linear
     * default), drawn from `generator`; the output layer's range is scaled by
     * outputScale (0: the network outputs 0 for every input).
     */
    MLP(int inputs, int outputs, int hiddenLayers, int width, Activation activation, double outputScale,
        at::Generator& generator);
    /**
     * Layers of the given sizes (inputs, hidden widths..., outputs), one
     * activation per hidden layer, initialised as above.
     */
    MLP(const std::vector<int>& sizes, const std::vector<Activation>& activations, double outputScale,
        at::Generator& generator);

    at::Tensor operator()(const at::Tensor& input) const;
    /** The last hidden layer's activations [B, width] (the input itself without hidden layers). */
    at::Tensor hidden(const at::Tensor& input) const;
    /**
     * The network layer by layer: each layer's input (`input`, then each
     * hidden layer's activations) and pre-activation (its input @ weight +
     * bias; the last one is the output). For curvature estimates, which need
     * gradients with respect to the pre-activations.
     */
    void trace(const at::Tensor& input, std::vector<at::Tensor>& layerInputs,
               std::vector<at::Tensor>& preActivations) const;
    /** The output layer: output = hidden(input) @ outputWeight() + outputBias(). */
    const at::Tensor& outputWeight() const { return weights.back(); }  // [width, outputs]
    const at::Tensor& outputBias() const { return biases.back(); }     // [outputs]
    int getNumInputs() const { return (int) weights.front().size(0); }
    int getNumOutputs() const { return (int) weights.back().size(1); }
    /** A copy with its own weights on `device`. */
    MLP to(at::Device device) const;
    std::vector<at::Tensor> parameters() const;

private:
    std::vector<at::Tensor> weights;  // [in, out]
    std::vector<at::Tensor> biases;   // [out]
    std::vector<Activation> activations;  // one per hidden layer
};

} // namespace OpenMMBG

#endif
