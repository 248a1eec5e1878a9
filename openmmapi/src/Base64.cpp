#include "openmmbg/internal/Base64.h"

#include <openmm/OpenMMException.h>

#include <array>
#include <cstdint>

namespace OpenMMBG {

namespace {

const char* ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::array<int, 256> decodingTable() {
    std::array<int, 256> table;
    table.fill(-1);
    for (int i = 0; i < 64; i++)
        table[(unsigned char) ALPHABET[i]] = i;
    return table;
}

} // namespace

std::string encodeBase64(const std::string& bytes) {
    std::string text;
    text.reserve((bytes.size() + 2) / 3 * 4);
    for (size_t i = 0; i < bytes.size(); i += 3) {
        uint32_t chunk = (uint32_t) (unsigned char) bytes[i] << 16;
        if (i + 1 < bytes.size())
            chunk |= (uint32_t) (unsigned char) bytes[i + 1] << 8;
        if (i + 2 < bytes.size())
            chunk |= (uint32_t) (unsigned char) bytes[i + 2];
        text += ALPHABET[(chunk >> 18) & 63];
        text += ALPHABET[(chunk >> 12) & 63];
        text += i + 1 < bytes.size() ? ALPHABET[(chunk >> 6) & 63] : '=';
        text += i + 2 < bytes.size() ? ALPHABET[chunk & 63] : '=';
    }
    return text;
}

std::string decodeBase64(const std::string& text) {
    static const std::array<int, 256> table = decodingTable();
    if (text.size() % 4 != 0)
        throw OpenMM::OpenMMException("base64: the length is not a multiple of 4");
    std::string bytes;
    bytes.reserve(text.size() / 4 * 3);
    for (size_t i = 0; i < text.size(); i += 4) {
        uint32_t chunk = 0;
        int padding = 0;
        for (int k = 0; k < 4; k++) {
            char c = text[i + k];
            int value = 0;
            if (c == '=' && i + 4 == text.size() && k >= 2) {
                padding++;
            } else {
                value = table[(unsigned char) c];
                if (value < 0 || padding > 0)
                    throw OpenMM::OpenMMException("base64: invalid character in encoded data");
            }
            chunk = (chunk << 6) | (uint32_t) value;
        }
        bytes += (char) ((chunk >> 16) & 255);
        if (padding < 2)
            bytes += (char) ((chunk >> 8) & 255);
        if (padding < 1)
            bytes += (char) (chunk & 255);
    }
    return bytes;
}

} // namespace OpenMMBG
