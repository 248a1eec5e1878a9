// Registers the serialization proxies when libOpenMMBG is loaded, so that
// XmlSerializer handles our integrators without any call from the user.

#include "FlowMoveIntegratorProxies.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"

namespace OpenMMBG {

extern "C" __attribute__((constructor)) void registerOpenMMBGSerializationProxies() {
    OpenMM::SerializationProxy::registerProxy(typeid(LatentMetropolisIntegrator), new LatentMetropolisIntegratorProxy());
    OpenMM::SerializationProxy::registerProxy(typeid(TSFParallelTemperingIntegrator),
                                              new TSFParallelTemperingIntegratorProxy());
}

} // namespace OpenMMBG
