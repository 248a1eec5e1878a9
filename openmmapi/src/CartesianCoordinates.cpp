#include "openmmbg/CartesianCoordinates.h"

#include "openmmbg/internal/TensorChecks.h"

#include <ATen/ATen.h>
#include <openmm/OpenMMException.h>

#include <numeric>

using OpenMM::OpenMMException;

namespace OpenMMBG {

CartesianCoordinates::CartesianCoordinates(int numParticles, const std::vector<int>& coordinates,
                                           const at::Tensor& canonicalValues)
    : numParticles(numParticles), modelled(coordinates) {
    if (numParticles < 1)
        throw OpenMMException("CartesianCoordinates: need at least one particle");
    const int total = 3 * numParticles;
    if (modelled.empty()) {
        modelled.resize(total);
        std::iota(modelled.begin(), modelled.end(), 0);
    }
    std::vector<bool> used(total, false);
    for (int index : modelled) {
        if (index < 0 || index >= total)
            throw OpenMMException("CartesianCoordinates: coordinate index " + std::to_string(index)
                                  + " is out of range for " + std::to_string(numParticles) + " particles");
        if (used[index])
            throw OpenMMException("CartesianCoordinates: coordinate index " + std::to_string(index) + " appears twice");
        used[index] = true;
    }
    for (int index = 0; index < total; index++)
        if (!used[index])
            external.push_back(index);
    modelledIndex = at::tensor(std::vector<int64_t>(modelled.begin(), modelled.end()), at::kLong);
    externalIndex = at::tensor(std::vector<int64_t>(external.begin(), external.end()), at::kLong);
    if (canonicalValues.defined()) {
        if (canonicalValues.numel() != total)
            throw OpenMMException("CartesianCoordinates: canonicalValues needs " + std::to_string(total) + " values");
        canonical = canonicalValues.to(at::kDouble).reshape({total}).clone();
    } else {
        canonical = at::zeros({total}, at::kDouble);
    }
}

std::pair<at::Tensor, at::Tensor> CartesianCoordinates::forward(const at::Tensor& x) const {
    checkConfigurationTensor(x, numParticles, "CartesianCoordinates::forward");
    at::Tensor flat = x.reshape({x.size(0), 3 * numParticles});
    return {flat.index_select(1, modelledIndex.to(x.device())), flat.index_select(1, externalIndex.to(x.device()))};
}

at::Tensor CartesianCoordinates::inverse(const at::Tensor& y, const at::Tensor& e) const {
    if (!y.defined() || y.dim() != 2 || y.size(1) != getNumCoordinates() || y.scalar_type() != at::kDouble)
        throw OpenMMException("CartesianCoordinates::inverse: y must be float64 of shape [batch, "
                              + std::to_string(getNumCoordinates()) + "], got " + shapeString(y));
    if (!e.defined() || e.dim() != 2 || e.size(1) != getNumExternal() || e.size(0) != y.size(0))
        throw OpenMMException("CartesianCoordinates::inverse: e must have shape [batch, "
                              + std::to_string(getNumExternal()) + "], got " + shapeString(e));
    at::Tensor flat = at::zeros({y.size(0), 3 * numParticles}, y.options());
    flat = flat.index_copy(1, modelledIndex.to(y.device()), y);
    if (!external.empty())
        flat = flat.index_copy(1, externalIndex.to(y.device()), e.to(y.dtype()));
    return flat.reshape({y.size(0), numParticles, 3});
}

at::Tensor CartesianCoordinates::logDetJacobian(const at::Tensor& y) const {
    return at::zeros({y.size(0)}, y.options());
}

at::Tensor CartesianCoordinates::inDomain(const at::Tensor& y) const {
    return at::ones({y.size(0)}, y.options().dtype(at::kBool));
}

at::Tensor CartesianCoordinates::domainViolation(const at::Tensor& y) const {
    return at::zeros({y.size(0)}, y.options());
}

at::Tensor CartesianCoordinates::canonicalExternal(int64_t batch) const {
    return canonical.index_select(0, externalIndex).unsqueeze(0).expand({batch, getNumExternal()}).clone();
}

void CartesianCoordinates::saveState(TensorMap& state, const std::string& prefix) const {
    state[prefix + "num_particles"] = at::tensor({(int64_t) numParticles}, at::kLong);
    state[prefix + "coordinates"] = modelledIndex.clone();
    state[prefix + "canonical"] = canonical.clone();
}

std::shared_ptr<CartesianCoordinates> CartesianCoordinates::loadState(const TensorMap& state, const std::string& prefix) {
    for (const char* key : {"num_particles", "coordinates", "canonical"})
        if (!state.count(prefix + key))
            throw OpenMMException("CartesianCoordinates: the saved state lacks '" + prefix + key + "'");
    at::Tensor indices = state.at(prefix + "coordinates").to(at::kLong).contiguous();
    std::vector<int> coordinates(indices.data_ptr<int64_t>(), indices.data_ptr<int64_t>() + indices.numel());
    return std::make_shared<CartesianCoordinates>((int) state.at(prefix + "num_particles").item<int64_t>(),
                                                  coordinates, state.at(prefix + "canonical"));
}

} // namespace OpenMMBG
