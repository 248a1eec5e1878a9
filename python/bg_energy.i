// The energy bridge. Held by shared_ptr on both sides, so that a FlowTrainer
// given the bridge keeps it alive after Python lets go of it.

%shared_ptr(OpenMMBG::OpenMMEnergy)

%feature("novaluewrapper") OpenMMBG::EnergyBatch;
%typemap(out) OpenMMBG::EnergyBatch {
    $result = bgpy::makeRecord("EnergyBatch", {{"reducedEnergy", bgpy::toNumpy($1.reducedEnergy)},
                                               {"potentialEnergy", bgpy::toNumpy($1.potentialEnergy)},
                                               {"forces", bgpy::toNumpy($1.forces)},
                                               {"finite", bgpy::toNumpy($1.finite)}});
    if (!$result) SWIG_fail;
}

%feature("flatnested") OpenMMBG::OpenMMEnergy::Options;
%rename(OpenMMEnergyOptions) OpenMMBG::OpenMMEnergy::Options;

namespace OpenMMBG {

struct EnergyBatch;

/**
 * Reduced energies U/kT and forces (kT/nm) of any non-periodic System for
 * batches of configurations (B, N, 3) in nm, through a pool of Contexts.
 */
class OpenMMEnergy {
public:
    struct Options {
        std::string platform;
        std::map<std::string, std::string> platformProperties;
        int numWorkers;
        double energyCut;
        double maxForce;
        bool rejectNonFiniteInput;
    };
    OpenMMEnergy(const OpenMM::System& system, double temperature,
                 const Options& options = OpenMMBG::OpenMMEnergy::Options());

    /** EnergyBatch(reducedEnergy (B,), potentialEnergy (B,) kJ/mol, forces (B, N, 3) kT/nm, finite (B,) bool). */
    EnergyBatch evaluate(const at::Tensor& positions) const;

    int getNumParticles() const;
    double getTemperature() const;
    void setTemperature(double temperature);
    std::string getPlatformName() const;
    int getNumWorkers() const;
};

}
