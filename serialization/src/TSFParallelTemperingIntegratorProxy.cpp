#include "TSFParallelTemperingIntegratorProxy.h"

#include "FlowSerialization.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"

#include <openmm/OpenMMException.h>
#include <openmm/serialization/SerializationNode.h>

namespace OpenMMBG {

TSFParallelTemperingIntegratorProxy::TSFParallelTemperingIntegratorProxy()
    : OpenMM::SerializationProxy("TSFParallelTemperingIntegrator") {}

void TSFParallelTemperingIntegratorProxy::serialize(const void* object, OpenMM::SerializationNode& node) const {
    const auto& integrator = *static_cast<const TSFParallelTemperingIntegrator*>(object);
    node.setIntProperty("version", 1);
    OpenMM::SerializationNode& ladder = node.createChildNode("Temperatures");
    for (double temperature : integrator.getTemperatures())
        ladder.createChildNode("Temperature").setDoubleProperty("value", temperature);
    node.setDoubleProperty("latentStepSize", integrator.getLatentStepSize());
    node.setDoubleProperty("independenceProbability", integrator.getIndependenceProbability());
    node.setIntProperty("flowMovesPerStep", integrator.getFlowMovesPerStep());
    node.setIntProperty("randomSeed", integrator.getRandomNumberSeed());
    node.setBoolProperty("checkStereochemistry", integrator.getCheckStereochemistry());
    node.setIntProperty("integrationForceGroups", integrator.getIntegrationForceGroups());
    writeFlow(node, integrator.getFlowModel());
    try {
        node.setStringProperty("randomState", randomStateToText(integrator.getRandomState()));
    } catch (const OpenMM::OpenMMException&) {
        // Never bound to a Context: the seed says it all.
    }
}

void* TSFParallelTemperingIntegratorProxy::deserialize(const OpenMM::SerializationNode& node) const {
    checkProxyVersion(node, 1, "TSFParallelTemperingIntegrator");
    std::vector<double> temperatures;
    for (const OpenMM::SerializationNode& child : node.getChildNode("Temperatures").getChildren())
        temperatures.push_back(child.getDoubleProperty("value"));
    auto* integrator = new TSFParallelTemperingIntegrator(readFlow(node), temperatures,
                                                          node.getDoubleProperty("latentStepSize"),
                                                          node.getDoubleProperty("independenceProbability"));
    try {
        integrator->setFlowMovesPerStep(node.getIntProperty("flowMovesPerStep"));
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
