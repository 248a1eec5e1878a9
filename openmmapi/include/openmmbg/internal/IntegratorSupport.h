#ifndef OPENMMBG_INTEGRATORSUPPORT_H_
#define OPENMMBG_INTEGRATORSUPPORT_H_

// Checks and random generators shared by the integrators, their kernels and
// replica exchange.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <openmm/Vec3.h>

#include <string>
#include <vector>

namespace OpenMMBG {

/** Throws unless 0 < temperature < infinity (K); `who` prefixes the message. */
void checkTemperature(double temperature, const std::string& who);

/** Throws if any position is NaN or infinite, naming the particle. */
void checkFinitePositions(const std::vector<OpenMM::Vec3>& positions, const std::string& who);
/** The same for configurations [B, N, 3] on any device (one scalar comes back to the host). */
void checkFiniteConfiguration(const at::Tensor& x, const std::string& who);

/** A CPU generator seeded with `seed`, or from std::random_device if seed is 0. */
at::Generator makeGenerator(int seed);

} // namespace OpenMMBG

#endif
