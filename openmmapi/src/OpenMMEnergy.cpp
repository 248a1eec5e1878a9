#include "openmmbg/OpenMMEnergy.h"

#include "openmmbg/internal/TensorChecks.h"
#include "openmmbg/internal/WorkerPool.h"

#include <ATen/ATen.h>
#include <openmm/Context.h>
#include <openmm/OpenMMException.h>
#include <openmm/Platform.h>
#include <openmm/State.h>
#include <openmm/VerletIntegrator.h>
#include <openmm/serialization/XmlSerializer.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <sstream>
#include <thread>

using namespace OpenMM;

namespace OpenMMBG {

namespace {

bool allFinite(const double* values, int64_t count) {
    for (int64_t i = 0; i < count; i++)
        if (!std::isfinite(values[i]))
            return false;
    return true;
}

std::string registeredPlatformNames() {
    std::string names;
    for (int i = 0; i < Platform::getNumPlatforms(); i++)
        names += (i ? ", " : "") + Platform::getPlatform(i).getName();
    return names;
}

bool isPlatformRegistered(const std::string& name) {
    for (int i = 0; i < Platform::getNumPlatforms(); i++)
        if (Platform::getPlatform(i).getName() == name)
            return true;
    return false;
}

/**
 * Serialises the creation and destruction of worker Contexts in the whole
 * process: OpenMM 7.7's CPU platform registers every Context in one static
 * std::map without a lock, so Contexts made or deleted concurrently (the
 * workers start in parallel) can corrupt it.
 */
std::mutex& contextLifetimeMutex() {
    static std::mutex mutex;
    return mutex;
}

/** One Context of the pool and the scratch space to move a frame in and out of it. */
class WorkerContext {
public:
    WorkerContext(const System& system, const std::string& platformName,
                  const std::map<std::string, std::string>& properties)
        : integrator(0.001), positions(system.getNumParticles()) {
        std::map<std::string, std::string> props = properties;
        // Parallelism comes from the workers: one thread per CPU Context.
        if (platformName == "CPU" && props.count("Threads") == 0)
            props["Threads"] = "1";
        {
            std::lock_guard<std::mutex> lock(contextLifetimeMutex());
            context = std::make_unique<Context>(system, integrator, Platform::getPlatformByName(platformName), props);
        }
        for (int i = 0; i < system.getNumParticles() && !hasVirtualSites; i++)
            hasVirtualSites = system.isVirtualSite(i);
    }

    ~WorkerContext() {
        std::lock_guard<std::mutex> lock(contextLifetimeMutex());
        context.reset();
    }

    /**
     * Potential energy (kJ/mol) and forces (kJ/mol/nm, written to forces[3N])
     * of one frame x[3N] in nm. Returns false, and leaves the outputs
     * unspecified, for non-finite input or output or an exception in OpenMM.
     */
    bool evaluate(const double* x, double& energy, double* forces) {
        const int n = (int) positions.size();
        if (!allFinite(x, 3 * (int64_t) n))
            return false;
        for (int i = 0; i < n; i++)
            positions[i] = Vec3(x[3 * i], x[3 * i + 1], x[3 * i + 2]);
        try {
            context->setPositions(positions);
            if (hasVirtualSites)
                context->computeVirtualSites();
            State state = context->getState(State::Energy | State::Forces);
            energy = state.getPotentialEnergy();
            const std::vector<Vec3>& f = state.getForces();
            for (int i = 0; i < n; i++)
                for (int k = 0; k < 3; k++)
                    forces[3 * i + k] = f[i][k];
        } catch (const std::exception&) {
            return false;
        }
        return std::isfinite(energy) && allFinite(forces, 3 * (int64_t) n);
    }

private:
    VerletIntegrator integrator;
    std::unique_ptr<Context> context;
    std::vector<Vec3> positions;
    bool hasVirtualSites = false;
};

} // namespace

class OpenMMEnergy::Impl {
public:
    Impl(const System& sourceSystem, double temperature, const Options& options)
        : temperature(temperature), options(options) {
        checkTemperature(temperature);
        if (sourceSystem.getNumParticles() == 0)
            throw OpenMMException("OpenMMEnergy: the System has no particles");
        if (sourceSystem.usesPeriodicBoundaryConditions())
            throw OpenMMException("OpenMMEnergy: periodic Systems are not supported; "
                                  "use a System without periodic boundary conditions (e.g. NoCutoff)");
        if (options.numWorkers < 0)
            throw OpenMMException("OpenMMEnergy: numWorkers must be >= 0 (0 = one per hardware thread), got "
                                  + std::to_string(options.numWorkers));
        if (!(options.energyCut > 0) || std::isnan(options.energyCut))
            throw OpenMMException("OpenMMEnergy: energyCut must be positive (infinity disables it)");
        if (!(options.maxForce > 0) || std::isnan(options.maxForce))
            throw OpenMMException("OpenMMEnergy: maxForce must be positive (infinity disables clipping)");
        if (!options.platform.empty() && !isPlatformRegistered(options.platform))
            throw OpenMMException("OpenMMEnergy: unknown platform '" + options.platform
                                  + "'; registered platforms: " + registeredPlatformNames()
                                  + " (plugin load failures, if any: Platform::getPluginLoadFailures())");
        numWorkers = options.numWorkers > 0 ? options.numWorkers
                                            : std::max(1, (int) std::thread::hardware_concurrency());
        platformName = options.platform;
        // A private copy: the caller may change or delete its System afterwards.
        system.reset(XmlSerializer::clone(sourceSystem));
    }

