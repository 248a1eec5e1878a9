#include "openmmbg/Positions.h"

#include <ATen/ops/empty.h>

using OpenMM::Vec3;

namespace OpenMMBG {

at::Tensor positionsToTensor(const std::vector<Vec3>& positions) {
    at::Tensor frame = at::empty({1, (int64_t) positions.size(), 3}, at::kDouble);
    double* data = frame.data_ptr<double>();
    for (size_t i = 0; i < positions.size(); i++)
        for (int k = 0; k < 3; k++)
            data[3 * i + k] = positions[i][k];
    return frame;
}

void tensorToPositions(const at::Tensor& frame, std::vector<Vec3>& positions) {
    at::Tensor host = frame.to(at::kCPU, at::kDouble).contiguous();
    const double* data = host.data_ptr<double>();
    positions.resize(host.numel() / 3);
    for (size_t i = 0; i < positions.size(); i++)
        positions[i] = Vec3(data[3 * i], data[3 * i + 1], data[3 * i + 2]);
}

} // namespace OpenMMBG
