#include "FlowSerialization.h"

#include "openmmbg/internal/Base64.h"

#include <ATen/ATen.h>
#include <openmm/OpenMMException.h>

#include <sstream>

namespace OpenMMBG {

void writeFlow(OpenMM::SerializationNode& node, const FlowModel& model) {
    std::stringstream bytes;
    model.save(bytes);
    node.setStringProperty("flow", encodeBase64(bytes.str()));
}

FlowModel readFlow(const OpenMM::SerializationNode& node) {
    std::stringstream bytes(decodeBase64(node.getStringProperty("flow")));
    return FlowModel::load(bytes, "the flow embedded in the XML");
}

std::string randomStateToText(const at::Tensor& state) {
    at::Tensor bytes = state.contiguous();
    return encodeBase64(std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), bytes.numel()));
}

at::Tensor randomStateFromText(const std::string& text) {
    std::string bytes = decodeBase64(text);
    at::Tensor state = at::empty({(int64_t) bytes.size()}, at::kByte);
    std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(state.data_ptr<uint8_t>()));
    return state;
}

void checkProxyVersion(const OpenMM::SerializationNode& node, int newest, const std::string& what) {
    int version = node.getIntProperty("version");
    if (version < 1 || version > newest)
        throw OpenMM::OpenMMException(what + ": XML version " + std::to_string(version) + " is not supported (this "
                                      "OpenMM-BG reads versions 1 to " + std::to_string(newest) + ")");
}

} // namespace OpenMMBG
