#include "openmmbg/internal/ModelFile.h"

#include <ATen/ATen.h>
#include <openmm/OpenMMException.h>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <fstream>
#include <istream>
#include <ostream>
#include <sstream>

using OpenMM::OpenMMException;

namespace OpenMMBG {

namespace {

uint64_t fnv1a64(const std::string& bytes) {
    uint64_t hash = 14695981039346656037ull;
    for (unsigned char byte : bytes) {
        hash ^= byte;
        hash *= 1099511628211ull;
    }
    return hash;
}

void appendNumber(std::string& out, uint64_t value) {
    for (int i = 0; i < 8; i++)
        out.push_back((char) ((value >> (8 * i)) & 0xff));  // little-endian on every machine
}

uint64_t numberAt(const std::string& bytes, size_t offset) {
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value |= (uint64_t) (unsigned char) bytes[offset + i] << (8 * i);
    return value;
}

} // namespace

void writeFramedArchive(std::ostream& stream, const ModelFileKind& kind, int formatVersion, const std::string& archive) {
    std::string header = kind.magic;
    appendNumber(header, (uint64_t) formatVersion);
    appendNumber(header, (uint64_t) archive.size());
    appendNumber(header, fnv1a64(archive));
    stream.write(header.data(), (std::streamsize) header.size());
    stream.write(archive.data(), (std::streamsize) archive.size());
}

void writeModelFile(std::ostream& stream, const ModelFileKind& kind, int formatVersion, const TensorMap& state,
                    const std::function<void(torch::serialize::OutputArchive&)>& writeValues) {
    torch::serialize::OutputArchive archive;
    writeValues(archive);
    for (const auto& entry : state)
        archive.write("tensor." + entry.first, entry.second.detach().to(at::kCPU).contiguous());
    std::ostringstream bytes;
    archive.save_to(bytes);
    writeFramedArchive(stream, kind, formatVersion, bytes.str());
}

TensorMap readArchiveTensors(torch::serialize::InputArchive& archive) {
    TensorMap state;
    for (const std::string& key : archive.keys()) {
        if (key.rfind("tensor.", 0) != 0)
            continue;
        at::Tensor tensor;
        archive.read(key, tensor);
        state[key.substr(7)] = tensor;
    }
    return state;
}

void saveToPath(const std::string& path, const std::string& owner, const std::function<void(std::ostream&)>& write) {
    std::ofstream out(path, std::ios::binary);
    if (!out)
        throw OpenMMException(owner + ": cannot write '" + path + "'");
    write(out);
    out.close();
    if (!out)
        throw OpenMMException(owner + ": writing '" + path + "' failed");
}

std::string checkedFramedArchive(const std::string& bytes, const ModelFileKind& kind, int newestVersion,
                                 const std::string& where) {
    const size_t headerSize = kind.magic.size() + 3 * sizeof(uint64_t);  // magic, version, length, hash
    if (bytes.compare(0, kind.magic.size(), kind.magic) != 0)
        throw OpenMMException(where + " is not an " + kind.name + " (truncated or corrupt?)");
    if (bytes.size() < headerSize)
        throw OpenMMException(where + " is truncated or corrupt: its header is incomplete");
    const uint64_t version = numberAt(bytes, kind.magic.size());
    const uint64_t length = numberAt(bytes, kind.magic.size() + 8), hash = numberAt(bytes, kind.magic.size() + 16);
    if (version > (uint64_t) newestVersion)
        throw OpenMMException(where + " has format version " + std::to_string(version) + ", this OpenMM-BG reads "
                              "versions up to " + std::to_string(newestVersion) + "; it was written by a newer OpenMM-BG");
    if (version < 2)
        throw OpenMMException(where + " is corrupt: its header names format version " + std::to_string(version));
    if (bytes.size() - headerSize != length)
        throw OpenMMException(where + " is truncated or corrupt: it holds " + std::to_string(bytes.size() - headerSize)
                              + " bytes after its header, which announces " + std::to_string(length));
    std::string archive = bytes.substr(headerSize);
    if (fnv1a64(archive) != hash)
        throw OpenMMException(where + " is corrupt: its checksum does not match its contents (the file was changed "
                              "or damaged after it was written)");
    return archive;
}

std::string readAllBytes(std::istream& stream) {
    std::ostringstream contents;
    if (stream.peek() != std::char_traits<char>::eof())
        contents << stream.rdbuf();
    return contents.str();
}

void saveFingerprint(const SystemFingerprint& fingerprint, TensorMap& state, const std::string& prefix) {
    state[prefix + "num_particles"] = at::tensor({(int64_t) fingerprint.numParticles}, at::kLong);
    state[prefix + "masses"] = at::tensor(fingerprint.masses, at::kDouble);
    std::vector<int64_t> bonds;
    for (const auto& bond : fingerprint.bonds)
        bonds.insert(bonds.end(), {bond.first, bond.second});
    state[prefix + "bonds"] = at::tensor(bonds, at::kLong).reshape({-1, 2});
}

SystemFingerprint loadFingerprint(const TensorMap& state, const std::string& prefix) {
    for (const char* key : {"num_particles", "masses", "bonds"})
        if (!state.count(prefix + key))
            throw OpenMMException("'" + prefix + key + "' is missing");
    SystemFingerprint fingerprint;
    fingerprint.numParticles = (int) state.at(prefix + "num_particles").item<int64_t>();
    at::Tensor masses = state.at(prefix + "masses").to(at::kDouble).contiguous();
    fingerprint.masses.assign(masses.data_ptr<double>(), masses.data_ptr<double>() + masses.numel());
    at::Tensor bonds = state.at(prefix + "bonds").to(at::kLong).contiguous().reshape({-1, 2});
    for (int64_t b = 0; b < bonds.size(0); b++)
        fingerprint.bonds.push_back({(int) bonds[b][0].item<int64_t>(), (int) bonds[b][1].item<int64_t>()});
    return fingerprint;
}

} // namespace OpenMMBG
