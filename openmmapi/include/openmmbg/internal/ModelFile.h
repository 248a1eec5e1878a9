#ifndef OPENMMBG_MODELFILE_H_
#define OPENMMBG_MODELFILE_H_

// The framing that model files share (flows, coarse-grained latent models):
// a header, then a LibTorch archive. The header holds a magic line, the
// format version, the archive's length and its FNV-1a 64-bit hash: every step
// of the hash is a bijection of its state, so any change of one byte, and
// almost any other change, alters it (docs/architecture.md, "Flow files").

#include "openmmbg/CoordinateTransform.h"
#include "openmmbg/Topology.h"

#include <openmm/OpenMMException.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <iosfwd>
#include <string>

namespace torch {
namespace serialize {
class InputArchive;
class OutputArchive;
}
} // namespace torch

namespace OpenMMBG {

/** What a kind of model file is: its magic line and a name for messages ("OpenMM-BG flow file"). */
struct ModelFileKind {
    std::string magic;
    std::string name;
};

/** Writes header and archive bytes to `stream`. */
void writeFramedArchive(std::ostream& stream, const ModelFileKind& kind, int formatVersion, const std::string& archive);

/**
 * Writes a whole model file: an archive that `writeValues` fills with its
 * plain entries, plus every tensor of `state` as "tensor.<key>" (CPU copies,
 * so that a model trained on a GPU loads on any machine), framed.
 */
void writeModelFile(std::ostream& stream, const ModelFileKind& kind, int formatVersion, const TensorMap& state,
                    const std::function<void(torch::serialize::OutputArchive&)>& writeValues);

/** The tensors writeModelFile() stored, under their keys without "tensor.". */
TensorMap readArchiveTensors(torch::serialize::InputArchive& archive);

/** Opens `path` and calls write(stream); errors begin with `owner` (e.g. "FlowModel::save"). */
void saveToPath(const std::string& path, const std::string& owner, const std::function<void(std::ostream&)>& write);

/**
 * The archive inside `bytes` after checking the header: magic, a version
 * from 2 to `newestVersion`, length and hash. Errors begin with `where`
 * (e.g. "FlowModel::load: 'x.bgflow'").
 */
std::string checkedFramedArchive(const std::string& bytes, const ModelFileKind& kind, int newestVersion,
                                 const std::string& where);

/**
 * Model::load(stream, "'<path>'") of the file at `path`, then, with a System,
 * Model::checkCompatible(system); "<owner>: cannot open '<path>'" if it cannot
 * be opened.
 */
template <class Model>
Model loadModelFile(const std::string& path, const std::string& owner, const OpenMM::System* system = nullptr) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw OpenMM::OpenMMException(owner + ": cannot open '" + path + "'");
    Model model = Model::load(in, "'" + path + "'");
    if (system)
        model.checkCompatible(*system);
    return model;
}

/** Everything a stream still holds. */
std::string readAllBytes(std::istream& stream);

/** The fingerprint as tensors under `prefix` (num_particles, masses, bonds). */
void saveFingerprint(const SystemFingerprint& fingerprint, TensorMap& state, const std::string& prefix);
/** The fingerprint saveFingerprint() wrote; throws naming a missing entry. */
SystemFingerprint loadFingerprint(const TensorMap& state, const std::string& prefix);

} // namespace OpenMMBG

#endif
