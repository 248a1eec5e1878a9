#include "openmmbg/internal/ContextAccess.h"

#include "openmmbg/Positions.h"

using namespace OpenMM;

namespace OpenMMBG {

at::Tensor HostContextAccess::read() {
    std::vector<Vec3> positions;
    context.getPositions(positions);
    return positionsToTensor(positions);
}

void HostContextAccess::write(const at::Tensor& x) {
    tensorToPositions(x, written);
    context.setPositions(written);
}

void HostContextAccess::save() {
    context.getPositions(saved);
}

void HostContextAccess::restore() {
    context.setPositions(saved);
}

} // namespace OpenMMBG
