#ifndef OPENMMBG_PYTHON_H_
#define OPENMMBG_PYTHON_H_

// Helpers of the SWIG wrapper (included by the generated code only, so the
// NumPy C API lives in one translation unit): the GIL, exceptions, unit
// stripping and numpy <-> at::Tensor copies.

#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not included by ATen.h since PyTorch 2)
#include <openmm/Vec3.h>

#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bgpy {

/** Releases the GIL for the lifetime of the object (long C++ calls). */
class AllowThreads {
public:
    AllowThreads() : state(PyEval_SaveThread()) {}
    ~AllowThreads() { PyEval_RestoreThread(state); }
    AllowThreads(const AllowThreads&) = delete;
    AllowThreads& operator=(const AllowThreads&) = delete;

private:
    PyThreadState* state;
};

/** Drops a reference with the GIL held, whichever thread lets go of it last. */
inline void decrefWithGil(PyObject* object) {
    if (object == nullptr || !Py_IsInitialized())
        return;
    PyGILState_STATE gil = PyGILState_Ensure();
    Py_DECREF(object);
    PyGILState_Release(gil);
}

inline std::shared_ptr<PyObject> sharedReference(PyObject* object) {
    Py_XINCREF(object);
    return std::shared_ptr<PyObject>(object, decrefWithGil);
}

/**
 * A Python exception raised inside a callback that C++ called: carried
 * through the C++ frames as a C++ exception and raised again, unchanged, when
 * the wrapper returns to Python. Create and restore it with the GIL held.
 */
class PythonError : public std::exception {
public:
    /** Takes the error currently set in this thread. */
    static PythonError fetch() {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        PythonError error;
        error.type = std::shared_ptr<PyObject>(type, decrefWithGil);
        error.value = std::shared_ptr<PyObject>(value, decrefWithGil);
        error.traceback = std::shared_ptr<PyObject>(traceback, decrefWithGil);
        return error;
    }
    const char* what() const noexcept override { return "a Python callback raised an exception"; }
    void restore() const {
        Py_XINCREF(type.get());
        Py_XINCREF(value.get());
        Py_XINCREF(traceback.get());
        PyErr_Restore(type.get(), value.get(), traceback.get());
    }

private:
    std::shared_ptr<PyObject> type, value, traceback;
};

/** Raises openmm.OpenMMException (RuntimeError if openmm cannot be imported) with a message. */
inline void raiseOpenMMException(const char* message) {
    PyObject* exceptionClass = nullptr;
    if (PyObject* openmm = PyImport_ImportModule("openmm")) {
        exceptionClass = PyObject_GetAttrString(openmm, "OpenMMException");
        Py_DECREF(openmm);
    }
    if (exceptionClass == nullptr) {
        PyErr_Clear();
        exceptionClass = PyExc_RuntimeError;
        Py_INCREF(exceptionClass);
    }
    PyErr_SetString(exceptionClass, message);
    Py_DECREF(exceptionClass);
}

/**
 * Translates the C++ exception being handled into a Python error: a pending
 * Python error from a callback is raised again as it was, anything else
 * becomes openmm.OpenMMException with the C++ message. Call from a catch block.
 */
inline void translateCurrentException() {
    try {
        throw;
    } catch (const PythonError& error) {
        error.restore();
    } catch (const c10::Error& error) {
        raiseOpenMMException(error.what_without_backtrace());
    } catch (const std::exception& error) {
        raiseOpenMMException(error.what());
    } catch (...) {
        raiseOpenMMException("unknown C++ exception");
    }
}

inline bool isQuantity(PyObject* object) {
    return PyObject_HasAttrString(object, "value_in_unit") && PyObject_HasAttrString(object, "unit");
}

/**
 * A new reference to `object` expressed in openmm.unit.<unitName> if it is a
 * Quantity, else to `object` itself. Sets a Python error and returns null if
 * the units are incompatible or a Quantity is given where none is expected.
 */
inline PyObject* stripUnit(PyObject* object, const char* unitName, const char* what) {
    if (!isQuantity(object)) {
        Py_INCREF(object);
        return object;
    }
    if (unitName == nullptr) {
        PyErr_Format(PyExc_TypeError, "%s takes a plain number or array, not a Quantity", what);
        return nullptr;
    }
    PyObject* module = PyImport_ImportModule("openmm.unit");
    if (module == nullptr)
        return nullptr;
    PyObject* unit = PyObject_GetAttrString(module, unitName);
    Py_DECREF(module);
    if (unit == nullptr)
        return nullptr;
    PyObject* value = PyObject_CallMethod(object, "value_in_unit", "O", unit);
    Py_DECREF(unit);
    return value;
}

inline bool isNumberOrQuantity(PyObject* object) {
    return PyFloat_Check(object) || PyLong_Check(object) || PyNumber_Check(object) || isQuantity(object);
}

/** A number or a Quantity in openmm.unit.<unitName>, as a double. False with a Python error set on failure. */
inline bool toDouble(PyObject* object, const char* unitName, const char* what, double* result) {
    PyObject* value = stripUnit(object, unitName, what);
    if (value == nullptr)
        return false;
    double number = PyFloat_AsDouble(value);
    Py_DECREF(value);
    if (number == -1.0 && PyErr_Occurred()) {
        PyErr_Format(PyExc_TypeError, "%s must be a number (or a Quantity in %s)", what, unitName ? unitName : "-");
        return false;
    }
    *result = number;
    return true;
}

