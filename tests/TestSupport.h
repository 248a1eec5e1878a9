#ifndef OPENMMBG_TESTSUPPORT_H_
#define OPENMMBG_TESTSUPPORT_H_

// Shared fixtures of the GoogleTest suites: the alanine dipeptide data and
// random configurations near it.

#include "openmmbg/MoleculeIO.h"

#include <ATen/ATen.h>
#include <openmm/System.h>

#include <memory>
#include <string>

namespace OpenMMBG {
namespace testing {

/** Path of a file in examples/alanine_dipeptide/data. */
std::string dataFile(const std::string& name);

struct AlanineDipeptide {
    std::unique_ptr<OpenMM::System> system;
    PdbStructure structure;  // minimized positions and atom names
    /** The PDB positions as a [1, 22, 3] float64 tensor in nm. */
    at::Tensor positions() const;
};

AlanineDipeptide loadAlanineDipeptide();

/** `count` copies of the frame [1, N, 3] with Gaussian noise of `sigma` nm on every coordinate. */
at::Tensor perturbedFrames(const at::Tensor& frame, int count, double sigma, uint64_t seed);

} // namespace testing
} // namespace OpenMMBG

#endif
