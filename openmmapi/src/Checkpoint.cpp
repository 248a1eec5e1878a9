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
