#ifndef OPENMMBG_REPLICAEXCHANGE_H_
#define OPENMMBG_REPLICAEXCHANGE_H_

#include "openmmbg/TSFParallelTemperingIntegrator.h"

#include <ATen/core/Generator.h>

#include <vector>

namespace OpenMMBG {

/**
 * One round of neighbour exchanges (ALGORITHMS.md, "Parallel tempering"):
 * pairs (r, r+1) with r even, or r odd when `oddPairs`, each accepted with
 * min(1, exp[(beta_r - beta_r+1)(U_r - U_r+1)]). Draws one uniform per
 * attempted pair, counts attempts and acceptances in `state`, and returns
 * the accepted r. The caller swaps whatever holds the configurations; the
 * decision needs only the energies, so every platform shares it.
 */
std::vector<int> decideExchanges(const std::vector<double>& energies, const std::vector<double>& temperatures,
                                 bool oddPairs, at::Generator& generator, ReplicaState& state);

} // namespace OpenMMBG

#endif
