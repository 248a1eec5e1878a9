#include "openmmbg/internal/Tempering.h"

#include "openmmbg/tools/Metrics.h"

#include <ATen/ATen.h>

namespace OpenMMBG {

double largestTemperingFactor(const at::Tensor& reducedEnergy, const at::Tensor& rest, double maxFactor,
                              double threshold, bool increase) {
    const at::Tensor kept = (at::isfinite(reducedEnergy) & at::isfinite(rest)).nonzero().reshape({-1});
    const at::Tensor u = reducedEnergy.detach().index_select(0, kept), r = rest.detach().index_select(0, kept);
    if (u.numel() < 2 || !(maxFactor > 1))
        return 1.0;
    const double base = increase ? klEstimateFromLogWeights(-u + r) : 0.0;
    auto kl = [&](double factor) { return klEstimateFromLogWeights(-u * factor + r) - base; };
    if (kl(1.0) > threshold)
        return 1.0;
    if (kl(maxFactor) <= threshold)
        return maxFactor;
    double low = 1.0, high = maxFactor;  // kl(low) within the threshold, kl(high) beyond it
    for (int i = 0; i < 30; i++) {
        const double middle = 0.5 * (low + high);
        (kl(middle) <= threshold ? low : high) = middle;
    }
    return low;
}

} // namespace OpenMMBG
