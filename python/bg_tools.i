// Toy systems with exact answers, file input/output and metrics.
// Systems are returned as openmm.System objects that Python owns.

%newobject OpenMMBG::DoubleWell::createSystem;
%newobject OpenMMBG::MultiDoubleWell::createSystem;
%newobject bgpy::loadSystemXml;
%template(PdbAtomVector) std::vector<OpenMMBG::PdbAtom>;

namespace OpenMMBG {

/** The 2D double well u = a/4 x^4 - b/2 x^2 + c x + d/2 y^2 in kT at unitTemperature (x, y in nm). */
struct DoubleWell {
    double a, b, c, d;
    double unitTemperature;
    double xEnergy(double x) const;
    /** Exact probabilities of the x-marginal's bins [edges[i], edges[i+1]) at T. */
    std::vector<double> marginalBinProbabilities(double temperature, const std::vector<double>& edges) const;
    /** Exact -ln(P(x > 0) / P(x < 0)) at T, in kT. */
    double freeEnergyDifference(double temperature) const;
};

%extend DoubleWell {
    /** One particle of mass `mass` (Da) feeling the potential, as an openmm.System. */
    OpenMM::System* createSystem(double mass = 1.0) const { return $self->createSystem(mass).release(); }
    /** Independent exact samples (count, 1, 3) in nm at T. */
    at::Tensor sampleExact(int64_t count, double temperature, uint64_t seed) const {
        at::Generator generator = bgpy::generatorFromSeed(seed);
        return $self->sampleExact(count, temperature, generator);
    }
}

/** The multi-dimensional double well of paper 001 (random couplings from a seed). */
struct MultiDoubleWell {
    int dim;
    double quadratic, quartic;
    double unitTemperature;
    static MultiDoubleWell random(int dim, uint64_t seed);
    int getNumParticles() const;
    std::vector<int> coordinateIndices() const;
    /** U(q) (B,) in kT at unitTemperature for q (B, dim). */
    at::Tensor energy(const at::Tensor& q) const;
};

%extend MultiDoubleWell {
    OpenMM::System* createSystem() const { return $self->createSystem().release(); }
    at::Tensor getLinear() const { return $self->linear; }
    at::Tensor getMixing() const { return $self->mixing; }
}

struct PdbAtom {
    std::string name;
    std::string residueName;
    int residueNumber;
    std::string element;
};

struct PdbStructure {
    int findAtom(const std::string& residueName, const std::string& atomName) const;
};

%extend PdbStructure {
    std::vector<PdbAtom> getAtoms() const { return $self->atoms; }
    /** Positions (N, 3) in nm. */
    PyObject* getPositions() const { return bgpy::toNumpy($self->positions); }
}

PdbStructure readPdb(const std::string& path);
void saveSystemXml(const OpenMM::System& system, const std::string& path);
/** Frames (F, N, 3) in nm of a DCD file (OpenMM's DCDReporter layout). */
at::Tensor readDcd(const std::string& path, int expectedParticles = -1);

/** Writes DCD files in the layout of OpenMM's DCDReporter. */
class DcdWriter {
public:
    DcdWriter(const std::string& path, int numParticles, int interval = 1, double timestepPs = 0.001);
    /** Appends frames (F, N, 3) or one frame (N, 3) in nm. */
    void write(const at::Tensor& positions);
    int getNumFrames() const;
};

/** A value with its statistical error. */
struct Estimate {
    double value;
    double error;
};

/** dF_phi from independent chains (see independentChainsPhiFreeEnergyDifference). */
struct ChainsEstimate {
    Estimate estimate;
    std::vector<double> perChain;
    double agreement;
};

double kishEffectiveSampleSize(const at::Tensor& logWeights, double clipFraction = 0.0);
double klEstimateFromLogWeights(const at::Tensor& logWeights);
/** dF = -ln(P(phi > 0) / P(phi < 0)) in kT from a time series, error by block averaging. */
Estimate phiFreeEnergyDifference(const at::Tensor& phi, int blocks = 20);
Estimate blockAverage(const at::Tensor& series, int blocks = 20);
double integratedAutocorrelationTime(const at::Tensor& series);
at::Tensor ramachandranHistogram(const at::Tensor& phi, const at::Tensor& psi, int bins = 64,
                                 const at::Tensor& weights = at::Tensor());
double histogramKL(const at::Tensor& reference, const at::Tensor& model, double eps = 1e-10);
/** dF_phi of independent samples with importance log-weights (None: equal weights); delta-method error of the weighted fraction. */
Estimate weightedPhiFreeEnergyDifference(const at::Tensor& phi, const at::Tensor& optionalLogWeights = at::Tensor());
/** KL(reference || model) of 64 x 64 Ramachandran histograms, the model's samples weighted by exp(log-weights) if given. */
double ramachandranKL(const at::Tensor& referencePhi, const at::Tensor& referencePsi, const at::Tensor& phi,
                      const at::Tensor& psi, const at::Tensor& optionalLogWeights = at::Tensor());

}

