// Registers the serialization proxies when libOpenMMBG is loaded, so that
// XmlSerializer handles our integrators without any call from the user.

#include "LatentMetropolisIntegratorProxy.h"
#include "TSFParallelTemperingIntegratorProxy.h"
#include "openmmbg/LatentMetropolisIntegrator.h"
#include "openmmbg/TSFParallelTemperingIntegrator.h"

#include <openmm/serialization/SerializationProxy.h>

namespace OpenMMBG {

extern "C" __attribute__((constructor)) void registerOpenMMBGSerializationProxies() {
    OpenMM::SerializationProxy::registerProxy(typeid(LatentMetropolisIntegrator), new LatentMetropolisIntegratorProxy());
    OpenMM::SerializationProxy::registerProxy(typeid(TSFParallelTemperingIntegrator),
                                              new TSFParallelTemperingIntegratorProxy());
}

} // namespace OpenMMBG
