#include "openmmbg/Stereochemistry.h"

#include "openmmbg/Topology.h"
#include "openmmbg/internal/Geometry.h"

#include <ATen/ATen.h>
#include <openmm/OpenMMException.h>

namespace OpenMMBG {

Stereochemistry::Stereochemistry(int numParticles, const std::vector<std::pair<int, int>>& bonds) {
    std::vector<std::vector<int>> neighbours = neighbourLists(numParticles, bonds);
    std::vector<int64_t> c, n[3];
    for (int i = 0; i < numParticles; i++) {
        if (neighbours[i].size() != 4)
            continue;
        centres.push_back({i, neighbours[i][0], neighbours[i][1], neighbours[i][2]});
        c.push_back(i);
        for (int k = 0; k < 3; k++)
            n[k].push_back(neighbours[i][k]);
    }
    centreIndex = at::tensor(c, at::kLong);
    for (int k = 0; k < 3; k++)
        neighbourIndex[k] = at::tensor(n[k], at::kLong);
}

at::Tensor Stereochemistry::signs(const at::Tensor& x) const {
    if (centres.empty())
        return at::zeros({x.size(0), 0}, x.options());
    at::Device device = x.device();
    at::Tensor volume = geometry::signedVolume(
        x.index_select(1, centreIndex.to(device)), x.index_select(1, neighbourIndex[0].to(device)),
        x.index_select(1, neighbourIndex[1].to(device)), x.index_select(1, neighbourIndex[2].to(device)));
    return at::sign(volume);
}

at::Tensor Stereochemistry::referenceSigns(const at::Tensor& x, const std::string& what) const {
    at::Tensor result = signs(x.reshape({1, -1, 3}))[0];
    if ((result == 0).any().item<bool>())
        throw OpenMM::OpenMMException("Stereochemistry: a stereocentre of " + what
                                      + " is flat (its neighbours are coplanar); its handedness is undefined");
    return result;
}

at::Tensor Stereochemistry::matches(const at::Tensor& x, const at::Tensor& reference) const {
    return (signs(x) == reference.to(x.device())).all(1);
}

} // namespace OpenMMBG
