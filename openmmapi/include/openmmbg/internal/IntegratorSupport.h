#ifndef OPENMMBG_INTEGRATORSUPPORT_H_
#define OPENMMBG_INTEGRATORSUPPORT_H_

// What the flow-move integrators share: checks, random generators, kinetic
// energy and checkpoint records.

#include "openmmbg/FlowModel.h"
#include "openmmbg/MoveStatistics.h"

#include <ATen/core/Generator.h>
#include <openmm/System.h>
#include <openmm/internal/ContextImpl.h>

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

namespace OpenMMBG {

/** Throws unless 0 < temperature < infinity; `who` prefixes the message. */
void checkTemperature(double temperature, const std::string& who);

/**
 * Throws a clear OpenMMException if the System cannot be sampled with flow
 * moves yet (constraints, virtual sites, periodic boundary conditions) or is
 * not the molecule the flow was made for.
 */
void checkSystemForFlowMoves(const OpenMM::System& system, const FlowModel& model, const std::string& who);

/** A CPU generator seeded with `seed`, or from std::random_device if seed is 0. */
std::unique_ptr<at::Generator> makeGenerator(int seed);

/** Sum of m v^2 / 2 over the Context's velocities (kJ/mol); MC moves never change them. */
double kineticEnergyFromVelocities(OpenMM::ContextImpl& context);

/** Positions [1, N, 3] (float64, nm) as a tensor and back. */
at::Tensor positionsToTensor(const std::vector<OpenMM::Vec3>& positions);
void tensorToPositions(const at::Tensor& frame, std::vector<OpenMM::Vec3>& positions);
/** Throws if any position is NaN or infinite. */
void checkFinitePositions(const std::vector<OpenMM::Vec3>& positions, const std::string& who);
/** The same for a configuration [1, N, 3] on any device (one scalar comes back to the host). */
void checkFiniteConfiguration(const at::Tensor& x, const std::string& who);

/** Integrator state for Context checkpoints: random state, a few numbers, statistics. */
void writeIntegratorCheckpoint(std::ostream& stream, const at::Generator* generator, const std::vector<double>& values,
                               const std::vector<const MoveStatistics*>& statistics);
void readIntegratorCheckpoint(std::istream& stream, std::unique_ptr<at::Generator>& generator, int seed,
                              std::vector<double>& values, std::vector<MoveStatistics*>& statistics);

} // namespace OpenMMBG

#endif
