"""Interoperation with the openmm package: the kernel plugin, and our
integrators where openmm's own wrappers return a plain openmm.Integrator."""
import functools
import os

import openmm

from . import _config
from . import openmmbg as _swig

KERNEL_NAMES = ("IntegrateLatentMetropolisStep", "IntegrateTSFParallelTemperingStep")
PLUGIN_FILE = "libOpenMMBGReference.so"


def kernelsAvailable(platform="Reference"):
    """True if `platform` (a name or an openmm.Platform) has the OpenMM-BG kernels."""
    if isinstance(platform, str):
        platform = openmm.Platform.getPlatformByName(platform)
    return platform.supportsKernels(list(KERNEL_NAMES))


def openmmPluginDirectory():
    """The folder `import openmm` loaded plugins from: OPENMM_PLUGIN_DIR if
    set, else the plugins folder beside the OpenMM library of the openmm
    package (Debian's, PyPI's wheel, conda), else OpenMM's compiled-in default."""
    folder = os.environ.get("OPENMM_PLUGIN_DIR")
    if folder is not None:
        return folder
    libraries = openmm.version.openmm_library_path  # empty for Debian's package
    if os.path.isdir(libraries):
        return os.path.join(libraries, "plugins")
    return openmm.Platform.getDefaultPluginsDirectory()


def loadPlugin():
    """Makes sure the kernel plugin is loaded: `import openmm` loads it from
    OPENMM_PLUGIN_DIR or OpenMM's plugin directory; otherwise it is loaded from
    where this package was built or installed with. Returns kernelsAvailable()."""
    if kernelsAvailable():
        return True
    path = os.path.join(_config.PLUGIN_DIR, PLUGIN_FILE)
    if os.path.exists(path):
        openmm.Platform.loadPluginLibrary(path)
    return kernelsAvailable()


def castIntegrator(integrator):
    """Returns `integrator` as its openmmbg class if its C++ object is one of
    ours but came back from openmm as a plain openmm.Integrator, else unchanged.
    If the plain proxy owned the C++ object, the returned proxy owns it instead."""
    ours = _swig.FlowMoveIntegrator
    if not isinstance(integrator, openmm.Integrator) or isinstance(integrator, ours):
        return integrator
    proxy = _swig._asBGIntegrator(integrator)
    if proxy is None:
        return integrator
    if integrator.thisown:
        integrator.thisown = False
        proxy.thisown = True
    return proxy


def installOpenMMHooks():
    """openmm's CompoundIntegrator.getIntegrator, XmlSerializer.deserialize and
    XmlSerializer.clone dispatch on OpenMM's own integrator classes only and
    would return our integrators as plain openmm.Integrator objects, whose
    OpenMM-BG methods are out of reach. These wrappers pass every result
    through castIntegrator(); results of other types are returned unchanged."""
    if getattr(openmm, "_openmmbgHooks", False):
        return
    getIntegrator = openmm.CompoundIntegrator.getIntegrator

    @functools.wraps(getIntegrator)
    def compoundGetIntegrator(self, *args):
        return castIntegrator(getIntegrator(self, *args))

    openmm.CompoundIntegrator.getIntegrator = compoundGetIntegrator
    for name in ("deserialize", "clone"):
        original = getattr(openmm.XmlSerializer, name)

        def serializerWrapper(*args, _original=original):
            return castIntegrator(_original(*args))

        functools.update_wrapper(serializerWrapper, original)
        setattr(openmm.XmlSerializer, name, staticmethod(serializerWrapper))
    openmm._openmmbgHooks = True
