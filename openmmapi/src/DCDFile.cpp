#include "openmmbg/tools/DCDFile.h"

#include <ATen/ATen.h>
#include <openmm/OpenMMException.h>

#include <cstdint>
#include <cstring>

using OpenMM::OpenMMException;

namespace OpenMMBG {

namespace {

// A DCD file is a sequence of Fortran records: int32 length, payload, int32 length.
class RecordReader {
public:
    RecordReader(const std::string& path) : path(path), in(path, std::ios::binary) {
        if (!in)
            throw OpenMMException("readDcd: cannot open '" + path + "'");
    }

    bool atEnd() {
        return in.peek() == std::char_traits<char>::eof();
    }

    /** The payload of the next record; `what` names it in errors. */
    std::vector<char> record(const std::string& what) {
        int32_t length = readInt(what);
        if (length < 0 || length > (1 << 30))
            fail(what + " has an invalid record length " + std::to_string(length));
        std::vector<char> payload(length);
        in.read(payload.data(), length);
        if (in.gcount() != length)
            fail(what + " is truncated");
        if (readInt(what) != length)
            fail(what + " has mismatched record markers");
        return payload;
    }

    [[noreturn]] void fail(const std::string& message) {
        throw OpenMMException("readDcd: '" + path + "': " + message + " (not a DCD file, or a damaged one)");
    }

private:
    int32_t readInt(const std::string& what) {
        int32_t value;
        in.read(reinterpret_cast<char*>(&value), 4);
        if (in.gcount() != 4)
            fail(what + " is truncated");
        return value;
    }

    std::string path;
    std::ifstream in;
};

int32_t intAt(const std::vector<char>& payload, size_t offset) {
    int32_t value;
    std::memcpy(&value, payload.data() + offset, 4);
    return value;
}

void appendInt(std::string& buffer, int32_t value) {
    buffer.append(reinterpret_cast<const char*>(&value), 4);
}

} // namespace

at::Tensor readDcd(const std::string& path, int expectedParticles) {
    RecordReader reader(path);
    std::vector<char> header = reader.record("the header");
    if (header.size() != 84 || std::memcmp(header.data(), "CORD", 4) != 0)
        reader.fail("the header is not a CORD record");
    // Control words follow "CORD"; word 10 tells whether frames carry a unit cell.
    const bool hasUnitCell = intAt(header, 4 + 4 * 10) != 0;
    reader.record("the title block");
    std::vector<char> atoms = reader.record("the atom count");
    if (atoms.size() != 4)
        reader.fail("the atom-count record has the wrong size");
    const int numParticles = intAt(atoms, 0);
    if (numParticles <= 0)
        reader.fail("the atom count is " + std::to_string(numParticles));
    if (expectedParticles >= 0 && numParticles != expectedParticles)
        throw OpenMMException("readDcd: '" + path + "' holds " + std::to_string(numParticles) + " atoms, expected "
                              + std::to_string(expectedParticles));
    std::vector<float> values;
    int64_t frames = 0;
    while (!reader.atEnd()) {
        const std::string frame = "frame " + std::to_string(frames);
        if (hasUnitCell && reader.record(frame + " (unit cell)").size() != 48)
            reader.fail(frame + " has a unit-cell record of the wrong size");
        for (const char* axis : {"x", "y", "z"}) {
            std::vector<char> payload = reader.record(frame + " (" + axis + ")");
            if (payload.size() != 4 * (size_t) numParticles)
                reader.fail(frame + " has " + std::to_string(payload.size() / 4) + " " + axis + " values, expected "
                            + std::to_string(numParticles));
            const float* data = reinterpret_cast<const float*>(payload.data());
            values.insert(values.end(), data, data + numParticles);
        }
        frames++;
    }
    // Stored per frame as x[N], y[N], z[N], in Angstrom.
    at::Tensor raw = at::from_blob(values.data(), {frames, 3, numParticles}, at::kFloat);
    return raw.transpose(1, 2).to(at::kDouble).mul(0.1).contiguous();
}

DcdWriter::DcdWriter(const std::string& path, int numParticles, int interval, double timestepPs)
    : path(path), out(path, std::ios::binary | std::ios::trunc), numParticles(numParticles), interval(interval) {
    if (!out)
        throw OpenMMException("DcdWriter: cannot write '" + path + "'");
    if (numParticles <= 0)
        throw OpenMMException("DcdWriter: need at least one particle");
    std::string header;
    appendInt(header, 84);
    header += "CORD";
    for (int32_t word : {0, 0, interval, 0, 0, 0, 0, 0, 0})
        appendInt(header, word);
    float dt = (float) (timestepPs / 0.04888821);  // AKMA time units, as OpenMM writes them
    header.append(reinterpret_cast<const char*>(&dt), 4);
    for (int32_t word : {0, 0, 0, 0, 0, 0, 0, 0, 0, 24, 84, 164, 2})
        appendInt(header, word);
    std::string title = "Created by OpenMM-BG";
    title.resize(160, ' ');
    header += title;
    for (int32_t word : {164, 4, numParticles, 4})
        appendInt(header, word);
    out.write(header.data(), (std::streamsize) header.size());
    out.flush();
}

void DcdWriter::writeFrame(const float* x, const float* y, const float* z) {
    const int32_t length = 4 * numParticles;
    for (const float* axis : {x, y, z}) {
        out.write(reinterpret_cast<const char*>(&length), 4);
        out.write(reinterpret_cast<const char*>(axis), length);
        out.write(reinterpret_cast<const char*>(&length), 4);
    }
    numFrames++;
    // Keep the frame count in the header current, as OpenMM does.
    std::streampos end = out.tellp();
    out.seekp(8);
    const int32_t count = numFrames;
    out.write(reinterpret_cast<const char*>(&count), 4);
    out.seekp(end);
    out.flush();
    if (!out)
        throw OpenMMException("DcdWriter: writing '" + path + "' failed");
}

void DcdWriter::write(const std::vector<OpenMM::Vec3>& positions) {
    if ((int) positions.size() != numParticles)
        throw OpenMMException("DcdWriter: got " + std::to_string(positions.size()) + " positions, expected "
                              + std::to_string(numParticles));
    std::vector<float> axes(3 * numParticles);
    for (int i = 0; i < numParticles; i++)
        for (int k = 0; k < 3; k++)
            axes[k * numParticles + i] = (float) (positions[i][k] * 10.0);
    writeFrame(axes.data(), axes.data() + numParticles, axes.data() + 2 * numParticles);
}

void DcdWriter::write(const at::Tensor& positions) {
    at::Tensor frames = positions.dim() == 2 ? positions.unsqueeze(0) : positions;
    if (frames.dim() != 3 || frames.size(1) != numParticles || frames.size(2) != 3)
        throw OpenMMException("DcdWriter: positions must have shape [frames, " + std::to_string(numParticles) + ", 3]");
    // Scaled in double, rounded once: the same bytes as write(std::vector<Vec3>).
    at::Tensor angstrom = (frames.detach().to(at::kCPU).to(at::kDouble) * 10.0).to(at::kFloat).transpose(1, 2).contiguous();
    for (int64_t f = 0; f < angstrom.size(0); f++) {
        const float* data = angstrom[f].data_ptr<float>();
        writeFrame(data, data + numParticles, data + 2 * numParticles);
    }
}

} // namespace OpenMMBG
