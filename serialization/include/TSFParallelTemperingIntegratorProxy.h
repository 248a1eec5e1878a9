#ifndef OPENMMBG_TSFPARALLELTEMPERINGINTEGRATORPROXY_H_
#define OPENMMBG_TSFPARALLELTEMPERINGINTEGRATORPROXY_H_

#include <openmm/serialization/SerializationProxy.h>

namespace OpenMMBG {

/**
 * XML form of a TSFParallelTemperingIntegrator: the temperature ladder, move
 * options, the flow (embedded, base64) and, once it has run, its random
 * state. Replica configurations belong to the simulation, not the
 * integrator: Context checkpoints carry them. Versioned.
 */
class TSFParallelTemperingIntegratorProxy : public OpenMM::SerializationProxy {
public:
    TSFParallelTemperingIntegratorProxy();
    void serialize(const void* object, OpenMM::SerializationNode& node) const override;
    void* deserialize(const OpenMM::SerializationNode& node) const override;
};

} // namespace OpenMMBG

#endif
