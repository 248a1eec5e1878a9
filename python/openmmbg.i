// SWIG interface of the Python module openmmbg (package openmmbg, SWIG
// module openmmbg.openmmbg). The C++ classes are declared here by hand, each
// with the part of its API that makes sense from Python; methods that take
// LibTorch generators take integer seeds instead.
%module(package="openmmbg") openmmbg

%feature("autodoc", "1");

%{
#include "bg_python.h"

#include <OpenMMBG.h>
#include <OpenMMBGTools.h>

#include <ATen/CPUGeneratorImpl.h>

namespace bgpy {
inline at::Generator generatorFromSeed(uint64_t seed) {
    return at::make_generator<at::CPUGeneratorImpl>(seed);
}
}
%}

%init %{
    // NumPy's import_array() returns NULL on failure: right for the PyObject*
    // init function of SWIG up to 4.3, wrong for the int exec function
    // (multi-phase initialisation) of SWIG 4.4 on, which must return -1.
    if (_import_array() < 0) {
        PyErr_SetString(PyExc_ImportError, "openmmbg: numpy.core.multiarray failed to import");
#if SWIG_VERSION >= 0x040400
        return -1;
#else
        return NULL;
#endif
    }
%}

%include <stdint.i>
%include <std_string.i>
%include <std_vector.i>
%include <std_map.i>
%include <std_shared_ptr.i>

%template(IntVector) std::vector<int>;
%template(DoubleVector) std::vector<double>;
%template(StringMap) std::map<std::string, std::string>;
%naturalvar std::string;

// Keyword arguments (flow.sample(64, 300, seed=4)); default arguments are filled
// in by one wrapper, since SWIG cannot take keywords for overloaded wrappers.
%feature("kwargs");
%feature("compactdefaultargs");
// Overloads (FlowModel.load, the integrators' constructors) take positional arguments only.
#pragma SWIG nowarn=511
%naturalvar OpenMMBG::OpenMMEnergy::Options::platformProperties;

// OpenMM's System and Integrator, as the openmm module knows them.
%import "openmm_base.i"

// Every call translates C++ exceptions; the long ones run without the GIL so
// that other Python threads go on meanwhile (a progress callback takes it back).
%exception {
    try {
        $action
    } catch (...) {
        bgpy::translateCurrentException();
        SWIG_fail;
    }
}
%define BG_WITHOUT_GIL(method)
%exception method {
    try {
        bgpy::AllowThreads allowThreads;
        $action
    } catch (...) {
        bgpy::translateCurrentException();
        SWIG_fail;
    }
}
%enddef
BG_WITHOUT_GIL(OpenMMBG::FlowMoveIntegrator::step)
BG_WITHOUT_GIL(OpenMMBG::FlowMoveIntegrator::warmUp)
BG_WITHOUT_GIL(OpenMMBG::FlowTrainer::train)
BG_WITHOUT_GIL(OpenMMBG::FlowTrainer::testNLL)
BG_WITHOUT_GIL(OpenMMBG::annealFlow)
BG_WITHOUT_GIL(OpenMMBG::OpenMMEnergy::evaluate)

%include "bg_typemaps.i"

%inline %{
namespace bgpy {
/** Stores the class the module builds a result record `name` (FlowSample, EnergyBatch) with. */
void _registerRecordType(const std::string& name, PyObject* type) {
    Py_INCREF(type);
    PyObject*& slot = recordTypes()[name];
    Py_XDECREF(slot);
    slot = type;
}
}
%}

%include "bg_flows.i"
%include "bg_energy.i"
%include "bg_trainer.i"
%include "bg_integrators.i"
%include "bg_tools.i"
%include "bg_cglatent.i"
