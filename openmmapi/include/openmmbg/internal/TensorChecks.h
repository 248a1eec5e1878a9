#ifndef OPENMMBG_TENSORCHECKS_H_
#define OPENMMBG_TENSORCHECKS_H_

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace OpenMMBG {

/**
 * Throws an OpenMMException, prefixed with `where`, unless `positions` is a
 * defined float64 tensor of shape [B, numParticles, 3].
 */
void checkConfigurationTensor(const at::Tensor& positions, int numParticles, const std::string& where);

/** checkConfigurationTensor(), and every position finite ("<where>: the frames contain NaN or infinite positions"). */
void checkFiniteConfigurations(const at::Tensor& frames, int numParticles, const std::string& where);

/** checkFiniteConfigurations() for training data: at least one frame ("<where>: no frames"). */
void checkFrames(const at::Tensor& frames, int numParticles, const std::string& where);

/** The values of any tensor as float64, flattened, on the CPU. */
std::vector<double> toDoubleVector(const at::Tensor& tensor);

/** "[2, 22, 3]" */
std::string shapeString(const at::Tensor& tensor);

} // namespace OpenMMBG

#endif
