#include "openmmbg/internal/IntegratorSupport.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ops/isfinite.h>
#include <openmm/OpenMMException.h>

#include <cmath>
#include <random>

using namespace OpenMM;

namespace OpenMMBG {

void checkTemperature(double temperature, const std::string& who) {
    if (!(temperature > 0) || !std::isfinite(temperature))
        throw OpenMMException(who + ": temperatures must be positive and finite (K), got " + std::to_string(temperature));
}

namespace {

void throwNonFinitePosition(int64_t particle, const std::string& who) {
    throw OpenMMException(who + ": the position of particle " + std::to_string(particle)
                          + " is not finite (NaN or inf); set valid positions first");
}

} // namespace

void checkFinitePositions(const std::vector<Vec3>& positions, const std::string& who) {
    for (size_t i = 0; i < positions.size(); i++)
        for (int k = 0; k < 3; k++)
            if (!std::isfinite(positions[i][k]))
                throwNonFinitePosition((int64_t) i, who);
}

void checkFiniteConfiguration(const at::Tensor& x, const std::string& who) {
    at::Tensor finite = at::isfinite(x).all(2).all(0);  // [N]
    if (!finite.all().item<bool>())
        throwNonFinitePosition((~finite).nonzero()[0][0].item<int64_t>(), who);
}

at::Generator makeGenerator(int seed) {
    uint64_t value = seed != 0 ? (uint64_t) (uint32_t) seed
                               : ((uint64_t) std::random_device()() << 32) | std::random_device()();
    return at::make_generator<at::CPUGeneratorImpl>(value);
}

} // namespace OpenMMBG
