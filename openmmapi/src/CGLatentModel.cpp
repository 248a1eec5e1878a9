#include "openmmbg/CGLatentModel.h"

#include "openmmbg/internal/FlowState.h"
#include "openmmbg/internal/MLP.h"
#include "openmmbg/internal/ModelFile.h"
#include "openmmbg/internal/TensorChecks.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <openmm/OpenMMException.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cmath>
#include <fstream>
#include <sstream>

using OpenMM::OpenMMException;

namespace OpenMMBG {

namespace {

const ModelFileKind CG_FILE = {"OpenMMBG cg-latent\n", "OpenMM-BG coarse-grained latent model file"};
const char* FORMAT_NAME = "openmm-bg-cg-latent";
const double LOG_VARIANCE_RANGE = 8.0;

std::string firstLine(const std::string& text) {
    return text.substr(0, text.find('\n'));
}

/** Frames [B, N, 3] with their mass-weighted centre of mass at the origin. */
at::Tensor centred(const at::Tensor& frames, const at::Tensor& weights) {
    return frames - (frames * weights.reshape({1, -1, 1})).sum(1, true);
}

/**
 * Centred frames [B, N, 3] rotated onto the centred `reference` [N, 3]: the
 * rotation Q minimising sum_p w_p |Q x_p - r_p|^2 (Kabsch), from the SVD of
 * H = sum_p w_p x_p r_p^T = U S V^T: Q = V D U^T, D = diag(1, 1, det(V U^T))
 * so that Q is a rotation, never a reflection.
 */
at::Tensor rotatedOnto(const at::Tensor& frames, const at::Tensor& reference, const at::Tensor& weights) {
    at::Tensor h = at::matmul(frames.transpose(1, 2) * weights.reshape({1, 1, -1}), reference);  // [B, 3, 3]
    auto [u, s, vh] = at::linalg_svd(h, false);
    at::Tensor v = vh.transpose(1, 2);
    at::Tensor sign = at::sign(at::linalg_det(at::matmul(v, u.transpose(1, 2))));
    at::Tensor d = at::ones({frames.size(0), 3}, frames.options());
    d.select(1, 2).copy_(at::where(sign == 0, at::ones_like(sign), sign));
    // Rows: x' = Q x, i.e. X' = X Q^T = X U D V^T.
    return at::matmul(frames, at::matmul(u * d.unsqueeze(1), vh));
}

std::vector<MLP::Activation> encoderActivations(size_t layers) {
    std::vector<MLP::Activation> activations(layers, MLP::Activation::SELU);
    if (layers > 0)
        activations.back() = MLP::Activation::LogSigmoid;
    return activations;
}

std::vector<int> layerSizes(int inputs, const std::vector<int>& widths, int outputs) {
    std::vector<int> sizes = {inputs};
    sizes.insert(sizes.end(), widths.begin(), widths.end());
    sizes.push_back(outputs);
    return sizes;
}

void checkConfig(const CGModelConfig& config) {
    if (config.latentDim < 1)
        throw OpenMMException("CGLatentModel: the latent dimension must be at least 1, got " +
                              std::to_string(config.latentDim));
    for (const std::vector<int>* widths : {&config.decoderWidths, &config.encoderWidths})
        for (int w : *widths)
            if (w < 1)
                throw OpenMMException("CGLatentModel: hidden layer widths must be positive");
    if (!(config.initialStd > 0) || !std::isfinite(config.initialStd))
        throw OpenMMException("CGLatentModel: initialStd must be positive (nm)");
    if (!(config.maxStd >= 0) || !std::isfinite(config.maxStd))
        throw OpenMMException("CGLatentModel: maxStd must be non-negative (nm; 0: no bound)");
    if (config.maxStd > 0 && !config.varianceDependsOnLatent)
        throw OpenMMException("CGLatentModel: maxStd bounds the z-dependent sigma of an embedded-physics model "
                              "(varianceDependsOnLatent)");
}

at::Tensor intTensor(const std::vector<int>& values) {
    return at::tensor(std::vector<int64_t>(values.begin(), values.end()), at::kLong);
}

std::vector<int> intVector(const at::Tensor& t) {
    at::Tensor c = t.to(at::kLong).contiguous();
    return std::vector<int>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

} // namespace

class CGLatentModel::Impl {
public:
    CGModelConfig config;
    SystemFingerprint fingerprint;
    at::Tensor masses;             // [N] Da
    at::Tensor weights;            // [N] masses / total
    at::Tensor reference;          // [N, 3] nm
    at::Tensor inputScale;         // [3N] nm: the encoder sees (x - reference) / inputScale
    at::Tensor logVarianceOffset;  // [3N]: log sigma^2 at the start (embedded physics: added to the head)
    MLP encoder, decoder;
    at::Tensor logVariance;        // [3N] free parameter of a data-driven model
    std::string metadata;