    static void checkTemperature(double temperature) {
        if (!(temperature > 0) || !std::isfinite(temperature))
            throw OpenMMException("OpenMMEnergy: the temperature must be positive and finite (K), got "
                                  + std::to_string(temperature));
    }

    /** Chooses the platform if needed and creates the worker Contexts; `frame` is a finite configuration or null. */
    void start(const double* frame) {
        if (pool)
            return;
        if (platformName.empty())
            platformName = fastestPlatform(frame);
        contexts.resize(numWorkers);
        auto newPool = std::make_unique<WorkerPool>(numWorkers);
        newPool->run([&](int worker) {
            contexts[worker] = std::make_unique<WorkerContext>(*system, platformName, options.platformProperties);
        });
        pool = std::move(newPool);
    }

    /** The faster of Reference and CPU for this System, timed on `frame` (the System's first platform if null). */
    std::string fastestPlatform(const double* frame) {
        std::vector<std::string> candidates = {"Reference"};
        if (isPlatformRegistered("CPU"))
            candidates.push_back("CPU");
        if (frame == nullptr || candidates.size() == 1)
            return candidates[0];
        std::vector<double> forces(3 * system->getNumParticles());
        std::string best;
        double bestTime = 0;
        for (const std::string& name : candidates) {
            WorkerContext trial(*system, name, options.platformProperties);
            double energy;
            trial.evaluate(frame, energy, forces.data());  // first call includes set-up costs
            const int repeats = 10;
            auto begin = std::chrono::steady_clock::now();
            for (int i = 0; i < repeats; i++)
                trial.evaluate(frame, energy, forces.data());
            double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
            if (best.empty() || seconds < bestTime) {
                best = name;
                bestTime = seconds;
            }
        }
        return best;
    }

    /** Turns raw energy (kJ/mol) and forces (kJ/mol/nm) of one frame into reduced ones, in place. */
    void reduce(double potential, double& reduced, double* forces, int numParticles) const {
        const double beta = 1.0 / (BOLTZMANN * temperature);
        double u = beta * potential;
        double forceScale = beta;
        if (u > options.energyCut) {
            // Linear-log cut: u_cut + log(1 + u - u_cut), derivative 1 / (1 + u - u_cut).
            double excess = u - options.energyCut;
            u = options.energyCut + std::log1p(excess);
            forceScale /= 1.0 + excess;
        }
        reduced = u;
        for (int i = 0; i < numParticles; i++) {
            double* f = forces + 3 * i;
            double scale = forceScale;
            if (std::isfinite(options.maxForce)) {
                double norm = forceScale * std::sqrt(f[0] * f[0] + f[1] * f[1] + f[2] * f[2]);
                if (norm > options.maxForce)
                    scale *= options.maxForce / norm;
            }
            f[0] *= scale;
            f[1] *= scale;
            f[2] *= scale;
        }
    }

