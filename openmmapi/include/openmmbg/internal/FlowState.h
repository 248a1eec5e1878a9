#ifndef OPENMMBG_FLOWSTATE_H_
#define OPENMMBG_FLOWSTATE_H_

// How flows record their architecture and weights (shared by all flow types).

#include "openmmbg/Flow.h"

namespace OpenMMBG {

void saveFlowArchitecture(TensorMap& state, const std::string& prefix, int numCoordinates, const FlowConfig& config);
std::pair<int, FlowConfig> loadFlowArchitecture(const TensorMap& state, const std::string& prefix);
/** Weights as "<prefix>parameter.<i>" in the order of Flow::parameters(). */
void saveFlowParameters(TensorMap& state, const std::string& prefix, const std::vector<at::Tensor>& parameters);

} // namespace OpenMMBG

#endif
