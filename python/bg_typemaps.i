// Conversions at the Python boundary (helpers in bg_python.h):
//  - at::Tensor arguments take anything numpy can turn into a float64 array
//    (arrays, nested lists, lists of Vec3), copied; results come back as new
//    numpy arrays. Python torch tensors are not passed through: use .numpy().
//  - Positions and temperatures also take openmm.unit Quantities, converted
//    to nm and K; plain numbers are taken to be in those units already.

namespace at { class Tensor; }

// Tensors: any array-like; None is refused unless the argument is optional.
// BG_TENSOR_ARGUMENT(name, unit or nullptr, None allowed) sets the rule for
// arguments of that name; the unnamed typemap covers all others.
%typemap(in) const at::Tensor& (at::Tensor temp) {
    if (!bgpy::toTensor($input, nullptr, false, "$1_name", &temp)) SWIG_fail;
    $1 = &temp;
}
%define BG_TENSOR_ARGUMENT(name, unit, allowNone)
%typemap(in) const at::Tensor& name (at::Tensor temp) {
    if (!bgpy::toTensor($input, unit, allowNone, "$1_name", &temp)) SWIG_fail;
    $1 = &temp;
}
%enddef
BG_TENSOR_ARGUMENT(x, "nanometer", false)
BG_TENSOR_ARGUMENT(positions, "nanometer", false)
BG_TENSOR_ARGUMENT(frames, "nanometer", false)
BG_TENSOR_ARGUMENT(optionalFrames, "nanometer", true)
BG_TENSOR_ARGUMENT(external, "nanometer", true)
BG_TENSOR_ARGUMENT(canonicalValues, "nanometer", true)
BG_TENSOR_ARGUMENT(momenta, nullptr, true)
BG_TENSOR_ARGUMENT(weights, nullptr, true)
BG_TENSOR_ARGUMENT(optionalLogWeights, nullptr, true)
%typemap(typecheck, precedence=SWIG_TYPECHECK_DOUBLE_ARRAY) const at::Tensor& {
    $1 = bgpy::isSequenceLike($input) ? 1 : 0;
}
%typemap(out) at::Tensor {
    $result = bgpy::toNumpy($1);
    if (!$result) SWIG_fail;
}
%typemap(out) const at::Tensor& {
    $result = bgpy::toNumpy(*$1);
    if (!$result) SWIG_fail;
}
%typemap(out) std::pair<at::Tensor, at::Tensor> {
    $result = Py_BuildValue("(NN)", bgpy::toNumpy($1.first), bgpy::toNumpy($1.second));
    if (!$result) SWIG_fail;
}

// Temperatures (K): numbers or Quantities, by parameter (and member) name.
%typemap(in) double temperature, double referenceTemperature, double lowest, double highest,
             double unitTemperature, double temperingStart {
    if (!bgpy::toDouble($input, "kelvin", "$1_name", &$1)) SWIG_fail;
}
%typemap(typecheck, precedence=SWIG_TYPECHECK_DOUBLE) double temperature, double referenceTemperature,
             double lowest, double highest, double unitTemperature, double temperingStart {
    $1 = bgpy::isNumberOrQuantity($input) ? 1 : 0;
}
%typemap(in) const std::vector<double>& temperatures (std::vector<double> temp) {
    if (!bgpy::toDoubleVector($input, "kelvin", "$1_name", &temp)) SWIG_fail;
    $1 = &temp;
}
%typemap(freearg) const std::vector<double>& temperatures ""
%typemap(typecheck, precedence=SWIG_TYPECHECK_DOUBLE_ARRAY) const std::vector<double>& temperatures {
    $1 = bgpy::isSequenceLike($input) && $input != Py_None ? 1 : 0;
}

// Objects the C++ API returns by const reference into another object come
// back as copies, so a Python handle never outlives what it points into.
// (FlowModel copies share their networks, as in C++.)
%typemap(out) const OpenMMBG::FlowModel& {
    $result = SWIG_NewPointerObj(new OpenMMBG::FlowModel(*$1), $descriptor(OpenMMBG::FlowModel*), SWIG_POINTER_OWN);
}
// An integrator's flow comes back as a clone with its own weights: training
// it must not change the integrator, whose flow is its own copy.
%typemap(out) const OpenMMBG::FlowModel& getFlowModel {
    $result = SWIG_NewPointerObj(new OpenMMBG::FlowModel($1->clone()), $descriptor(OpenMMBG::FlowModel*),
                                 SWIG_POINTER_OWN);
}
