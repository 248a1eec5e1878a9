#ifndef OPENMMBG_TEMPERING_H_
#define OPENMMBG_TEMPERING_H_

// The step rule of data-free tempering (paper 002), shared by the flow
// trainer and the coarse-grained latent models' embedded-physics training.

#include <ATen/core/Tensor.h>

namespace OpenMMBG {

/**
 * How far the inverse temperature may rise: the largest factor f in
 * [1, maxFactor] for which the KL estimate (klEstimateFromLogWeights) of
 * model samples against the target at f times the current beta, from
 * log-weights -f u + rest, stays at most `threshold` nats. u [B] are the
 * samples' reduced energies at the current beta, rest [B] the model's part of
 * their log-weights (e.g. -log q). Non-finite energies are left out; 1 if the
 * current KL already exceeds the threshold or fewer than 2 remain. Bisection
 * in f, 30 halvings. With `increase`, the threshold bounds the rise of the
 * KL estimate over its value at f = 1 instead (for models that cannot get
 * below an absolute threshold, which would stop the tempering for good).
 */
double largestTemperingFactor(const at::Tensor& reducedEnergy, const at::Tensor& rest, double maxFactor,
                              double threshold, bool increase = false);

} // namespace OpenMMBG

#endif
