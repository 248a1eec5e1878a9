#ifndef OPENMMBG_LATENTMETROPOLISINTEGRATORPROXY_H_
#define OPENMMBG_LATENTMETROPOLISINTEGRATORPROXY_H_

#include <openmm/serialization/SerializationProxy.h>

namespace OpenMMBG {

/**
 * XML form of a LatentMetropolisIntegrator: its parameters, the flow
 * (embedded, base64) and, once it has run, its random state, so that a
 * deserialized integrator continues a run exactly. Versioned.
 */
class LatentMetropolisIntegratorProxy : public OpenMM::SerializationProxy {
public:
    LatentMetropolisIntegratorProxy();
    void serialize(const void* object, OpenMM::SerializationNode& node) const override;
    void* deserialize(const OpenMM::SerializationNode& node) const override;
};

} // namespace OpenMMBG

#endif
