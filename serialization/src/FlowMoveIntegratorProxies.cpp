#include "FlowMoveIntegratorProxies.h"

#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"
#include "openmmbg/internal/Base64.h"

#include <openmm/OpenMMException.h>
#include <openmm/serialization/SerializationNode.h>

#include <memory>
#include <sstream>

using namespace OpenMM;

namespace OpenMMBG {

namespace {

const int VERSION = 3;  // 3: independenceBlockSize

void checkVersion(const SerializationNode& node, const std::string& what) {
    const int version = node.getIntProperty("version");
    if (version < 1 || version > VERSION)
        throw OpenMMException(what + ": XML version " + std::to_string(version) + " is not supported (this "
                              "OpenMM-BG reads versions 1 to " + std::to_string(VERSION) + ")");
}

/** What every flow-move integrator records: the flow (a FlowModel file, base64) and the shared parameters. */
void writeCommon(SerializationNode& node, const FlowMoveIntegrator& integrator) {
    node.setIntProperty("version", VERSION);
    node.setDoubleProperty("latentStepSize", integrator.getLatentStepSize());
    node.setDoubleProperty("independenceProbability", integrator.getIndependenceProbability());
    node.setIntProperty("independenceBlockSize", integrator.getIndependenceBlockSize());
    node.setIntProperty("randomSeed", integrator.getRandomNumberSeed());
    node.setBoolProperty("checkStereochemistry", integrator.getCheckStereochemistry());
    node.setIntProperty("integrationForceGroups", integrator.getIntegrationForceGroups());
    std::stringstream bytes;
    integrator.getFlowModel().save(bytes);
    node.setStringProperty("flow", encodeBase64(bytes.str()));
}

FlowModel readFlow(const SerializationNode& node) {
    std::stringstream bytes(decodeBase64(node.getStringProperty("flow")));
    return FlowModel::load(bytes, "the flow embedded in the XML");
}

/** The shared parameters a constructor does not take; owns the integrator until it is complete. */
template <class IntegratorType>
IntegratorType* readCommon(const SerializationNode& node, std::unique_ptr<IntegratorType> integrator) {
    if (node.getIntProperty("version") >= 3)
        integrator->setIndependenceBlockSize(node.getIntProperty("independenceBlockSize"));
    integrator->setRandomNumberSeed(node.getIntProperty("randomSeed"));
    integrator->setCheckStereochemistry(node.getBoolProperty("checkStereochemistry"));
    integrator->setIntegrationForceGroups(node.getIntProperty("integrationForceGroups"));
    return integrator.release();
}

} // namespace

LatentMetropolisIntegratorProxy::LatentMetropolisIntegratorProxy() : SerializationProxy("LatentMetropolisIntegrator") {}

void LatentMetropolisIntegratorProxy::serialize(const void* object, SerializationNode& node) const {
    const auto& integrator = *static_cast<const LatentMetropolisIntegrator*>(object);
    writeCommon(node, integrator);
    node.setDoubleProperty("temperature", integrator.getTemperature());
}

void* LatentMetropolisIntegratorProxy::deserialize(const SerializationNode& node) const {
    checkVersion(node, "LatentMetropolisIntegrator");
    return readCommon(node, std::make_unique<LatentMetropolisIntegrator>(
                                readFlow(node), node.getDoubleProperty("temperature"),
                                node.getDoubleProperty("latentStepSize"), node.getDoubleProperty("independenceProbability")));
}

TSFParallelTemperingIntegratorProxy::TSFParallelTemperingIntegratorProxy()
    : SerializationProxy("TSFParallelTemperingIntegrator") {}

void TSFParallelTemperingIntegratorProxy::serialize(const void* object, SerializationNode& node) const {
    const auto& integrator = *static_cast<const TSFParallelTemperingIntegrator*>(object);
    writeCommon(node, integrator);
    SerializationNode& ladder = node.createChildNode("Temperatures");
    for (double temperature : integrator.getTemperatures())
        ladder.createChildNode("Temperature").setDoubleProperty("value", temperature);
    node.setIntProperty("flowMovesPerStep", integrator.getFlowMovesPerStep());
}

void* TSFParallelTemperingIntegratorProxy::deserialize(const SerializationNode& node) const {
    checkVersion(node, "TSFParallelTemperingIntegrator");
    std::vector<double> temperatures;
    for (const SerializationNode& child : node.getChildNode("Temperatures").getChildren())
        temperatures.push_back(child.getDoubleProperty("value"));
    auto integrator = std::make_unique<TSFParallelTemperingIntegrator>(
        readFlow(node), temperatures, node.getDoubleProperty("latentStepSize"),
        node.getDoubleProperty("independenceProbability"));
    integrator->setFlowMovesPerStep(node.getIntProperty("flowMovesPerStep"));
    return readCommon(node, std::move(integrator));
}

} // namespace OpenMMBG
