#ifndef OPENMMBG_FLOWMOVEINTEGRATORPROXIES_H_
#define OPENMMBG_FLOWMOVEINTEGRATORPROXIES_H_

// XML forms of the flow-move integrators: their definition (parameters,
// seed, integration force groups and the flow, embedded as base64), like
// OpenMM's own integrator proxies; the state of a running simulation (random
// generator, statistics, replicas) belongs to Context checkpoints. Version 2;
// version 1 files, which also held a random state, are read and that state
// is ignored.

#include <openmm/serialization/SerializationProxy.h>

namespace OpenMMBG {

class LatentMetropolisIntegratorProxy : public OpenMM::SerializationProxy {
public:
    LatentMetropolisIntegratorProxy();
    void serialize(const void* object, OpenMM::SerializationNode& node) const override;
    void* deserialize(const OpenMM::SerializationNode& node) const override;
};

class TSFParallelTemperingIntegratorProxy : public OpenMM::SerializationProxy {
public:
    TSFParallelTemperingIntegratorProxy();
    void serialize(const void* object, OpenMM::SerializationNode& node) const override;
    void* deserialize(const OpenMM::SerializationNode& node) const override;
};

} // namespace OpenMMBG

#endif
