#ifndef OPENMMBG_FLOWSERIALIZATION_H_
#define OPENMMBG_FLOWSERIALIZATION_H_

// What the integrator proxies share: the flow and random states as text.

#include "openmmbg/FlowModel.h"

#include <openmm/serialization/SerializationNode.h>

namespace OpenMMBG {

/** Writes the flow into node property "flow" (a FlowModel file, base64). */
void writeFlow(OpenMM::SerializationNode& node, const FlowModel& model);
FlowModel readFlow(const OpenMM::SerializationNode& node);
/** A generator state tensor as base64 text and back. */
std::string randomStateToText(const at::Tensor& state);
at::Tensor randomStateFromText(const std::string& text);
/** Throws a clear OpenMMException for versions this code cannot read. */
void checkProxyVersion(const OpenMM::SerializationNode& node, int newest, const std::string& what);

} // namespace OpenMMBG

#endif
