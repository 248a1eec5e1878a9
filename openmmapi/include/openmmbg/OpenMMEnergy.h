#ifndef OPENMMBG_OPENMMENERGY_H_
#define OPENMMBG_OPENMMENERGY_H_

#include <ATen/core/Tensor.h>
#include <openmm/System.h>

#include <limits>
#include <map>
#include <memory>
#include <string>

namespace OpenMMBG {

/**
 * Energies and forces of a batch of B configurations of N particles, as
 * returned by OpenMMEnergy::evaluate(). All tensors are float64 on the device
 * of the positions that were passed in.
 */
struct EnergyBatch {
    /** [B] reduced energy u = U/kT after the optional linear-log cut; +inf where not finite. */
    at::Tensor reducedEnergy;
    /** [B] potential energy U in kJ/mol, before any cut; +inf where not finite. */
    at::Tensor potentialEnergy;
    /** [B, N, 3] forces -du/dx in kT/nm (cut and clipping applied); zero where not finite. */
    at::Tensor forces;
    /**
     * [B] bool, false for a frame whose positions or energy were not finite or
     * whose evaluation threw inside OpenMM. Such frames never carry a number
     * that could be mistaken for an energy.
     */
    at::Tensor finite;
};

/**
 * The energy bridge: evaluates the energies and forces of any non-periodic
 * OpenMM System for batches of configurations, through a pool of Contexts with
 * one Context per worker thread.
 *
 * Workers start on the first evaluation and stop when the object is destroyed.
 * Calls from several threads are serialised. The workers create and delete
 * their Contexts one at a time, because OpenMM 7.7's CPU platform keeps
 * per-Context data in a process-wide map without a lock; for the same reason,
 * a program should not create or delete other CPU Contexts in another thread
 * while a bridge starts or is destroyed.
 */
class OpenMMEnergy {
public:
    /** Boltzmann's constant in kJ/mol/K. */
    static constexpr double BOLTZMANN = 0.0083144626;

    struct Options {
        /**
         * Name of the OpenMM platform the worker Contexts use. Empty: time the
         * Reference and CPU platforms on the first batch and keep the faster
         * (for small molecules such as alanine dipeptide that is Reference).
         */
        std::string platform;
        /** Platform properties for every worker Context. The CPU platform defaults to Threads=1 per worker. */
        std::map<std::string, std::string> platformProperties;
        /** Number of worker threads, each with its own Context. 0: one per hardware thread. */
        int numWorkers = 0;
        /**
         * Linear-log energy cut (docs/math.md): a reduced energy u above this
         * value (in kT) is replaced by cut + log(1 + u - cut), and its forces are
         * scaled accordingly. Infinity disables the cut.
         */
        double energyCut = std::numeric_limits<double>::infinity();
        /** Largest force magnitude per atom in kT/nm; larger ones are scaled down. Infinity disables clipping. */
        double maxForce = std::numeric_limits<double>::infinity();
        /**
         * With false (the default), a frame with non-finite positions is flagged
         * like any other failed frame, so that one bad sample cannot stop a
         * training run. With true, such input throws an OpenMMException naming the frame.
         */
        bool rejectNonFiniteInput = false;
    };

    /**
     * @param system       the System; it is copied, later changes to it are not seen
     * @param temperature  temperature in K that defines the reduced energy U/kT
     */
    OpenMMEnergy(const OpenMM::System& system, double temperature, const Options& options);
    OpenMMEnergy(const OpenMM::System& system, double temperature);
    ~OpenMMEnergy();
    OpenMMEnergy(const OpenMMEnergy&) = delete;
    OpenMMEnergy& operator=(const OpenMMEnergy&) = delete;

    /**
     * Energies and forces of a batch of configurations.
     *
     * @param positions  [B, N, 3] float64 tensor in nm (any device; evaluated on the host)
     */
    EnergyBatch evaluate(const at::Tensor& positions) const;

    /**
     * Reduced energies u = U/kT [B] as a differentiable function of the
     * positions: backpropagating g through it gives -F/kT * g. Frames that are
     * not finite get u = +inf and zero gradient; use evaluate() to read the mask.
     */
    at::Tensor reducedEnergy(const at::Tensor& positions) const;

    int getNumParticles() const;
    double getTemperature() const;
    /** Changes the temperature (K) that defines reduced energies and forces. */
    void setTemperature(double temperature);
    /** The platform the workers use; with automatic selection, known after the first evaluation. */
    std::string getPlatformName() const;
    int getNumWorkers() const;
    const OpenMM::System& getSystem() const;

private:
    class Impl;
    std::unique_ptr<Impl> impl;
};

} // namespace OpenMMBG

#endif
