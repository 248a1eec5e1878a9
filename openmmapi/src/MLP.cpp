#include "openmmbg/internal/MLP.h"

#include <ATen/ATen.h>

#include <cmath>

namespace OpenMMBG {

at::Tensor copyToDevice(const at::Tensor& tensor, at::Device device) {
    return tensor.detach().to(tensor.options().device(device), false, true).requires_grad_(tensor.requires_grad());
}

MLP::MLP(int inputs, int outputs, int hiddenLayers, int width, Activation activation, double outputScale,
         at::Generator& generator)
    : activation(activation) {
    int in = inputs;
    for (int layer = 0; layer <= hiddenLayers; layer++) {
        const bool last = layer == hiddenLayers;
        const int out = last ? outputs : width;
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
        in = out;
    }
}

at::Tensor MLP::operator()(const at::Tensor& input) const {
    at::Tensor h = input;
    for (size_t layer = 0; layer < weights.size(); layer++) {
        h = at::addmm(biases[layer], h, weights[layer]);
        if (layer + 1 < weights.size())
            h = activation == Activation::Tanh ? at::tanh(h) : at::relu(h);
    }
    return h;
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
