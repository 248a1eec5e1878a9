// The integrators, subclasses of openmm.Integrator (see openmm_base.i), and
// their move statistics. Replica positions come back as (N, 3) numpy arrays
// in nm; temperatures are plain numbers in K.

%nodefaultctor OpenMMBG::FlowMoveIntegrator;
%nodefaultctor OpenMMBG::LatentMetropolisIntegrator;
%nodefaultctor OpenMMBG::TSFParallelTemperingIntegrator;

namespace OpenMMBG {

enum class MoveKind { RandomWalk = 0, Independence = 1 };

/** Proposed and accepted flow moves, and rejections before the energy test. */
struct MoveStatistics {
    long long outOfDomain;
    long long stereoFlips;
    long long failedEnergies;
    long long getProposed(MoveKind kind) const;
    long long getAccepted(MoveKind kind) const;
    double acceptanceRate(MoveKind kind) const;
    double acceptanceRate() const;
};

/**
 * What both flow-move integrators share: flow moves (latent random walk or
 * independence proposals) with an exact Metropolis test. The integrator keeps
 * its own copy of the flow.
 */
class FlowMoveIntegrator : public OpenMM::Integrator {
public:
    const FlowModel& getFlowModel() const;
    double getLatentStepSize() const;
    void setLatentStepSize(double sigma);
    double getIndependenceProbability() const;
    void setIndependenceProbability(double probability);
    int getIndependenceBlockSize() const;
    void setIndependenceBlockSize(int size);
    int getRandomNumberSeed() const;
    void setRandomNumberSeed(int seed);
    bool getCheckStereochemistry() const;
    void setCheckStereochemistry(bool check);
    void step(int steps);
    void warmUp(int steps, double targetAcceptance = 0.3);
    void resetStatistics();
};

/** Boltzmann-generator Monte Carlo at one temperature as an OpenMM Integrator. */
class LatentMetropolisIntegrator : public FlowMoveIntegrator {
public:
    LatentMetropolisIntegrator(const FlowModel& model, double temperature, double latentStepSize,
                               double independenceProbability = 0.0);
    LatentMetropolisIntegrator(const std::string& flowFile, double temperature, double latentStepSize,
                               double independenceProbability = 0.0);
    ~LatentMetropolisIntegrator();

    double getTemperature() const;
    void setTemperature(double temperature);
    MoveStatistics getStatistics() const;
    double getAcceptanceRate(MoveKind kind) const;
    double getAcceptanceRate() const;
};

/** Parallel tempering on one temperature-steerable flow; the Context holds replica 0 (T_1). */
class TSFParallelTemperingIntegrator : public FlowMoveIntegrator {
public:
    TSFParallelTemperingIntegrator(const FlowModel& model, const std::vector<double>& temperatures,
                                   double latentStepSize, double independenceProbability = 0.0);
    TSFParallelTemperingIntegrator(const std::string& flowFile, const std::vector<double>& temperatures,
                                   double latentStepSize, double independenceProbability = 0.0);
    ~TSFParallelTemperingIntegrator();

    /** count >= 2 temperatures spaced geometrically from lowest to highest (K). */
    static std::vector<double> geometricLadder(double lowest, double highest, int count);

    int getNumReplicas() const;
    const std::vector<double>& getTemperatures() const;
    double getTemperature(int replica) const;
    int getFlowMovesPerStep() const;
    void setFlowMovesPerStep(int moves);

    double getReplicaPotentialEnergy(int replica) const;
    int getWalkerAtReplica(int replica) const;
    MoveStatistics getMoveStatistics(int replica) const;
    long long getExchangeAttempts(int pair) const;
    long long getExchangeAcceptances(int pair) const;
    double getExchangeAcceptanceRate(int pair) const;
    long long getNumRoundTrips() const;
};

%extend TSFParallelTemperingIntegrator {
    /** Positions (N, 3) in nm of the replica at temperature index `replica` (needs a Context). */
    PyObject* getReplicaPositions(int replica) const {
        return bgpy::toNumpy($self->getReplicaPositions(replica));
    }
    /** Sets a replica's positions ((N, 3) in nm, a list of Vec3, or a Quantity; needs a Context); replica 0 is the Context's. */
    void setReplicaPositions(int replica, PyObject* positions) {
        std::vector<OpenMM::Vec3> values;
        if (!bgpy::toVec3Vector(positions, "positions", &values))
            throw bgpy::PythonError::fetch();
        $self->setReplicaPositions(replica, values);
    }
}

}

%inline %{
namespace bgpy {
/**
 * Our proxy for an Integrator of one of our classes that openmm's module
 * returned as a plain openmm.Integrator (not owning it), or None.
 */
PyObject* _asBGIntegrator(OpenMM::Integrator* integrator) {
    if (auto* latent = dynamic_cast<OpenMMBG::LatentMetropolisIntegrator*>(integrator))
        return SWIG_NewPointerObj(latent, SWIGTYPE_p_OpenMMBG__LatentMetropolisIntegrator, 0);
    if (auto* tempering = dynamic_cast<OpenMMBG::TSFParallelTemperingIntegrator*>(integrator))
        return SWIG_NewPointerObj(tempering, SWIGTYPE_p_OpenMMBG__TSFParallelTemperingIntegrator, 0);
    Py_RETURN_NONE;
}
}
%}
