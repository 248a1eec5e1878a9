#ifndef OPENMMBG_FLOWSTATE_H_
#define OPENMMBG_FLOWSTATE_H_

// How flows record their architecture and weights (shared by all flow types;
// the weight lists also by coarse-grained latent models).

#include "openmmbg/Flow.h"

namespace OpenMMBG {

void saveFlowArchitecture(TensorMap& state, const std::string& prefix, int numCoordinates, const FlowConfig& config);
std::pair<int, FlowConfig> loadFlowArchitecture(const TensorMap& state, const std::string& prefix);
/** Weights as "<prefix>parameter.<i>" in the order of Flow::parameters() (or any model's list). */
void saveParameterList(TensorMap& state, const std::string& prefix, const std::vector<at::Tensor>& parameters);
/**
 * Copies what saveParameterList() wrote into `parameters` (same order and
 * shapes); throws an OpenMMException beginning with `owner` on a mismatch.
 */
void loadParameterList(const TensorMap& state, const std::string& prefix, const std::vector<at::Tensor>& parameters,
                       const std::string& owner);

} // namespace OpenMMBG

#endif
