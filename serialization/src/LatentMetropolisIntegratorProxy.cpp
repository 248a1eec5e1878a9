#include "LatentMetropolisIntegratorProxy.h"

#include "FlowSerialization.h"
#include "openmmbg/LatentMetropolisIntegrator.h"

#include <openmm/OpenMMException.h>
#include <openmm/serialization/SerializationNode.h>

namespace OpenMMBG {

LatentMetropolisIntegratorProxy::LatentMetropolisIntegratorProxy()
    : OpenMM::SerializationProxy("LatentMetropolisIntegrator") {}

void LatentMetropolisIntegratorProxy::serialize(const void* object, OpenMM::SerializationNode& node) const {
    // const_cast only to read the random state, which the getter does not change.
    auto& integrator = *const_cast<LatentMetropolisIntegrator*>(static_cast<const LatentMetropolisIntegrator*>(object));
    node.setIntProperty("version", 1);
    node.setDoubleProperty("temperature", integrator.getTemperature());
    node.setDoubleProperty("latentStepSize", integrator.getLatentStepSize());
    node.setDoubleProperty("independenceProbability", integrator.getIndependenceProbability());
    node.setIntProperty("randomSeed", integrator.getRandomNumberSeed());
    node.setBoolProperty("checkStereochemistry", integrator.getCheckStereochemistry());
    node.setIntProperty("integrationForceGroups", integrator.getIntegrationForceGroups());
    writeFlow(node, integrator.getFlowModel());
    bool started = true;
    at::Tensor state;
    try {
        state = integrator.getRandomState();
    } catch (const OpenMM::OpenMMException&) {
        started = false;  // never bound to a Context: the seed says it all
    }
    if (started)
        node.setStringProperty("randomState", randomStateToText(state));
}

void* LatentMetropolisIntegratorProxy::deserialize(const OpenMM::SerializationNode& node) const {
    checkProxyVersion(node, 1, "LatentMetropolisIntegrator");
    auto* integrator = new LatentMetropolisIntegrator(
        readFlow(node), node.getDoubleProperty("temperature"), node.getDoubleProperty("latentStepSize"),
        node.getDoubleProperty("independenceProbability"));
    try {
        integrator->setRandomNumberSeed(node.getIntProperty("randomSeed"));
        integrator->setCheckStereochemistry(node.getBoolProperty("checkStereochemistry"));
        integrator->setIntegrationForceGroups(node.getIntProperty("integrationForceGroups"));
        if (node.hasProperty("randomState"))
            integrator->setRandomState(randomStateFromText(node.getStringProperty("randomState")));
    } catch (...) {
        delete integrator;
        throw;
    }
    return integrator;
}

} // namespace OpenMMBG
