#include "openmmbg/internal/RationalQuadraticSpline.h"

#include <ATen/ATen.h>
#include <openmm/OpenMMException.h>

#include <cmath>

namespace OpenMMBG {

namespace {

const double MIN_BIN = 1e-3;         // smallest bin width and height, as a fraction of the interval
const double MIN_DERIVATIVE = 1e-3;  // smallest knot derivative
// softplus(0 + DERIVATIVE_OFFSET) + MIN_DERIVATIVE = 1: zero parameters give unit derivatives.
const double DERIVATIVE_OFFSET = std::log(std::expm1(1.0 - MIN_DERIVATIVE));

/** Knot positions [B, m, K + 1] on [left, left + length] (numbers, or tensors [1, m, 1]) from unnormalised bin sizes [B, m, K]. */
template <typename Bound>
at::Tensor knots(const at::Tensor& unnormalized, const Bound& left, const Bound& length) {
    const int64_t bins = unnormalized.size(2);
    const at::Tensor fractions = MIN_BIN + (1 - MIN_BIN * (double) bins) * at::softmax(unnormalized, 2);
    const at::Tensor inner = fractions.cumsum(2).narrow(2, 0, bins - 1);
    const at::Tensor zero = at::zeros_like(inner.narrow(2, 0, 1)), one = at::ones_like(zero);
    // The ends are set exactly: the spline maps its interval onto itself.
    return left + length * at::cat({zero, inner, one}, 2);
}

at::Tensor pick(const at::Tensor& values, const at::Tensor& index) {
    return values.gather(2, index).squeeze(2);
}

/** The knot derivatives [B, m, K + 1] of circular splines (knot K = knot 0) from d [B, m, K]. */
at::Tensor circularDerivatives(const at::Tensor& d) {
    return at::cat({d, d.narrow(2, 0, 1)}, 2);
}

/** The knot derivatives [B, m, K + 1] of real splines (1 at both ends) from d [B, m, K]. */
at::Tensor realDerivatives(const at::Tensor& d) {
    const at::Tensor unit = at::ones_like(d.narrow(2, 0, 1));
    return at::cat({unit, d.narrow(2, 0, d.size(2) - 1), unit}, 2);
}

/**
 * The spline (or its inverse) at `clamped` [B, m], inside the knots'
 * interval, and its log|dy/dx| (of the inverse with `inverse`).
 */
std::pair<at::Tensor, at::Tensor> splineInside(const at::Tensor& clamped, const at::Tensor& xKnots,
                                               const at::Tensor& yKnots, const at::Tensor& derivatives, bool inverse) {
    const int64_t bins = xKnots.size(2) - 1;
    const at::Tensor& searched = inverse ? yKnots : xKnots;
    const at::Tensor bin = ((clamped.unsqueeze(2) >= searched).sum(2, true) - 1).clamp(0, bins - 1);
    const at::Tensor xk = pick(xKnots, bin), yk = pick(yKnots, bin);
    const at::Tensor wk = pick(xKnots, bin + 1) - xk, hk = pick(yKnots, bin + 1) - yk;
    const at::Tensor dk = pick(derivatives, bin), dk1 = pick(derivatives, bin + 1);
    const at::Tensor slope = hk / wk;

    at::Tensor xi;
    at::Tensor output;
    if (!inverse) {
        xi = (clamped - xk) / wk;
    } else {
        const at::Tensor dy = clamped - yk, curvature = dk1 + dk - 2 * slope;
        const at::Tensor a = hk * (slope - dk) + dy * curvature;
        const at::Tensor b = hk * dk - dy * curvature;
        const at::Tensor c = -slope * dy;
        const at::Tensor root = at::sqrt((b * b - 4 * a * c).clamp_min(0));
        xi = (2 * c) / (-b - root);
        output = xk + xi * wk;
    }
    const at::Tensor mix = xi * (1 - xi);
    const at::Tensor denominator = slope + (dk1 + dk - 2 * slope) * mix;
    if (!inverse)
        output = yk + hk * (slope * xi * xi + dk * mix) / denominator;
    const at::Tensor logDerivative =
        at::log(slope * slope * (dk1 * xi * xi + 2 * slope * mix + dk * (1 - xi) * (1 - xi))) - 2 * at::log(denominator);
    return {output, inverse ? -logDerivative : logDerivative};
}

} // namespace

at::Tensor wrapAngle(const at::Tensor& angle) {
    return at::remainder(angle + M_PI, 2 * M_PI) - M_PI;
}

std::pair<at::Tensor, at::Tensor> rationalQuadraticSpline(const at::Tensor& x, const at::Tensor& params,
                                                          const at::Tensor& circular, double tailBound, bool inverse,
                                                          SplineEntries entries) {
    const int64_t batch = x.size(0), m = x.size(1);
    if (params.dim() != 3 || params.size(0) != batch || params.size(1) != m || params.size(2) % 3 != 0
        || params.size(2) < 6)
        throw OpenMM::OpenMMException("rationalQuadraticSpline: parameters must have shape [batch, entries, 3K], K >= 2");
    const int64_t bins = params.size(2) / 3;
    const at::Tensor widths = params.narrow(2, 0, bins), heights = params.narrow(2, bins, bins);
    const at::Tensor d = MIN_DERIVATIVE + at::softplus(params.narrow(2, 2 * bins, bins) + DERIVATIVE_OFFSET);
    // Entries of one kind take fewer (small) tensor operations: this runs once per coupling and move.
    if (entries == SplineEntries::Circular) {
        const at::Tensor value = wrapAngle(x);
        auto [output, logDerivative] = splineInside(value, knots(widths, -M_PI, 2 * M_PI),
                                                    knots(heights, -M_PI, 2 * M_PI), circularDerivatives(d), inverse);
        return {wrapAngle(output), logDerivative};
    }
    if (entries == SplineEntries::Real) {
        const at::Tensor inside = (x >= -tailBound) & (x <= tailBound);
        auto [output, logDerivative] =
            splineInside(x.clamp(-tailBound, tailBound), knots(widths, -tailBound, 2 * tailBound),
                         knots(heights, -tailBound, 2 * tailBound), realDerivatives(d), inverse);
        return {at::where(inside, output, x), at::where(inside, logDerivative, at::zeros_like(logDerivative))};
    }
    const at::Tensor isCircular = circular.to(x.device()).reshape({1, m});
    const at::Tensor bound = at::where(isCircular, at::full_like(x.narrow(0, 0, 1), M_PI),
                                       at::full_like(x.narrow(0, 0, 1), tailBound));  // [1, m]
    const at::Tensor left = (-bound).unsqueeze(2), length = (2 * bound).unsqueeze(2);
    // Circular: knots 0 .. K-1 and knot K = knot 0. Real: unit derivatives at both ends.
    const at::Tensor derivatives = at::where(isCircular.unsqueeze(2), circularDerivatives(d), realDerivatives(d));
    const at::Tensor value = at::where(isCircular, wrapAngle(x), x);
    const at::Tensor inside = isCircular | ((value >= -bound) & (value <= bound));
    const at::Tensor clamped = at::minimum(at::maximum(value, -bound), bound);
    auto [output, logDerivative] =
        splineInside(clamped, knots(widths, left, length), knots(heights, left, length), derivatives, inverse);
    output = at::where(isCircular, wrapAngle(output), output);
    return {at::where(inside, output, value), at::where(inside, logDerivative, at::zeros_like(logDerivative))};
}

} // namespace OpenMMBG