/** A sequence of numbers or Quantities, or a Quantity holding a sequence. */
inline bool toDoubleVector(PyObject* object, const char* unitName, const char* what, std::vector<double>* result) {
    PyObject* values = stripUnit(object, unitName, what);
    if (values == nullptr)
        return false;
    PyObject* sequence = PySequence_Fast(values, "expected a sequence of numbers");
    Py_DECREF(values);
    if (sequence == nullptr)
        return false;
    Py_ssize_t size = PySequence_Fast_GET_SIZE(sequence);
    result->resize(size);
    bool ok = true;
    for (Py_ssize_t i = 0; i < size && ok; i++)
        ok = toDouble(PySequence_Fast_GET_ITEM(sequence, i), unitName, what, &(*result)[i]);
    Py_DECREF(sequence);
    return ok;
}

inline bool isSequenceLike(PyObject* object) {
    return object == Py_None || PyArray_Check(object) || isQuantity(object)
           || (PySequence_Check(object) && !PyUnicode_Check(object) && !PyBytes_Check(object));
}

/**
 * Copies array-like input (numpy array, nested lists, a list of Vec3, or a
 * Quantity of those in openmm.unit.<unitName>) into a new float64 tensor.
 * None gives an undefined tensor where allowNone. False with a Python error set on failure.
 */
inline bool toTensor(PyObject* object, const char* unitName, bool allowNone, const char* what, at::Tensor* result) {
    if (object == Py_None) {
        if (!allowNone) {
            PyErr_Format(PyExc_TypeError, "%s must be an array, not None", what);
            return false;
        }
        *result = at::Tensor();
        return true;
    }
    if (PyUnicode_Check(object) || PyBytes_Check(object)) {
        PyErr_Format(PyExc_TypeError, "%s must be an array, not a string", what);
        return false;
    }
    PyObject* values = stripUnit(object, unitName, what);
    if (values == nullptr)
        return false;
    PyArrayObject* array = (PyArrayObject*) PyArray_FROMANY(values, NPY_DOUBLE, 0, 0, NPY_ARRAY_IN_ARRAY);
    Py_DECREF(values);
    if (array == nullptr)
        return false;
    std::vector<int64_t> shape(PyArray_DIMS(array), PyArray_DIMS(array) + PyArray_NDIM(array));
    *result = at::empty(shape, at::kDouble);
    std::memcpy(result->data_ptr<double>(), PyArray_DATA(array), sizeof(double) * (size_t) result->numel());
    Py_DECREF(array);
    return true;
}

/** A new numpy array holding a copy of the tensor (None if undefined). */
inline PyObject* toNumpy(const at::Tensor& tensor) {
    if (!tensor.defined())
        Py_RETURN_NONE;
    at::Tensor host = tensor.detach().to(at::kCPU).contiguous();
    int type;
    switch (host.scalar_type()) {
    case at::kDouble: type = NPY_DOUBLE; break;
    case at::kFloat: type = NPY_FLOAT; break;
    case at::kLong: type = NPY_INT64; break;
    case at::kInt: type = NPY_INT32; break;
    case at::kBool: type = NPY_BOOL; break;
    case at::kByte: type = NPY_UINT8; break;
    default: host = host.to(at::kDouble); type = NPY_DOUBLE;
    }
    std::vector<npy_intp> shape(host.sizes().begin(), host.sizes().end());
    PyObject* array = PyArray_SimpleNew((int) shape.size(), shape.data(), type);
    if (array == nullptr)
        return nullptr;
    std::memcpy(PyArray_DATA((PyArrayObject*) array), host.data_ptr(), host.nbytes());
    return array;
}

inline PyObject* toNumpy(const std::vector<OpenMM::Vec3>& positions) {
    at::Tensor tensor = at::empty({(int64_t) positions.size(), 3}, at::kDouble);
    double* data = tensor.data_ptr<double>();
    for (size_t i = 0; i < positions.size(); i++)
        for (int k = 0; k < 3; k++)
            data[3 * i + k] = positions[i][k];
    return toNumpy(tensor);
}

/** An (N, 3) array-like in nm (or a Quantity) as Vec3s. */
inline bool toVec3Vector(PyObject* object, const char* what, std::vector<OpenMM::Vec3>* result) {
    at::Tensor tensor;
    if (!toTensor(object, "nanometer", false, what, &tensor))
        return false;
    if (tensor.dim() != 2 || tensor.size(1) != 3) {
        PyErr_Format(PyExc_ValueError, "%s must have shape (N, 3)", what);
        return false;
    }
    result->resize(tensor.size(0));
    const double* data = tensor.data_ptr<double>();
    for (size_t i = 0; i < result->size(); i++)
        (*result)[i] = OpenMM::Vec3(data[3 * i], data[3 * i + 1], data[3 * i + 2]);
    return true;
}

/**
 * Result records (FlowSample, EnergyBatch): the package registers a
 * namedtuple class per name; without one, the fields come back as a dict.
 */
inline std::map<std::string, PyObject*>& recordTypes() {
    static std::map<std::string, PyObject*> types;
    return types;
}

/** Builds the record `name` from (field, new reference) pairs; steals the references. */
inline PyObject* makeRecord(const char* name, const std::vector<std::pair<const char*, PyObject*>>& fields) {
    PyObject* values = PyDict_New();
    bool ok = values != nullptr;
    for (const auto& field : fields) {
        if (field.second == nullptr)
            ok = false;
        else {
            if (ok && PyDict_SetItemString(values, field.first, field.second) != 0)
                ok = false;
            Py_DECREF(field.second);
        }
    }
    if (!ok) {
        Py_XDECREF(values);
        return nullptr;
    }
    auto type = recordTypes().find(name);
    if (type == recordTypes().end())
        return values;
    PyObject* empty = PyTuple_New(0);
    PyObject* record = PyObject_Call(type->second, empty, values);
    Py_DECREF(empty);
    Py_DECREF(values);
    return record;
}

} // namespace bgpy

#endif
