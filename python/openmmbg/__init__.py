"""OpenMM-BG: Boltzmann generators for OpenMM.

Normalizing flows (LibTorch, C++) trained on a molecule and used as exact
Monte Carlo moves inside ordinary OpenMM simulations:

    import openmm, openmmbg
    flow = openmmbg.FlowModel.load("flow.pt", system)
    integrator = openmmbg.LatentMetropolisIntegrator(flow, 300*openmm.unit.kelvin, 0.5, 0.1)
    context = openmm.Context(system, integrator)

Units: arguments that are temperatures or positions take openmm.unit
Quantities or plain numbers in K and nm; results are plain numbers and numpy
arrays in K, nm, kJ/mol, and reduced energies in kT.
"""
# openmm first: its module defines the SWIG types of System and Integrator
# that ours share, and importing it loads the plugins from OPENMM_PLUGIN_DIR
# (or OpenMM's plugin directory).
import openmm as _openmm
import warnings as _warnings

from . import _config
from .openmmbg import (
    ARDPrior,
    CGLaplaceOptions,
    CGLaplacePosterior,
    CGLatentModel,
    CGModelConfig,
    CGPhysicsOptions,
    CGPhysicsProgress,
    CGPhysicsSummary,
    CGTrainingOptions,
    CGTrainingProgress,
    CGTrainingSummary,
    DcdWriter,
    DoubleWell,
    EnergyBatch,
    ChainsEstimate,
    Estimate,
    FlowConfig,
    FlowModel,
    AnnealingSchedule,
    AnnealingStep,
    FlowSample,
    FlowTrainer,
    LatentMetropolisIntegrator,
    MoveKind,
    MoveKind_Independence,
    MoveKind_RandomWalk,
    MoveStatistics,
    MultiDoubleWell,
    OpenMMEnergy,
    OpenMMEnergyOptions,
    PdbAtom,
    PdbStructure,
    TrainerOptions,
    TrainingProgress,
    TrainingStage,
    TrainingSummary,
    TSFParallelTemperingIntegrator,
    FlowMoveIntegrator,
    annealFlow,
    backboneDihedrals,
    blockAverage,
    dihedralAngles,
    histogramKL,
    independentChainsPhiFreeEnergyDifference,
    independentSetsPhiFreeEnergyDifference,
    integratedAutocorrelationTime,
    kishEffectiveSampleSize,
    klEstimateFromLogWeights,
    loadSystemXml,
    phiFreeEnergyDifference,
    radiusOfGyration,
    ramachandranHistogram,
    ramachandranKL,
    readDcd,
    readPdb,
    saveSystemXml,
    trainCGLatentModel,
    trainCGLatentModelFromEnergy,
    weightedPhiFreeEnergyDifference,
)
from ._compat import castIntegrator, kernelsAvailable, loadPlugin
from .torch_energy import torch_reduced_energy

__version__ = _config.VERSION

OpenMMEnergy.Options = OpenMMEnergyOptions


def _fieldNames(cls):
    return [name for name, value in vars(cls).items()
            if isinstance(value, property) and not name.startswith("_") and name != "thisown"]


def _withFields(cls, keywords=True):
    """Gives a wrapped C++ struct keyword construction (FlowConfig(numBlocks=2)),
    a readable repr and asdict()."""
    fields = _fieldNames(cls)
    swigInit = cls.__init__

    def __init__(self, **values):
        swigInit(self)
        for name, value in values.items():
            if name not in fields:
                raise TypeError(f"{cls.__name__} has no field {name!r}; fields: {', '.join(fields)}")
            setattr(self, name, value)

    def asdict(self):
        return {name: getattr(self, name) for name in fields}

    def __repr__(self):
        return f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in asdict(self).items())})"

    if keywords:
        __init__.__doc__ = f"{cls.__name__}(**fields): fields {', '.join(fields)}"
        cls.__init__ = __init__
    cls.asdict = asdict
    cls.__repr__ = __repr__


CGLaplaceOptions.curvature = property(CGLaplaceOptions._getCurvature, CGLaplaceOptions._setCurvature,
                                      doc='"outputLayer" (exact output layer, optional diagonal hidden layers) '
                                          'or "kronecker" (every layer, Kronecker-factored)')
for _cls in (FlowConfig, TrainingStage, TrainerOptions, OpenMMEnergyOptions, DoubleWell, PdbAtom, AnnealingSchedule,
             CGModelConfig, ARDPrior, CGTrainingOptions, CGLaplaceOptions, CGPhysicsOptions):
    _withFields(_cls)
for _cls in (TrainingProgress, TrainingSummary, AnnealingStep, CGTrainingProgress, CGTrainingSummary,
             CGPhysicsProgress, CGPhysicsSummary):
    _withFields(_cls, keywords=False)
TrainingSummary.asdict = lambda self: {"last": self.last.asdict(), "finalTemperature": self.finalTemperature,
                                       "seconds": self.seconds}
AnnealingStep.asdict = lambda self: {"temperature": self.temperature, "essFraction": self.essFraction,
                                     "zeroWeightFraction": self.zeroWeightFraction, "training": self.training.asdict()}


def _moveStatisticsAsDict(self):
    values = {}
    for kind in MoveKind:
        values[f"proposed{kind.name}"] = self.getProposed(kind)
        values[f"accepted{kind.name}"] = self.getAccepted(kind)
    for name in ("outOfDomain", "stereoFlips", "failedEnergies"):
        values[name] = getattr(self, name)
    values["acceptanceRate"] = self.acceptanceRate()
    return values


MoveStatistics.asdict = _moveStatisticsAsDict
MoveStatistics.__repr__ = lambda self: f"MoveStatistics({_moveStatisticsAsDict(self)})"
del _cls

_compat.installOpenMMHooks()
try:
    if not loadPlugin():
        _warnings.warn("OpenMM-BG: the kernel plugin is not loaded, so Contexts with our integrators "
                       f"cannot be created; looked in OPENMM_PLUGIN_DIR and {_config.PLUGIN_DIR}")
except Exception as _error:  # a broken plugin file must not make the module unimportable
    _warnings.warn(f"OpenMM-BG: loading the kernel plugin failed: {_error}")
