#ifndef OPENMMBG_INTEGRATORCHECKS_H_
#define OPENMMBG_INTEGRATORCHECKS_H_

// Test bodies of the integrators that every platform must pass: the
// Reference suites and the CUDA suite call the same code with a platform
// name and its properties.

#include "openmmbg/FlowModel.h"

#include <openmm/System.h>

#include <map>
#include <memory>
#include <string>

namespace OpenMMBG {
namespace testing {

using PlatformProperties = std::map<std::string, std::string>;

/**
 * LatentMetropolisIntegrator on the double well: moves a latent step of 50
 * away are always rejected and must leave positions, velocities, forces,
 * energy and time exactly as they were; accepted moves change positions but
 * never velocities, time or the external coordinate z, and the Context then
 * reports the energy of its configuration.
 */
void checkRejectedMovesLeaveTheContextExactly(const std::string& platform,
                                              const PlatformProperties& properties = PlatformProperties());

/**
 * One chain of LatentMetropolisIntegrator (sigma 0.5, independence
 * probability 0.5), started in the left well of the double well, crosses
 * the barrier and gives the exact free energy difference of the wells
 * within 4 block-averaged errors (20000 moves, 20 blocks).
 */
void checkDoubleWellFreeEnergy(const FlowModel& model, double temperature, int seed, const std::string& platform,
                               const PlatformProperties& properties = PlatformProperties());

/** U = k/2 |r|^2 for one particle, in units of kT at 300 K (k = 1). */
std::unique_ptr<OpenMM::System> harmonicSystem();

/** A TSF exact for harmonicSystem() at every temperature (identity flow, Boltzmann width at 300 K). */
FlowModel exactHarmonicFlow(const OpenMM::System& system);

/**
 * TSFParallelTemperingIntegrator with exactHarmonicFlow() on harmonicSystem():
 * independence moves are always accepted, and an exchange between
 * T_i < T_j is accepted with probability 2 rho / (1 + rho), rho = T_i / T_j,
 * within 4 standard errors (20000 steps, 3 replicas).
 */
void checkExchangeAcceptanceMatchesClosedForm(const std::string& platform,
                                              const PlatformProperties& properties = PlatformProperties());

} // namespace testing
} // namespace OpenMMBG

#endif
