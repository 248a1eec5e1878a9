#ifndef OPENMMBG_CHECKPOINT_H_
#define OPENMMBG_CHECKPOINT_H_

// Binary records of the integrators' state inside OpenMM Context checkpoints.
// Each record starts with a tag, so that a checkpoint of another integrator,
// version or ladder is refused with a clear message, never misread.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <openmm/OpenMMException.h>

#include <istream>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

namespace OpenMMBG {
namespace checkpoint {

template <class T>
void write(std::ostream& stream, const T& value) {
    static_assert(std::is_trivially_copyable<T>::value, "checkpoint::write takes plain values");
    stream.write(reinterpret_cast<const char*>(&value), sizeof(T));
}

template <class T>
T read(std::istream& stream) {
    static_assert(std::is_trivially_copyable<T>::value, "checkpoint::read takes plain values");
    T value;
    stream.read(reinterpret_cast<char*>(&value), sizeof(T));
    if (!stream)
        throw OpenMM::OpenMMException("Context checkpoint: the OpenMM-BG integrator's record is truncated");
    return value;
}

template <class T>
void writeVector(std::ostream& stream, const std::vector<T>& values) {
    write<int64_t>(stream, (int64_t) values.size());
    for (const T& value : values)
        write(stream, value);
}

/** Reads a vector written by writeVector; throws unless it has `expectedSize` elements. */
template <class T>
std::vector<T> readVector(std::istream& stream, size_t expectedSize, const std::string& what) {
    const int64_t size = read<int64_t>(stream);
    if (size != (int64_t) expectedSize)
        throw OpenMM::OpenMMException("Context checkpoint: " + what + " has " + std::to_string(size)
                                      + " entries where this integrator has " + std::to_string(expectedSize));
    std::vector<T> values(size);
    for (T& value : values)
        value = read<T>(stream);
    return values;
}

/** Writes a tag naming the record; readTag throws unless the same tag comes next. */
void writeTag(std::ostream& stream, const std::string& tag);
void readTag(std::istream& stream, const std::string& tag);

/** A float64 or bool tensor (or an undefined one), read back onto `device`. */
void writeTensor(std::ostream& stream, const at::Tensor& tensor);
at::Tensor readTensor(std::istream& stream, at::Device device);

/** The full state of a CPU random generator. */
void writeGenerator(std::ostream& stream, const at::Generator& generator);
void readGenerator(std::istream& stream, at::Generator& generator);

} // namespace checkpoint
} // namespace OpenMMBG

#endif
