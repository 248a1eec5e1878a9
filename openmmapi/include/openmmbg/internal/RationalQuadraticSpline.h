#ifndef OPENMMBG_RATIONALQUADRATICSPLINE_H_
#define OPENMMBG_RATIONALQUADRATICSPLINE_H_

// Monotone rational-quadratic splines (Durkan et al. 2019; docs/math.md,
// "Flows"), elementwise and differentiable, for the couplings of SplineFlow.

#include <ATen/core/Tensor.h>

#include <utility>

namespace OpenMMBG {

/** Which entries of a spline call are circular: as the flags say, all, or none. */
enum class SplineEntries { Mixed, Circular, Real };

/**
 * Applies one spline per entry of x [B, m]. params [B, m, 3K] hold, per
 * entry, K unnormalised bin widths, K bin heights and K derivative
 * parameters; all zeros give the identity. Entry j is
 *  - circular where circular[j] (bool [m]): a spline on [-pi, pi) onto
 *    itself whose derivatives at both ends are equal (the K derivative
 *    parameters are those of knots 0 .. K-1, and knot K is knot 0), so that
 *    the map is a diffeomorphism of the circle; inputs are wrapped into
 *    [-pi, pi) first, outputs land there;
 *  - otherwise a spline on [-tailBound, tailBound] with unit derivatives at
 *    both ends (the last derivative parameter is unused) and the identity
 *    outside, a bijection of the real line.
 * Returns the outputs and log|dy/dx| [B, m]; with `inverse` the inverse map
 * and its log-derivative. `entries` Circular or Real (all entries of that
 * kind, `circular` then unused) gives the same result with fewer tensor
 * operations.
 */
std::pair<at::Tensor, at::Tensor> rationalQuadraticSpline(const at::Tensor& x, const at::Tensor& params,
                                                          const at::Tensor& circular, double tailBound, bool inverse,
                                                          SplineEntries entries = SplineEntries::Mixed);

/** Wraps angles into [-pi, pi). */
at::Tensor wrapAngle(const at::Tensor& angle);

} // namespace OpenMMBG

#endif
