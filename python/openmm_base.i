// What openmmbg.i needs to know about Debian's `openmm` module, which ships no
// SWIG interface files. It is only ever %import-ed: SWIG then generates no
// wrappers for these classes, but
//  - derives our integrators' proxies from openmm.openmm.Integrator (the
//    module and package names below must be openmm's), so isinstance checks,
//    getIntegrationForceGroups() and openmm's own XmlSerializer see them as
//    Integrators;
//  - names the C++ types exactly as openmm's module does (_p_OpenMM__System,
//    _p_OpenMM__Integrator), so both modules, built with SWIG 4 and the same
//    default type table (swig_runtime_data4), resolve them to one shared type
//    entry: our module registers the Integrator subclass casts there, and
//    openmm.Context and CompoundIntegrator accept our integrators.
%module(package="openmm") openmm

namespace OpenMM {

class System;

// Every public method of OpenMM::Integrator, mirroring the base class that
// openmm.openmm.Integrator wraps (the proxies inherit openmm's wrappers).
class Integrator {
public:
    virtual ~Integrator();
    virtual double getStepSize() const;
    virtual void setStepSize(double size);
    virtual double getConstraintTolerance() const;
    virtual void setConstraintTolerance(double tol);
    virtual void step(int steps) = 0;
    virtual int getIntegrationForceGroups() const;
    virtual void setIntegrationForceGroups(int groups);
};

}
