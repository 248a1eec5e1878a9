#ifndef OPENMMBG_FLOWSTATE_H_
#define OPENMMBG_FLOWSTATE_H_

// How flows record their architecture and weights (shared by all flow types;
// the weight lists also by coarse-grained latent models).

#include "openmmbg/Flow.h"

namespace OpenMMBG {

/**
 * The two parts of `indices` that coupling block `block` updates in turn:
 * even/odd positions for even blocks, first/second half for odd ones, so
 * that every entry is conditioned on different neighbours from block to block.
 */
std::pair<std::vector<int64_t>, std::vector<int64_t>> halvesOfBlock(const std::vector<int64_t>& indices, int block);
/** The same for the indices 0 .. count - 1. */
std::pair<std::vector<int64_t>, std::vector<int64_t>> halvesOfBlock(int count, int block);

void saveFlowArchitecture(TensorMap& state, const std::string& prefix, int numCoordinates, const FlowConfig& config);
/** The splines' sizes (splineBins, splineTailBound) as "<prefix>spline", for flows with spline couplings. */
void saveSplineSizes(TensorMap& state, const std::string& prefix, const FlowConfig& config);
/**
 * Reads what saveSplineSizes() wrote into `config`; false if `state` has no
 * "<prefix>spline", an OpenMMException beginning with `owner` if it is garbled.
 */
bool loadSplineSizes(const TensorMap& state, const std::string& prefix, FlowConfig& config, const std::string& owner);
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