    std::unique_ptr<System> system;
    double temperature;
    Options options;
    int numWorkers;
    std::string platformName;
    std::mutex callMutex;
    std::vector<std::unique_ptr<WorkerContext>> contexts;
    std::unique_ptr<WorkerPool> pool;  // last member: its threads stop before the Contexts go
};

OpenMMEnergy::OpenMMEnergy(const System& system, double temperature, const Options& options)
    : impl(std::make_unique<Impl>(system, temperature, options)) {}

OpenMMEnergy::OpenMMEnergy(const System& system, double temperature)
    : OpenMMEnergy(system, temperature, Options()) {}

OpenMMEnergy::~OpenMMEnergy() = default;

EnergyBatch OpenMMEnergy::evaluate(const at::Tensor& positions) const {
    const int n = getNumParticles();
    checkConfigurationTensor(positions, n, "OpenMMEnergy::evaluate");
    at::Tensor x = positions.detach().to(at::kCPU).contiguous();
    const int64_t batch = x.size(0);
    const int64_t frameSize = 3 * (int64_t) n;
    const double* xData = x.data_ptr<double>();

    const double* firstFinite = nullptr;
    for (int64_t b = 0; b < batch; b++) {
        bool finite = allFinite(xData + b * frameSize, frameSize);
        if (!finite && impl->options.rejectNonFiniteInput)
            throw OpenMMException("OpenMMEnergy::evaluate: frame " + std::to_string(b)
                                  + " has non-finite positions (NaN or inf)");
        if (finite && firstFinite == nullptr)
            firstFinite = xData + b * frameSize;
    }

    auto options = at::TensorOptions().dtype(at::kDouble);
    at::Tensor reduced = at::empty({batch}, options);
    at::Tensor potential = at::empty({batch}, options);
    at::Tensor forces = at::empty({batch, n, 3}, options);
    at::Tensor finite = at::empty({batch}, options.dtype(at::kBool));
    double* reducedData = reduced.data_ptr<double>();
    double* potentialData = potential.data_ptr<double>();
    double* forceData = forces.data_ptr<double>();
    bool* finiteData = finite.data_ptr<bool>();

    std::lock_guard<std::mutex> lock(impl->callMutex);
    impl->start(firstFinite);
    // Frames are handed out one at a time, which balances the load; each
    // result depends only on its frame, so the worker count cannot change it.
    std::atomic<int64_t> nextFrame(0);
    impl->pool->run([&](int worker) {
        WorkerContext& context = *impl->contexts[worker];
        for (int64_t b = nextFrame++; b < batch; b = nextFrame++) {
            double* f = forceData + b * frameSize;
            bool ok = context.evaluate(xData + b * frameSize, potentialData[b], f);
            if (ok)
                impl->reduce(potentialData[b], reducedData[b], f, n);
            if (!ok) {
                potentialData[b] = reducedData[b] = std::numeric_limits<double>::infinity();
                std::fill(f, f + frameSize, 0.0);
            }
            finiteData[b] = ok;
        }
    });
    const at::Device device = positions.device();
    return {reduced.to(device), potential.to(device), forces.to(device), finite.to(device)};
}

namespace {

/** u(x) with the gradient -F/kT; the forces come from the same OpenMM evaluation as the energies. */
class ReducedEnergyFunction : public torch::autograd::Function<ReducedEnergyFunction> {
public:
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& positions,
                              const OpenMMEnergy* bridge) {
        EnergyBatch result = bridge->evaluate(positions);
        ctx->save_for_backward({result.forces});
        return result.reducedEnergy;
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list gradOutputs) {
        at::Tensor forces = ctx->get_saved_variables()[0];
        at::Tensor gradPositions = -forces * gradOutputs[0].reshape({-1, 1, 1});
        return {gradPositions, at::Tensor()};
    }
};

} // namespace

at::Tensor OpenMMEnergy::reducedEnergy(const at::Tensor& positions) const {
    return ReducedEnergyFunction::apply(positions, this);
}

int OpenMMEnergy::getNumParticles() const {
    return impl->system->getNumParticles();
}

double OpenMMEnergy::getTemperature() const {
    return impl->temperature;
}

void OpenMMEnergy::setTemperature(double temperature) {
    Impl::checkTemperature(temperature);
    std::lock_guard<std::mutex> lock(impl->callMutex);
    impl->temperature = temperature;
}

std::string OpenMMEnergy::getPlatformName() const {
    std::lock_guard<std::mutex> lock(impl->callMutex);
    return impl->platformName.empty() ? "(chosen on first evaluation)" : impl->platformName;
}

int OpenMMEnergy::getNumWorkers() const {
    return impl->numWorkers;
}

const System& OpenMMEnergy::getSystem() const {
    return *impl->system;
}

} // namespace OpenMMBG
