#include "openmmbg/internal/MLP.h"

#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>

namespace OpenMMBG {

at::Tensor copyToDevice(const at::Tensor& tensor, at::Device device) {
    return tensor.detach().to(tensor.options().device(device), false, true).requires_grad_(tensor.requires_grad());
}

double clipGradientNorm(const std::vector<at::Tensor>& parameters, double maxNorm) {
    const at::Device device = parameters.empty() ? at::Device(at::kCPU) : parameters.front().device();
    at::Tensor squared = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device));
    for (const at::Tensor& p : parameters)
        if (p.grad().defined())
            squared = squared + p.grad().square().sum();
    const double norm = std::sqrt(squared.item<double>());
    if (std::isfinite(norm) && maxNorm > 0 && norm > maxNorm)
        for (const at::Tensor& p : parameters)
            if (p.grad().defined())
                p.grad().mul_(maxNorm / norm);
    return norm;
}

namespace {

std::vector<int> uniformSizes(int inputs, int outputs, int hiddenLayers, int width) {
    std::vector<int> sizes = {inputs};
    sizes.insert(sizes.end(), hiddenLayers, width);
    sizes.push_back(outputs);
    return sizes;
}

at::Tensor activate(const at::Tensor& h, MLP::Activation activation) {
    switch (activation) {
    case MLP::Activation::Tanh: return at::tanh(h);
    case MLP::Activation::ReLU: return at::relu(h);
    case MLP::Activation::SELU: return at::selu(h);
    case MLP::Activation::LogSigmoid: return at::log_sigmoid(h);
    }
    return h;
}

} // namespace

MLP::MLP(int inputs, int outputs, int hiddenLayers, int width, Activation activation, double outputScale,
         at::Generator& generator)
    : MLP(uniformSizes(inputs, outputs, hiddenLayers, width), std::vector<Activation>(hiddenLayers, activation),
          outputScale, generator) {}

MLP::MLP(const std::vector<int>& sizes, const std::vector<Activation>& activations, double outputScale,
         at::Generator& generator)
    : activations(activations) {
    if (sizes.size() < 2 || activations.size() + 2 != sizes.size())
        throw std::invalid_argument("MLP: need input and output sizes and one activation per hidden layer");
    for (size_t layer = 0; layer + 1 < sizes.size(); layer++) {
        const bool last = layer + 2 == sizes.size();
        const int in = sizes[layer], out = sizes[layer + 1];
        const double bound = (last ? outputScale : 1.0) / std::sqrt((double) in);
        at::Tensor w = at::empty({in, out}, at::kDouble), b = at::empty({out}, at::kDouble);
        if (bound == 0) {
            w.zero_();
            b.zero_();
        } else {
            w.uniform_(-bound, bound, generator);
            b.uniform_(-bound, bound, generator);
        }
        weights.push_back(w.requires_grad_(true));
        biases.push_back(b.requires_grad_(true));
    }
}

at::Tensor MLP::hidden(const at::Tensor& input) const {
    at::Tensor h = input;
    for (size_t layer = 0; layer + 1 < weights.size(); layer++)
        h = activate(at::addmm(biases[layer], h, weights[layer]), activations[layer]);
    return h;
}

void MLP::trace(const at::Tensor& input, std::vector<at::Tensor>& layerInputs,
                std::vector<at::Tensor>& preActivations) const {
    layerInputs.clear();
    preActivations.clear();
    at::Tensor h = input;
    for (size_t layer = 0; layer < weights.size(); layer++) {
        layerInputs.push_back(h);
        preActivations.push_back(at::addmm(biases[layer], h, weights[layer]));
        if (layer + 1 < weights.size())
            h = activate(preActivations.back(), activations[layer]);
    }
}

at::Tensor MLP::operator()(const at::Tensor& input) const {
    return at::addmm(biases.back(), hidden(input), weights.back());
}

MLP MLP::to(at::Device device) const {
    MLP copy = *this;
    for (at::Tensor& w : copy.weights)
        w = copyToDevice(w, device);
    for (at::Tensor& b : copy.biases)
        b = copyToDevice(b, device);
    return copy;
}

std::vector<at::Tensor> MLP::parameters() const {
    std::vector<at::Tensor> all;
    for (size_t layer = 0; layer < weights.size(); layer++) {
        all.push_back(weights[layer]);
        all.push_back(biases[layer]);
    }
    return all;
}

} // namespace OpenMMBG
