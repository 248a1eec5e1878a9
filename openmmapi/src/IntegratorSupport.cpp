#include "openmmbg/internal/IntegratorSupport.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <openmm/OpenMMException.h>

#include <cmath>
#include <cstring>
#include <istream>
#include <ostream>
#include <random>

using namespace OpenMM;

namespace OpenMMBG {

namespace {

const char CHECKPOINT_MAGIC[8] = {'O', 'M', 'M', 'B', 'G', 'I', 'N', '1'};

template <class T>
void writeValue(std::ostream& stream, const T& value) {
    stream.write(reinterpret_cast<const char*>(&value), sizeof(T));
}

template <class T>
T readValue(std::istream& stream) {
    T value;
    stream.read(reinterpret_cast<char*>(&value), sizeof(T));
    if (!stream)
        throw OpenMMException("Integrator checkpoint: the record is truncated");
    return value;
}

} // namespace

void checkTemperature(double temperature, const std::string& who) {
    if (!(temperature > 0) || !std::isfinite(temperature))
        throw OpenMMException(who + ": temperatures must be positive and finite (K), got " + std::to_string(temperature));
}

void checkSystemForFlowMoves(const System& system, const FlowModel& model, const std::string& who) {
    if (system.getNumConstraints() > 0)
        throw OpenMMException(who + " cannot be used with Systems that include constraints (this one has "
                              + std::to_string(system.getNumConstraints())
                              + "); create the System with constraints=None");
    for (int i = 0; i < system.getNumParticles(); i++)
        if (system.isVirtualSite(i))
            throw OpenMMException(who + " cannot be used with Systems that include virtual sites (particle "
                                  + std::to_string(i) + " is one)");
    if (system.usesPeriodicBoundaryConditions())
        throw OpenMMException(who + " cannot be used with periodic Systems yet; use a non-periodic System "
                              "(e.g. NoCutoff with implicit solvent)");
    model.checkCompatible(system);
}

std::unique_ptr<at::Generator> makeGenerator(int seed) {
    uint64_t value = seed != 0 ? (uint64_t) (uint32_t) seed : ((uint64_t) std::random_device()() << 32) | std::random_device()();
    return std::make_unique<at::Generator>(at::make_generator<at::CPUGeneratorImpl>(value));
}

double kineticEnergyFromVelocities(ContextImpl& context) {
    std::vector<Vec3> velocities;
    context.getVelocities(velocities);
    const System& system = context.getSystem();
    double energy = 0;
    for (int i = 0; i < system.getNumParticles(); i++)
        energy += 0.5 * system.getParticleMass(i) * velocities[i].dot(velocities[i]);
    return energy;
}

at::Tensor positionsToTensor(const std::vector<Vec3>& positions) {
    at::Tensor frame = at::empty({1, (int64_t) positions.size(), 3}, at::kDouble);
    double* data = frame.data_ptr<double>();
    for (size_t i = 0; i < positions.size(); i++)
        for (int k = 0; k < 3; k++)
            data[3 * i + k] = positions[i][k];
    return frame;
}

void tensorToPositions(const at::Tensor& frame, std::vector<Vec3>& positions) {
    at::Tensor host = frame.to(at::kCPU).contiguous();
    const double* data = host.data_ptr<double>();
    positions.resize(host.numel() / 3);
    for (size_t i = 0; i < positions.size(); i++)
        positions[i] = Vec3(data[3 * i], data[3 * i + 1], data[3 * i + 2]);
}

namespace {

void throwNonFinitePosition(size_t particle, const std::string& who) {
    throw OpenMMException(who + ": the Context's position of particle " + std::to_string(particle)
                          + " is not finite (NaN or inf); set valid positions first");
}

} // namespace

void checkFinitePositions(const std::vector<Vec3>& positions, const std::string& who) {
    for (size_t i = 0; i < positions.size(); i++)
        for (int k = 0; k < 3; k++)
            if (!std::isfinite(positions[i][k]))
                throwNonFinitePosition(i, who);
}

void checkFiniteConfiguration(const at::Tensor& x, const std::string& who) {
    at::Tensor finite = at::isfinite(x[0]).all(1);  // [N]
    if (!finite.all().item<bool>())
        throwNonFinitePosition((size_t) (~finite).nonzero()[0][0].item<int64_t>(), who);
}

void writeIntegratorCheckpoint(std::ostream& stream, const at::Generator* generator, const std::vector<double>& values,
                               const std::vector<const MoveStatistics*>& statistics) {
    stream.write(CHECKPOINT_MAGIC, sizeof(CHECKPOINT_MAGIC));
    at::Tensor state = generator ? generator->get_state() : at::Tensor();
    int64_t stateBytes = state.defined() ? state.numel() : 0;
    writeValue(stream, stateBytes);
    if (stateBytes > 0)
        stream.write(reinterpret_cast<const char*>(state.data_ptr<uint8_t>()), stateBytes);
    writeValue(stream, (int64_t) values.size());
    for (double value : values)
        writeValue(stream, value);
    writeValue(stream, (int64_t) statistics.size());
    for (const MoveStatistics* s : statistics)
        writeValue(stream, *s);
}

void readIntegratorCheckpoint(std::istream& stream, std::unique_ptr<at::Generator>& generator, int seed,
                              std::vector<double>& values, std::vector<MoveStatistics*>& statistics) {
    char magic[sizeof(CHECKPOINT_MAGIC)];
    stream.read(magic, sizeof(magic));
    if (!stream || std::memcmp(magic, CHECKPOINT_MAGIC, sizeof(magic)) != 0)
        throw OpenMMException("Integrator checkpoint: not written by an OpenMM-BG integrator of this version");
    int64_t stateBytes = readValue<int64_t>(stream);
    if (stateBytes < 0 || stateBytes > (1 << 20))
        throw OpenMMException("Integrator checkpoint: the random state is corrupt");
    if (stateBytes > 0) {
        at::Tensor state = at::empty({stateBytes}, at::kByte);
        stream.read(reinterpret_cast<char*>(state.data_ptr<uint8_t>()), stateBytes);
        if (!stream)
            throw OpenMMException("Integrator checkpoint: the record is truncated");
        if (!generator)
            generator = makeGenerator(seed);
        generator->set_state(state);
    }
    int64_t count = readValue<int64_t>(stream);
    values.assign(count, 0.0);
    for (double& value : values)
        value = readValue<double>(stream);
    int64_t statisticsCount = readValue<int64_t>(stream);
    if (statisticsCount != (int64_t) statistics.size())
        throw OpenMMException("Integrator checkpoint: written for another number of replicas");
    for (MoveStatistics* s : statistics)
        *s = readValue<MoveStatistics>(stream);
}

} // namespace OpenMMBG
