#ifndef OPENMMBG_TESTSUPPORT_H_
#define OPENMMBG_TESTSUPPORT_H_

// Shared fixtures of the GoogleTest suites: the alanine dipeptide data and
// random configurations near it.

#include "openmmbg/InternalCoordinates.h"
#include "openmmbg/tools/MoleculeIO.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <openmm/System.h>

#include <functional>
#include <memory>
#include <string>

namespace OpenMMBG {
namespace testing {

/** Path of a file in examples/alanine_dipeptide/data. */
std::string dataFile(const std::string& name);

/** A System and its minimized structure, as the examples' data folders hold them. */
struct MoleculeFiles {
    std::unique_ptr<OpenMM::System> system;
    PdbStructure structure;  // minimized positions and atom names
    /** The PDB positions as a [1, N, 3] float64 tensor in nm. */
    at::Tensor positions() const;
};
using AlanineDipeptide = MoleculeFiles;

/** Reads base + "_system.xml" and base + ".pdb". */
MoleculeFiles loadMoleculeFiles(const std::string& base);

AlanineDipeptide loadAlanineDipeptide();

/** `count` copies of the frame [1, N, 3] with Gaussian noise of `sigma` nm on every coordinate. */
at::Tensor perturbedFrames(const at::Tensor& frame, int count, double sigma, uint64_t seed);

/**
 * Jacobian [m, d] of f at a single point x [1, d] (f maps [1, d] to [1, m]),
 * row by row with autograd: the brute-force reference for log-determinants.
 */
at::Tensor bruteForceJacobian(const std::function<at::Tensor(const at::Tensor&)>& f, const at::Tensor& x);

/** Writes a file that looks like a flow file of the given format version but holds nothing else. */
void writeFlowFileHeader(const std::string& path, int64_t formatVersion);

/** A fresh temporary file name (not created). */
std::string temporaryPath(const std::string& suffix);

/** Expects `call` to throw an OpenMMException whose message contains `text`. */
void expectMessage(const std::function<void()>& call, const std::string& text);

/** log|det| of a square matrix. */
double logAbsDet(const at::Tensor& matrix);

/**
 * For every configuration of x [B, N, 3]: the log|det| of the autograd
 * Jacobian of (e, y) -> x equals logDetJacobian(y) + log sin(theta) within
 * `tolerance`.
 */
void expectLogDetMatchesAutograd(const InternalCoordinates& coordinates, const at::Tensor& x, double tolerance);

} // namespace testing
} // namespace OpenMMBG

#endif