%extend OpenMMBG::Estimate {
    %pythoncode %{
        def __repr__(self):
            return f"Estimate(value={self.value!r}, error={self.error!r})"

        def __iter__(self):
            return iter((self.value, self.error))
    %}
}

%{
namespace bgpy {
/** The arrays of a Python sequence as tensors; `what` names the sequence, `each` its items in errors. */
std::vector<at::Tensor> tensorsOf(PyObject* sequence, const char* what, const char* each) {
    if (!PySequence_Check(sequence))
        throw std::invalid_argument(std::string(what) + " must be a sequence of arrays");
    std::vector<at::Tensor> tensors;
    for (Py_ssize_t i = 0; i < PySequence_Size(sequence); i++) {
        PyObject* item = PySequence_GetItem(sequence, i);
        at::Tensor tensor;
        const bool converted = bgpy::toTensor(item, nullptr, false, each, &tensor);
        Py_XDECREF(item);
        if (!converted)
            throw bgpy::PythonError::fetch();
        tensors.push_back(tensor);
    }
    return tensors;
}
}
%}

%inline %{
namespace bgpy {
/**
 * dF = -ln(P(phi > 0) / P(phi < 0)) in kT from independent chains of equal
 * length: `chains` is a sequence of phi series (rad). The error comes from
 * the chains' spread (68.3% Student-t interval); `agreement` below 0.01
 * says they disagree beyond their own block errors (`blocks` per chain).
 */
OpenMMBG::ChainsEstimate independentChainsPhiFreeEnergyDifference(PyObject* chains, int blocks = 20) {
    return OpenMMBG::independentChainsPhiFreeEnergyDifference(
        bgpy::tensorsOf(chains, "independentChainsPhiFreeEnergyDifference: chains", "each chain"), blocks);
}

/**
 * The same from independent sets of weighted samples: `sets` a sequence of
 * phi arrays (rad), `logWeights` one array of importance log-weights per set;
 * each set's weighted fraction and delta-method error take a chain's place.
 */
OpenMMBG::ChainsEstimate independentSetsPhiFreeEnergyDifference(PyObject* sets, PyObject* logWeights) {
    return OpenMMBG::independentSetsPhiFreeEnergyDifference(
        bgpy::tensorsOf(sets, "independentSetsPhiFreeEnergyDifference: sets", "each set"),
        bgpy::tensorsOf(logWeights, "independentSetsPhiFreeEnergyDifference: logWeights", "each set's log-weights"));
}

/** Loads a System written by OpenMM's XmlSerializer. */
OpenMM::System* loadSystemXml(const std::string& path) {
    return OpenMMBG::loadSystemXml(path).release();
}

/** Dihedral angles (B,) in rad of configurations x (B, N, 3) for four atom indices. */
at::Tensor dihedralAngles(const at::Tensor& x, const std::vector<int>& atoms) {
    if (atoms.size() != 4)
        throw std::invalid_argument("dihedralAngles: expected four atom indices");
    return OpenMMBG::dihedralAngles(x, {atoms[0], atoms[1], atoms[2], atoms[3]});
}

/** The phi and psi atoms (two lists of four indices) of residue `residueName` in a PDB structure. */
PyObject* backboneDihedrals(const OpenMMBG::PdbStructure& structure, const std::string& residueName = "ALA") {
    OpenMMBG::BackboneDihedrals dihedrals = OpenMMBG::BackboneDihedrals::find(structure, residueName);
    const auto& phi = dihedrals.phi;
    const auto& psi = dihedrals.psi;
    return Py_BuildValue("([iiii][iiii])", phi[0], phi[1], phi[2], phi[3], psi[0], psi[1], psi[2], psi[3]);
}
}
%}

%pythoncode %{
import collections as _collections
import enum as _enum

FlowSample = _collections.namedtuple("FlowSample", "x gamma latent logq logJ inDomain")
FlowSample.__doc__ = """Flow samples as numpy arrays: x (B, N, 3) nm, gamma and latent (B, d),
logq and logJ (B,) nats, inDomain (B,) bool."""
EnergyBatch = _collections.namedtuple("EnergyBatch", "reducedEnergy potentialEnergy forces finite")
EnergyBatch.__doc__ = """OpenMMEnergy.evaluate() results as numpy arrays: reducedEnergy (B,) kT,
potentialEnergy (B,) kJ/mol, forces (B, N, 3) kT/nm, finite (B,) bool."""
_registerRecordType("FlowSample", FlowSample)
_registerRecordType("EnergyBatch", EnergyBatch)


class MoveKind(_enum.IntEnum):
    """The two kinds of flow moves."""
    RandomWalk = MoveKind_RandomWalk
    Independence = MoveKind_Independence
%}
