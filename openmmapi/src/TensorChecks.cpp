#include "openmmbg/internal/TensorChecks.h"

#include <ATen/ATen.h>
#include <openmm/OpenMMException.h>

#include <sstream>

namespace OpenMMBG {

std::vector<double> toDoubleVector(const at::Tensor& tensor) {
    at::Tensor c = tensor.detach().to(at::kCPU).to(at::kDouble).contiguous().reshape({-1});
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

std::string shapeString(const at::Tensor& tensor) {
    std::ostringstream out;
    out << "[";
    for (int64_t d = 0; d < tensor.dim(); d++)
        out << (d ? ", " : "") << tensor.size(d);
    out << "]";
    return out.str();
}

void checkConfigurationTensor(const at::Tensor& positions, int numParticles, const std::string& where) {
    if (!positions.defined())
        throw OpenMM::OpenMMException(where + ": the positions tensor is undefined");
    if (positions.scalar_type() != at::kDouble)
        throw OpenMM::OpenMMException(where + ": positions must be float64 (torch.double), got "
                                      + std::string(c10::toString(positions.scalar_type())));
    if (positions.dim() != 3 || positions.size(2) != 3)
        throw OpenMM::OpenMMException(where + ": positions must have shape [batch, particles, 3], got "
                                      + shapeString(positions));
    if (positions.size(1) != numParticles)
        throw OpenMM::OpenMMException(where + ": positions have " + std::to_string(positions.size(1))
                                      + " particles but the System has " + std::to_string(numParticles));
}

namespace {

void checkFinitePositions(const at::Tensor& frames, const std::string& where) {
    if (!at::isfinite(frames).all().item<bool>())
        throw OpenMM::OpenMMException(where + ": the frames contain NaN or infinite positions");
}

} // namespace

void checkFiniteConfigurations(const at::Tensor& frames, int numParticles, const std::string& where) {
    checkConfigurationTensor(frames, numParticles, where);
    checkFinitePositions(frames, where);
}

void checkFrames(const at::Tensor& frames, int numParticles, const std::string& where) {
    checkConfigurationTensor(frames, numParticles, where);  // before frames.size(0)
    if (frames.size(0) < 1)
        throw OpenMM::OpenMMException(where + ": no frames");
    checkFinitePositions(frames, where);
}

} // namespace OpenMMBG
