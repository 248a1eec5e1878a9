#ifndef OPENMMBG_BASE64_H_
#define OPENMMBG_BASE64_H_

// Binary data as text, to embed flows and random states in XML.

#include <string>

namespace OpenMMBG {

std::string encodeBase64(const std::string& bytes);
/** Throws an OpenMMException for characters outside the base64 alphabet or a bad length. */
std::string decodeBase64(const std::string& text);

} // namespace OpenMMBG

#endif
