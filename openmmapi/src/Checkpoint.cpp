#include "openmmbg/internal/Checkpoint.h"

#include <ATen/ops/empty.h>

namespace OpenMMBG {
namespace checkpoint {

void writeTag(std::ostream& stream, const std::string& tag) {
    const std::string text = "OpenMMBG:" + tag;
    write<int64_t>(stream, (int64_t) text.size());
    stream.write(text.data(), (std::streamsize) text.size());
}

void readTag(std::istream& stream, const std::string& tag) {
    const std::string expected = "OpenMMBG:" + tag;
    std::string found;
    int64_t size = 0;
    stream.read(reinterpret_cast<char*>(&size), sizeof(size));
    if (stream && size == (int64_t) expected.size()) {
        found.resize(size);
        stream.read(&found[0], size);
    }
    if (!stream || found != expected)
        throw OpenMM::OpenMMException("Context checkpoint: expected the record '" + tag
                                      + "' of an OpenMM-BG integrator; the checkpoint was written with another "
                                      "integrator or version");
}

void writeTensor(std::ostream& stream, const at::Tensor& tensor) {
    write<int8_t>(stream, !tensor.defined() ? 0 : tensor.scalar_type() == at::kBool ? 2 : 1);
    if (!tensor.defined())
        return;
    if (tensor.scalar_type() != at::kBool && tensor.scalar_type() != at::kDouble)
        throw OpenMM::OpenMMException("Context checkpoint: only float64 and bool tensors are recorded");
    const at::Tensor values = tensor.to(at::kCPU).contiguous();
    writeVector(stream, values.sizes().vec());
    stream.write(reinterpret_cast<const char*>(values.data_ptr()), (std::streamsize) values.nbytes());
}

at::Tensor readTensor(std::istream& stream, at::Device device) {
    const int8_t kind = read<int8_t>(stream);
    if (kind == 0)
        return at::Tensor();
    if (kind != 1 && kind != 2)
        throw OpenMM::OpenMMException("Context checkpoint: a recorded tensor is corrupt");
    const int64_t dims = read<int64_t>(stream);
    if (dims < 0 || dims > 8)
        throw OpenMM::OpenMMException("Context checkpoint: a recorded tensor is corrupt");
    std::vector<int64_t> sizes(dims);
    int64_t count = 1;
    for (int64_t& size : sizes) {
        size = read<int64_t>(stream);
        if (size < 0 || size > (1 << 28))
            throw OpenMM::OpenMMException("Context checkpoint: a recorded tensor is corrupt");
        count *= size;
    }
    if (count > (1 << 28))
        throw OpenMM::OpenMMException("Context checkpoint: a recorded tensor is corrupt");
    at::Tensor values = at::empty(sizes, kind == 2 ? at::kBool : at::kDouble);
    stream.read(reinterpret_cast<char*>(values.data_ptr()), (std::streamsize) values.nbytes());
    if (!stream)
        throw OpenMM::OpenMMException("Context checkpoint: the OpenMM-BG integrator's record is truncated");
    return values.to(device);
}

void writeGenerator(std::ostream& stream, const at::Generator& generator) {
    at::Tensor state = generator.get_state().contiguous();
    write<int64_t>(stream, state.numel());
    stream.write(reinterpret_cast<const char*>(state.data_ptr<uint8_t>()), state.numel());
}

void readGenerator(std::istream& stream, at::Generator& generator) {
    const int64_t bytes = read<int64_t>(stream);
    if (bytes <= 0 || bytes > (1 << 20))
        throw OpenMM::OpenMMException("Context checkpoint: the random generator's state is corrupt");
    at::Tensor state = at::empty({bytes}, at::kByte);
    stream.read(reinterpret_cast<char*>(state.data_ptr<uint8_t>()), bytes);
    if (!stream)
        throw OpenMM::OpenMMException("Context checkpoint: the OpenMM-BG integrator's record is truncated");
    generator.set_state(state);
}

} // namespace checkpoint
} // namespace OpenMMBG
