#include "openmmbg/FlowModel.h"

#include "openmmbg/CartesianCoordinates.h"
#include "openmmbg/InternalCoordinates.h"
#include "openmmbg/RealNVPFlow.h"
#include "openmmbg/SplineFlow.h"
#include "openmmbg/TSFFlow.h"
#include "openmmbg/internal/MLP.h"
#include "openmmbg/internal/ModelFile.h"
#include "openmmbg/internal/TensorChecks.h"

#include <ATen/ATen.h>
#include <openmm/OpenMMException.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cmath>
#include <fstream>
#include <sstream>

using OpenMM::OpenMMException;

namespace OpenMMBG {

namespace {

const char* FORMAT_NAME = "openmm-bg-flow";

// A flow file (docs/architecture.md, "Flow files"): the shared framing of
// model files (ModelFile.h) around the LibTorch archive that holds everything.
const ModelFileKind FLOW_FILE = {"OpenMMBG flow\n", "OpenMM-BG flow file"};

/**
 * The archive inside a flow file, after checking the header; files of
 * format version 1 are bare archives (a zip file: "PK\3\4") without a hash.
 */
std::string checkedArchive(const std::string& bytes, const std::string& description, int formatVersion, bool& bare) {
    bare = bytes.compare(0, 4, std::string("PK\3\4", 4)) == 0;
    if (bare)
        return bytes;
    return checkedFramedArchive(bytes, FLOW_FILE, formatVersion, "FlowModel::load: " + description);
}

std::shared_ptr<Flow> makeFlow(const std::string& flowType, const CoordinateTransform& coordinates,
                               const FlowConfig& config) {
    const int n = coordinates.getNumCoordinates();
    if (flowType == "tsf")
        return std::make_shared<TSFFlow>(n, config);
    if (flowType == "realnvp")
        return std::make_shared<RealNVPFlow>(n, config);
    if (flowType == "spline")
        return std::make_shared<SplineFlow>(n, coordinates.circularCoordinates(), config,
                                            coordinates.conditioningLevels());
    throw OpenMMException("FlowModel: unknown flow type '" + flowType + "' (use \"tsf\", \"realnvp\" or \"spline\")");
}

/** Mean and standard deviation of each coordinate of y [B, n]. */
std::pair<at::Tensor, at::Tensor> fitNormalization(const at::Tensor& y) {
    if (y.size(0) < 2)
        throw OpenMMException("FlowModel: fitting the normalisation needs at least 2 frames");
    // A coordinate that does not vary in the data gets scale 1e-6 rather than 0.
    return {y.mean(0), y.std(0).clamp_min(1e-6)};
}

std::string firstLine(const std::string& text) {
    return text.substr(0, text.find('\n'));
}

} // namespace

FlowModel::FlowModel(std::shared_ptr<CoordinateTransform> coordinates, const at::Tensor& shift,
                     const at::Tensor& scale, std::shared_ptr<Flow> flow, double referenceTemperature,
                     const SystemFingerprint& fingerprint)
    : coordinates(std::move(coordinates)), flow(std::move(flow)), referenceTemperature(referenceTemperature),
      fingerprint(fingerprint) {
    const int n = this->coordinates->getNumCoordinates();
    if (this->flow->getNumCoordinates() != n)
        throw OpenMMException("FlowModel: the flow models " + std::to_string(this->flow->getNumCoordinates())
                              + " coordinates, the coordinate transform has " + std::to_string(n));
    if (!shift.defined() || !scale.defined() || shift.numel() != n || scale.numel() != n)
        throw OpenMMException("FlowModel: shift and scale need " + std::to_string(n) + " entries each");
    this->shift = shift.to(at::kDouble).reshape({n}).clone();
    this->scale = scale.to(at::kDouble).reshape({n}).clone();
    if (!(this->scale > 0).all().item<bool>() || !at::isfinite(this->shift).all().item<bool>())
        throw OpenMMException("FlowModel: scales must be positive and shifts finite");
    if (!(referenceTemperature > 0) || !std::isfinite(referenceTemperature))
        throw OpenMMException("FlowModel: the reference temperature must be positive (K), got "
                              + std::to_string(referenceTemperature));
    if (fingerprint.numParticles != this->coordinates->getNumParticles())
        throw OpenMMException("FlowModel: the System has " + std::to_string(fingerprint.numParticles)
                              + " particles, the coordinate transform " + std::to_string(getNumParticles()));
}

FlowModel FlowModel::createForMolecule(const OpenMM::System& system, const at::Tensor& frames,
                                       const std::string& flowType, const FlowConfig& config,
                                       double referenceTemperature) {
    auto coordinates = std::make_shared<InternalCoordinates>(system);
    checkFiniteConfigurations(frames, system.getNumParticles(), "FlowModel::createForMolecule");
    coordinates->placeTorsionCuts(frames);
    auto [shift, scale] = fitNormalization(coordinates->forward(frames).first);
    std::shared_ptr<Flow> flow = makeFlow(flowType, *coordinates, config);
    if (flowType == "spline") {
        // A spline flow sees each torsion as an angle on [-pi, pi): t - (cut + pi).
        const int torsions = coordinates->getNumTorsions(), first = coordinates->getNumCoordinates() - torsions;
        shift.narrow(0, first, torsions).copy_(coordinates->getTorsionCuts() + M_PI);
        scale.narrow(0, first, torsions).fill_(1.0);
    }
    return FlowModel(coordinates, shift, scale, flow, referenceTemperature, SystemFingerprint::of(system));
}

FlowModel FlowModel::createCartesian(const OpenMM::System& system, const std::vector<int>& coordinateIndices,
                                     const at::Tensor& frames, const std::string& flowType, const FlowConfig& config,
                                     double referenceTemperature, const at::Tensor& canonicalValues) {
    auto coordinates = std::make_shared<CartesianCoordinates>(system.getNumParticles(), coordinateIndices,
                                                              canonicalValues);
    const int n = coordinates->getNumCoordinates();
    at::Tensor shift = at::zeros({n}, at::kDouble), scale = at::ones({n}, at::kDouble);
    if (frames.defined()) {
        checkFiniteConfigurations(frames, system.getNumParticles(), "FlowModel::createCartesian");
        std::tie(shift, scale) = fitNormalization(coordinates->forward(frames).first);
    }
    return FlowModel(coordinates, shift, scale, makeFlow(flowType, *coordinates, config), referenceTemperature,
                     SystemFingerprint::of(system));
}

double FlowModel::tau(double temperature) const {
    if (!(temperature > 0) || !std::isfinite(temperature))
        throw OpenMMException("FlowModel: the temperature must be positive (K), got " + std::to_string(temperature));
    return temperature / referenceTemperature;
}

void FlowModel::checkCompatible(const OpenMM::System& system) const {
    std::string difference = fingerprint.difference(SystemFingerprint::of(system));
    if (!difference.empty())
        throw OpenMMException("This flow was made for another System: " + difference);
}

at::Tensor FlowModel::normalize(const at::Tensor& y) const {
    return (y - shift.to(y.device())) / scale.to(y.device());
}

at::Tensor FlowModel::denormalize(const at::Tensor& yn) const {
    return yn * scale.to(yn.device()) + shift.to(yn.device());
}

double FlowModel::getLogDetNormalization() const {
    return at::log(scale).sum().item<double>();
}

at::Tensor FlowModel::logPrior(const at::Tensor& v, double tau) {
    const double d = (double) v.size(1);
    return -(v * v).sum(1) / (2 * tau) - 0.5 * d * std::log(2 * M_PI * tau);
}

at::Tensor FlowModel::logLatentPrior(const at::Tensor& v, double tau) const {
    return flow->logPrior(v, at::full({1}, tau, v.options()));
}

at::Tensor FlowModel::logModel(const at::Tensor& v, const at::Tensor& logDetForward, double tau) const {
    return logLatentPrior(v, tau) - logDetForward;
}

at::Tensor FlowModel::drawLatent(int64_t count, double temperature, at::Generator& generator) const {
    at::Tensor z = at::randn({count, getLatentDim()}, generator, at::kDouble);
    return flow->priorFromNormal(z, at::full({1}, tau(temperature), z.options()));
}

at::Tensor FlowModel::logTarget(const at::Tensor& gamma, const at::Tensor& reducedEnergy, const at::Tensor& logJ,
                                double tau, const at::Tensor& valid) const {
    at::Tensor value = -reducedEnergy + logJ;
    if (hasMomenta()) {
        at::Tensor p = gamma.narrow(1, getNumCoordinates(), getNumCoordinates());
        value = value - (p * p).sum(1) / (2 * tau);
    }
    at::Tensor ok = valid & at::isfinite(value);
    return at::where(ok, value, at::full_like(value, -std::numeric_limits<double>::infinity()));
}

at::Tensor FlowModel::logImportanceWeights(const FlowSample& sample, const at::Tensor& reducedEnergy,
                                           double temperature, const at::Tensor& valid) const {
    const at::Device device = reducedEnergy.device();
    at::Tensor ok = sample.inDomain.to(device);
    if (valid.defined())
        ok = ok & valid.to(device);
    return logTarget(sample.gamma.to(device), reducedEnergy, sample.logJ.to(device), tau(temperature), ok) -
           sample.logq.to(device);
}

FlowSample FlowModel::decode(const at::Tensor& latent, double temperature, const at::Tensor& external) const {
    const double t = tau(temperature);
    auto [gamma, logDet] = flow->forward(latent);
    at::Tensor y = denormalize(gamma.narrow(1, 0, getNumCoordinates()));
    at::Tensor e = external.defined() ? external : coordinates->canonicalExternal(latent.size(0)).to(latent.device());
    FlowSample sample;
    sample.latent = latent;
    sample.gamma = gamma;
    sample.logq = logModel(latent, logDet, t);
    sample.logJ = coordinates->logDetJacobian(y);
    sample.inDomain = coordinates->inDomain(y);
    sample.x = coordinates->inverse(y, e);
    return sample;
}

FlowSample FlowModel::sample(int64_t count, double temperature, at::Generator& generator,
                             const at::Tensor& external) const {
    return decode(drawLatent(count, temperature, generator), temperature, external);
}

at::Tensor FlowModel::logProb(const at::Tensor& x, double temperature, at::Generator& generator,
                              const at::Tensor& momenta) const {
    const double t = tau(temperature);
    at::Tensor yn = normalize(coordinates->forward(x).first);
    const int n = getNumCoordinates();
    at::Tensor gamma = yn, logMomenta;
    if (hasMomenta()) {
        // Momenta come from `generator` (a CPU generator) and go where x is.
        at::Tensor p = (momenta.defined() ? momenta.to(at::kDouble)
                                          : at::randn({x.size(0), n}, generator, at::kDouble) * std::sqrt(t))
                           .to(x.device());
        if (p.dim() != 2 || p.size(0) != x.size(0) || p.size(1) != n)
            throw OpenMMException("FlowModel::logProb: momenta must have shape [batch, " + std::to_string(n) + "]");
        gamma = at::cat({yn, p}, 1);
        logMomenta = logPrior(p, t);
    }
    auto [v, logDetInverse] = flow->inverse(gamma);
    at::Tensor logq = logLatentPrior(v, t) + logDetInverse;
    if (logMomenta.defined())
        logq = logq - logMomenta;
    at::Tensor y = denormalize(yn);
    return logq - getLogDetNormalization() - coordinates->logDetJacobian(y);
}

void FlowModel::save(std::ostream& stream) const {
    TensorMap state;
    coordinates->saveState(state, "coordinates.");
    flow->saveState(state, "flow.");
    state["normalization.shift"] = shift;
    state["normalization.scale"] = scale;
    saveFingerprint(fingerprint, state, "fingerprint.");
    // The oldest version that can read the file: version 2 cannot build a spline flow conditioned level by
    // level, version 3 a TSF with spline couplings.
    const FlowConfig& config = flow->getConfig();
    const bool tsfSplines = flow->getTypeName() == "tsf" && config.tsfSplineCouplings;
    const bool byLevel = flow->getTypeName() == "spline" && config.conditionByLevel;
    const int version = tsfSplines ? 4 : byLevel ? 3 : 2;
    writeModelFile(stream, FLOW_FILE, version, state, [&](torch::serialize::OutputArchive& archive) {
        archive.write("format", c10::IValue(std::string(FORMAT_NAME)));
        archive.write("format_version", c10::IValue((int64_t) version));
        archive.write("coordinates_type", c10::IValue(coordinates->getTypeName()));
        archive.write("flow_type", c10::IValue(flow->getTypeName()));
        archive.write("reference_temperature", c10::IValue(referenceTemperature));
        archive.write("metadata", c10::IValue(metadata));
    });
}

void FlowModel::save(const std::string& path) const {
    saveToPath(path, "FlowModel::save", [&](std::ostream& out) { save(out); });
}

FlowModel FlowModel::load(std::istream& stream, const std::string& description) {
    FlowModel model = read(stream, description);
    if (!model.getFlow().hasFiniteParameters())
        throw OpenMMException("FlowModel::load: " + description + " holds weights that are not finite (NaN or inf)");
    return model;
}

FlowModel FlowModel::read(std::istream& stream, const std::string& description) {
    torch::serialize::InputArchive archive;
    TensorMap state;
    std::string coordinatesType, flowType, text;
    double referenceTemperature = 0;
    int64_t version = 0;
    const std::string bytes = readAllBytes(stream);
    bool bare = false;
    std::istringstream archiveStream(checkedArchive(bytes, description, FORMAT_VERSION, bare));
    try {
        archive.load_from(archiveStream);
        c10::IValue value;
        if (!archive.try_read("format", value) || !value.isString() || value.toStringRef() != FORMAT_NAME)
            throw OpenMMException("FlowModel::load: " + description + " is not an OpenMM-BG flow file");
        archive.read("format_version", value);
        version = value.toInt();
        if (version > FORMAT_VERSION || version < 1)
            throw OpenMMException("FlowModel::load: " + description + " has format version " + std::to_string(version)
                                  + ", this OpenMM-BG reads versions 1 to " + std::to_string(FORMAT_VERSION)
                                  + "; it was written by a newer OpenMM-BG");
        if (bare && version >= 2)
            throw OpenMMException("FlowModel::load: " + description + " is corrupt: a flow of format version "
                                  + std::to_string(version) + " without its header");
        archive.read("coordinates_type", value);
        coordinatesType = value.toStringRef();
        archive.read("flow_type", value);
        flowType = value.toStringRef();
        archive.read("reference_temperature", value);
        referenceTemperature = value.toDouble();
        archive.read("metadata", value);
        text = value.toStringRef();
        state = readArchiveTensors(archive);
    } catch (const OpenMMException&) {
        throw;
    } catch (const std::exception& e) {
        throw OpenMMException("FlowModel::load: " + description
                              + " cannot be read (truncated or corrupt flow file?): " + firstLine(e.what()));
    }
    try {
        std::shared_ptr<CoordinateTransform> coordinates;
        if (coordinatesType == "internal")
            coordinates = InternalCoordinates::loadState(state, "coordinates.");
        else if (coordinatesType == "cartesian")
            coordinates = CartesianCoordinates::loadState(state, "coordinates.");
        else
            throw OpenMMException("unknown coordinate type '" + coordinatesType + "'");
        std::shared_ptr<Flow> flow = Flow::loadState(flowType, state, "flow.");
        for (const char* key : {"normalization.shift", "normalization.scale"})
            if (!state.count(key))
                throw OpenMMException(std::string("'") + key + "' is missing");
        const SystemFingerprint fingerprint = loadFingerprint(state, "fingerprint.");
        FlowModel model(coordinates, state["normalization.shift"], state["normalization.scale"], flow,
                        referenceTemperature, fingerprint);
        model.metadata = text;
        return model;
    } catch (const std::exception& e) {
        throw OpenMMException("FlowModel::load: " + description + " is inconsistent: " + firstLine(e.what()));
    }
}

FlowModel FlowModel::load(const std::string& path) {
    return loadModelFile<FlowModel>(path, "FlowModel::load");
}

FlowModel FlowModel::load(const std::string& path, const OpenMM::System& system) {
    return loadModelFile<FlowModel>(path, "FlowModel::load", &system);
}

FlowModel FlowModel::to(at::Device device) const {
    FlowModel copy = *this;
    copy.flow = flow->to(device);
    copy.shift = copyToDevice(shift, device);
    copy.scale = copyToDevice(scale, device);
    return copy;
}

FlowModel FlowModel::clone() const {
    std::stringstream buffer;
    save(buffer);
    FlowModel copy = read(buffer, "a copy");
    return getDevice().is_cpu() ? copy : copy.to(getDevice());
}

} // namespace OpenMMBG