    int numCoordinates() const { return (int) reference.numel(); }

    void build(at::Generator& generator) {
        const int n = numCoordinates(), d = config.latentDim;
        encoder = MLP(layerSizes(n, config.encoderWidths, 2 * d), encoderActivations(config.encoderWidths.size()),
                      1.0, generator);
        // A small output layer: the decoder's mean starts near the reference.
        decoder = MLP(layerSizes(d, config.decoderWidths, config.varianceDependsOnLatent ? 2 * n : n),
                      std::vector<MLP::Activation>(config.decoderWidths.size(), MLP::Activation::Tanh), 0.1,
                      generator);
        logVariance = config.varianceDependsOnLatent ? at::Tensor()
                                                     : logVarianceOffset.clone().requires_grad_(true);
    }

    std::vector<at::Tensor> parameters() const {
        std::vector<at::Tensor> all = encoder.parameters();
        for (const at::Tensor& p : decoderParameters())
            all.push_back(p);
        return all;
    }

    std::vector<at::Tensor> decoderParameters() const {
        std::vector<at::Tensor> all = decoder.parameters();
        if (logVariance.defined())
            all.push_back(logVariance);
        return all;
    }
};

CGLatentModel::CGLatentModel(std::shared_ptr<Impl> impl) : impl(std::move(impl)) {}

CGLatentModel CGLatentModel::create(const OpenMM::System& system, const at::Tensor& frames,
                                    const CGModelConfig& config) {
    checkConfig(config);
    auto impl = std::make_shared<Impl>();
    impl->config = config;
    impl->fingerprint = SystemFingerprint::of(system);
    const int numParticles = system.getNumParticles();
    checkFrames(frames, numParticles, "CGLatentModel::create");
    impl->masses = at::tensor(impl->fingerprint.masses, at::kDouble);
    if (!(impl->masses > 0).all().item<bool>())
        throw OpenMMException("CGLatentModel::create: every particle needs a positive mass (virtual sites are not "
                              "supported)");
    impl->weights = impl->masses / impl->masses.sum();
    at::NoGradGuard noGrad;
    at::Tensor x = frames.detach().to(at::kDouble);
    at::Tensor aligned = x;
    if (config.alignFrames) {
        // Procrustes mean: align onto the current mean, take the new mean, a few times.
        aligned = centred(x, impl->weights);
        at::Tensor reference = aligned[0];
        for (int iteration = 0; iteration < 4; iteration++) {
            aligned = rotatedOnto(aligned, reference, impl->weights);
            reference = centred(aligned.mean(0, true), impl->weights)[0];
        }
        aligned = rotatedOnto(aligned, reference, impl->weights);
    }
    impl->reference = aligned.mean(0);
    const int n = 3 * numParticles;
    at::Tensor spread = aligned.size(0) > 1 ? aligned.reshape({-1, n}).std(0) : at::zeros({n}, at::kDouble);
    // Coordinates that do not vary in the data (or a single frame) take initialStd.
    spread = at::where(spread > 1e-6, spread, at::full_like(spread, config.initialStd));
    impl->inputScale = spread;
    impl->logVarianceOffset = at::log(spread * spread);
    at::Generator generator = at::detail::createCPUGenerator(config.seed);
    impl->build(generator);
    return CGLatentModel(impl);
}

const CGModelConfig& CGLatentModel::getConfig() const { return impl->config; }
int CGLatentModel::getLatentDim() const { return impl->config.latentDim; }
int CGLatentModel::getNumParticles() const { return impl->fingerprint.numParticles; }
const SystemFingerprint& CGLatentModel::getFingerprint() const { return impl->fingerprint; }
at::Tensor CGLatentModel::getReference() const { return impl->reference.clone(); }
at::Tensor CGLatentModel::getMasses() const { return impl->masses.clone(); }
const std::string& CGLatentModel::getMetadata() const { return impl->metadata; }
void CGLatentModel::setMetadata(const std::string& text) { impl->metadata = text; }

void CGLatentModel::checkCompatible(const OpenMM::System& system) const {
    std::string difference = impl->fingerprint.difference(SystemFingerprint::of(system));
    if (!difference.empty())
        throw OpenMMException("This coarse-grained latent model was made for another System: " + difference);
}

at::Tensor CGLatentModel::align(const at::Tensor& frames) const {
    checkFiniteConfigurations(frames, getNumParticles(), "CGLatentModel");
    at::NoGradGuard noGrad;
    if (!impl->config.alignFrames)
        return frames.detach().clone();
    return rotatedOnto(centred(frames.detach(), impl->weights), impl->reference, impl->weights);
}

CGEncoding CGLatentModel::encode(const at::Tensor& frames) const {
    return encodeCoordinates(align(frames).reshape({frames.size(0), -1}));
}

CGEncoding CGLatentModel::encodeCoordinates(const at::Tensor& coordinates) const {
    const int n = impl->numCoordinates(), d = getLatentDim();
    if (coordinates.dim() != 2 || coordinates.size(1) != n)
        throw OpenMMException("CGLatentModel::encodeCoordinates: coordinates must be [B, " + std::to_string(n) +
                              "], got " + shapeString(coordinates));
    at::Tensor input = (coordinates.to(at::kDouble) - impl->reference.reshape({1, n})) / impl->inputScale;
    at::Tensor out = impl->encoder(input);
    return {out.narrow(1, 0, d), out.narrow(1, d, d)};
}

CGDecoding CGLatentModel::decode(const at::Tensor& latent) const {
    if (latent.dim() != 2 || latent.size(1) != getLatentDim())
        throw OpenMMException("CGLatentModel::decode: latent vectors must be [B, " + std::to_string(getLatentDim()) +
                              "], got " + shapeString(latent));
    const int n = impl->numCoordinates();
    at::Tensor out = impl->decoder(latent.to(at::kDouble));
    CGDecoding decoding;
    decoding.mean = impl->reference.reshape({1, n}) + out.narrow(1, 0, n);
    // The z-dependent log-variance stays within LOG_VARIANCE_RANGE of its start
    // (sigma within a factor e^4): an unbounded head lets training without data
    // blow sigma up while beta_s is tiny, until x overflows.
    if (!impl->config.varianceDependsOnLatent) {
        decoding.logVariance = impl->logVariance.reshape({1, n}).expand({latent.size(0), n});
        return decoding;
    }
    decoding.logVariance = impl->logVarianceOffset.reshape({1, n}) +
                           LOG_VARIANCE_RANGE * at::tanh(out.narrow(1, n, n) / LOG_VARIANCE_RANGE);
    if (impl->config.maxStd > 0) {
        // A smooth minimum with log maxStd^2, so that gradients still reach sigma near the bound.
        const double top = 2 * std::log(impl->config.maxStd);
        decoding.logVariance = top - at::softplus(top - decoding.logVariance);
    }
    return decoding;
}

at::Tensor CGLatentModel::sample(int64_t count, at::Generator& generator, bool meanOnly) const {
    if (count < 1)
        throw OpenMMException("CGLatentModel::sample: the count must be positive");
    at::Tensor z = at::normal(0.0, 1.0, {count, (int64_t) getLatentDim()}, generator, at::kDouble);
    CGDecoding decoding = decode(z);
    at::Tensor x = decoding.mean;
    if (!meanOnly)
        x = x + at::exp(0.5 * decoding.logVariance) *
                    at::normal(0.0, 1.0, {count, (int64_t) impl->numCoordinates()}, generator, at::kDouble);
    return x.reshape({count, getNumParticles(), 3});
}

at::Tensor CGLatentModel::decodeConfigurations(const at::Tensor& latent) const {
    return decode(latent).mean.reshape({latent.size(0), getNumParticles(), 3});
}

std::vector<at::Tensor> CGLatentModel::encoderParameters() const { return impl->encoder.parameters(); }
std::vector<at::Tensor> CGLatentModel::decoderParameters() const { return impl->decoderParameters(); }

std::vector<at::Tensor> CGLatentModel::decoderWeightMatrices() const {
    std::vector<at::Tensor> matrices;
    const std::vector<at::Tensor> all = impl->decoder.parameters();
    for (size_t i = 0; i < all.size(); i += 2)
        matrices.push_back(all[i]);
    return matrices;
}

std::vector<at::Tensor> CGLatentModel::decoderHiddenParameters() const {
    std::vector<at::Tensor> all = impl->decoder.parameters();
    all.resize(all.size() - 2);  // without the output layer's weight and bias
    return all;
}

at::Tensor CGLatentModel::decoderFeatures(const at::Tensor& latent) const {
    return impl->decoder.hidden(latent.to(at::kDouble));
}

void CGLatentModel::traceDecoder(const at::Tensor& latent, std::vector<at::Tensor>& layerInputs,
                                 std::vector<at::Tensor>& preActivations) const {
    impl->decoder.trace(latent.to(at::kDouble), layerInputs, preActivations);
}

at::Tensor CGLatentModel::decoderOutputWeight() const {
    return impl->decoder.outputWeight().narrow(1, 0, impl->numCoordinates());
}

at::Tensor CGLatentModel::decoderOutputBias() const {
    return impl->decoder.outputBias().narrow(0, 0, impl->numCoordinates());
}

at::Tensor CGLatentModel::decoderLogVariance() const {
    if (!impl->logVariance.defined())
        throw OpenMMException("CGLatentModel: an embedded-physics model's variance depends on z; it has no free "
                              "log-variance vector");
    return impl->logVariance;
}

int64_t CGLatentModel::getNumParameters() const {
    int64_t count = 0;
    for (const at::Tensor& p : impl->parameters())
        count += p.numel();
    return count;
}

bool CGLatentModel::hasFiniteParameters() const {
    for (const at::Tensor& p : impl->parameters())
        if (!at::isfinite(p).all().item<bool>())
            return false;
    return true;
}

void CGLatentModel::save(std::ostream& stream) const {
    const CGModelConfig& c = impl->config;
    TensorMap state;
    state["config.latent_dim"] = at::tensor({(int64_t) c.latentDim}, at::kLong);
    state["config.decoder_widths"] = intTensor(c.decoderWidths);
    state["config.encoder_widths"] = intTensor(c.encoderWidths);
    state["config.flags"] = at::tensor({(int64_t) c.varianceDependsOnLatent, (int64_t) c.alignFrames,
                                        (int64_t) c.seed}, at::kLong);
    state["config.initial_std"] = at::tensor({c.initialStd}, at::kDouble);
    state["config.max_std"] = at::tensor({c.maxStd}, at::kDouble);
    state["reference"] = impl->reference;
    state["input_scale"] = impl->inputScale;
    state["log_variance_offset"] = impl->logVarianceOffset;
    saveFingerprint(impl->fingerprint, state, "fingerprint.");
    saveParameterList(state, "model.", impl->parameters());
    writeModelFile(stream, CG_FILE, FORMAT_VERSION, state, [&](torch::serialize::OutputArchive& archive) {
        archive.write("format", c10::IValue(std::string(FORMAT_NAME)));
        archive.write("format_version", c10::IValue((int64_t) FORMAT_VERSION));
        archive.write("metadata", c10::IValue(impl->metadata));
    });
}

void CGLatentModel::save(const std::string& path) const {
    saveToPath(path, "CGLatentModel::save", [&](std::ostream& out) { save(out); });
}

CGLatentModel CGLatentModel::load(std::istream& stream, const std::string& description) {
    const std::string where = "CGLatentModel::load: " + description;
    std::istringstream archiveStream(checkedFramedArchive(readAllBytes(stream), CG_FILE, FORMAT_VERSION, where));
    TensorMap state;
    auto impl = std::make_shared<Impl>();
    try {
        torch::serialize::InputArchive archive;
        archive.load_from(archiveStream);
        c10::IValue value;
        if (!archive.try_read("format", value) || !value.isString() || value.toStringRef() != FORMAT_NAME)
            throw OpenMMException(where + " is not an " + CG_FILE.name);
        archive.read("metadata", value);
        impl->metadata = value.toStringRef();
        state = readArchiveTensors(archive);
    } catch (const OpenMMException&) {
        throw;
    } catch (const std::exception& e) {
        throw OpenMMException(where + " cannot be read (truncated or corrupt file?): " + firstLine(e.what()));
    }
    try {
        for (const char* key : {"config.latent_dim", "config.decoder_widths", "config.encoder_widths", "config.flags",
                                "config.initial_std", "reference", "input_scale", "log_variance_offset"})
            if (!state.count(key))
                throw OpenMMException(std::string("'") + key + "' is missing");
        CGModelConfig& c = impl->config;
        c.latentDim = (int) state["config.latent_dim"].item<int64_t>();
        c.decoderWidths = intVector(state["config.decoder_widths"]);
        c.encoderWidths = intVector(state["config.encoder_widths"]);
        at::Tensor flags = state["config.flags"].to(at::kLong);
        if (flags.numel() != 3)
            throw OpenMMException("'config.flags' is malformed");
        c.varianceDependsOnLatent = flags[0].item<int64_t>() != 0;
        c.alignFrames = flags[1].item<int64_t>() != 0;
        c.seed = (uint64_t) flags[2].item<int64_t>();
        c.initialStd = state["config.initial_std"].item<double>();
        // Files written before the bound existed have none.
        c.maxStd = state.count("config.max_std") ? state["config.max_std"].item<double>() : 0.0;
        checkConfig(c);
        impl->fingerprint = loadFingerprint(state, "fingerprint.");
        impl->masses = at::tensor(impl->fingerprint.masses, at::kDouble);
        impl->weights = impl->masses / impl->masses.sum();
        impl->reference = state["reference"].to(at::kDouble);
        impl->inputScale = state["input_scale"].to(at::kDouble);
        impl->logVarianceOffset = state["log_variance_offset"].to(at::kDouble);
        const int64_t n = 3 * (int64_t) impl->fingerprint.numParticles;
        if (!impl->reference.sizes().equals({n / 3, 3}) || impl->inputScale.numel() != n ||
            impl->logVarianceOffset.numel() != n)
            throw OpenMMException("the reference structure or scales do not match the particle count");
        at::Generator generator = at::detail::createCPUGenerator(c.seed);
        impl->build(generator);
        loadParameterList(state, "model.", impl->parameters(), "CGLatentModel");
    } catch (const std::exception& e) {
        throw OpenMMException(where + " is inconsistent: " + firstLine(e.what()));
    }
    CGLatentModel model(impl);
    if (!model.hasFiniteParameters())
        throw OpenMMException(where + " holds weights that are not finite (NaN or inf)");
    return model;
}

CGLatentModel CGLatentModel::load(const std::string& path) {
    return loadModelFile<CGLatentModel>(path, "CGLatentModel::load");
}

CGLatentModel CGLatentModel::load(const std::string& path, const OpenMM::System& system) {
    return loadModelFile<CGLatentModel>(path, "CGLatentModel::load", &system);
}

CGLatentModel CGLatentModel::clone() const {
    std::stringstream buffer;
    save(buffer);
    return load(buffer, "a copy");
}

at::Tensor radiusOfGyration(const at::Tensor& x, const at::Tensor& masses) {
    if (x.dim() != 3 || x.size(2) != 3 || masses.dim() != 1 || masses.size(0) != x.size(1))
        throw OpenMMException("radiusOfGyration: need configurations [B, N, 3] and masses [N], got " +
                              shapeString(x) + " and " + shapeString(masses));
    at::Tensor w = (masses.to(x.dtype()) / masses.sum()).reshape({1, -1, 1});
    at::Tensor c = x - (x * w).sum(1, true);
    return at::sqrt((c * c * w).sum({1, 2}));
}

} // namespace OpenMMBG
