#ifndef OPENMMBG_STEREOCHEMISTRY_H_
#define OPENMMBG_STEREOCHEMISTRY_H_

#include <ATen/core/Tensor.h>

#include <array>
#include <string>
#include <utility>
#include <vector>

namespace OpenMMBG {

/**
 * The stereocentres of a molecule, the atoms with four bonded neighbours,
 * and their handedness: the sign of the signed volume
 * (n1 - c) . ((n2 - c) x (n3 - c)) of the first three neighbours (by index).
 * Mirror images have the same force-field energy, so samplers reject any
 * move that changes a sign (docs/math.md, "Coordinates").
 */
class Stereochemistry {
public:
    Stereochemistry(int numParticles, const std::vector<std::pair<int, int>>& bonds);

    int getNumCentres() const { return (int) centres.size(); }
    /** The centre atoms and their neighbours [centre, n1, n2, n3]. */
    const std::vector<std::array<int, 4>>& getCentres() const { return centres; }

    /** [B, C] signs (+1, -1, or 0 for a flat centre) of configurations x [B, N, 3]. */
    at::Tensor signs(const at::Tensor& x) const;
    /**
     * [C] signs of one configuration x ([1, N, 3] or [N, 3]), the handedness
     * that matches() compares with. Throws OpenMMException, naming `what`
     * (e.g. "the starting configuration"), if a centre is flat.
     */
    at::Tensor referenceSigns(const at::Tensor& x, const std::string& what) const;
    /** [B] bool: true where every centre of x has the sign in `reference` [C] (or [B, C]). */
    at::Tensor matches(const at::Tensor& x, const at::Tensor& reference) const;

private:
    std::vector<std::array<int, 4>> centres;
    at::Tensor centreIndex, neighbourIndex[3];
};

} // namespace OpenMMBG

#endif
