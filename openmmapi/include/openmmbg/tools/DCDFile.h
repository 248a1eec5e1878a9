#ifndef OPENMMBG_DCDFILE_H_
#define OPENMMBG_DCDFILE_H_

#include <ATen/core/Tensor.h>
#include <openmm/Vec3.h>

#include <fstream>
#include <string>
#include <vector>

namespace OpenMMBG {

/**
 * Reads a DCD trajectory as written by OpenMM's DCDReporter (CHARMM format,
 * little-endian, positions in Angstrom, optional unit-cell records) and
 * returns its frames as a float64 tensor [F, N, 3] in nm. Throws an
 * OpenMMException for a missing, truncated or corrupt file, or if
 * expectedParticles >= 0 and the file holds another number of atoms.
 */
at::Tensor readDcd(const std::string& path, int expectedParticles = -1);

/** Writes DCD files in the layout of OpenMM's DCDReporter, so either side can read the other's. */
class DcdWriter {
public:
    /**
     * @param interval     steps between frames (recorded in the header)
     * @param timestepPs   MD time step in ps (recorded in the header)
     */
    DcdWriter(const std::string& path, int numParticles, int interval = 1, double timestepPs = 0.001);
    /** Appends a frame of positions in nm. */
    void write(const std::vector<OpenMM::Vec3>& positions);
    /** Appends frames [F, N, 3] or one frame [N, 3] in nm. */
    void write(const at::Tensor& positions);
    int getNumFrames() const { return numFrames; }

private:
    void writeFrame(const float* x, const float* y, const float* z);

    std::string path;
    std::ofstream out;
    int numParticles, interval, numFrames = 0;
};

} // namespace OpenMMBG

#endif
