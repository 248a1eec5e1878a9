#include "openmmbg/internal/Geometry.h"

#include <ATen/ATen.h>

namespace OpenMMBG {
namespace geometry {

at::Tensor length(const at::Tensor& v) {
    return at::sqrt((v * v).sum(-1));
}

at::Tensor dot3(const at::Tensor& a, const at::Tensor& b) {
    return (a * b).sum(-1);
}

at::Tensor cross3(const at::Tensor& a, const at::Tensor& b) {
    return at::linalg_cross(a, b, -1);
}

at::Tensor angle(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c) {
    at::Tensor u = a - b, v = c - b;
    // atan2 of |u x v| and u . v stays accurate near 0 and pi, unlike acos.
    return at::atan2(length(cross3(u, v)), dot3(u, v));
}

at::Tensor dihedral(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c, const at::Tensor& d) {
    at::Tensor axis = c - b;
    axis = axis / length(axis).unsqueeze(-1);
    at::Tensor ba = a - b, cd = d - c;
    at::Tensor v = ba - dot3(ba, axis).unsqueeze(-1) * axis;
    at::Tensor w = cd - dot3(cd, axis).unsqueeze(-1) * axis;
    return at::atan2(dot3(cross3(axis, v), w), dot3(v, w));
}

at::Tensor place(const at::Tensor& j, const at::Tensor& k, const at::Tensor& l, const at::Tensor& bond,
                 const at::Tensor& angle, const at::Tensor& torsion) {
    at::Tensor axis = k - j;
    axis = axis / length(axis).unsqueeze(-1);
    at::Tensor kl = l - k;
    at::Tensor e1 = kl - dot3(kl, axis).unsqueeze(-1) * axis;
    e1 = e1 / length(e1).unsqueeze(-1);
    at::Tensor e2 = cross3(axis, e1);
    at::Tensor sinAngle = at::sin(angle);
    // With this orientation dihedral(i, j, k, l) = +torsion (the sign of
    // (axis x v) . w flips with e2).
    at::Tensor direction = (at::cos(angle)).unsqueeze(-1) * axis
                           + (sinAngle * at::cos(torsion)).unsqueeze(-1) * e1
                           - (sinAngle * at::sin(torsion)).unsqueeze(-1) * e2;
    return j + bond.unsqueeze(-1) * direction;
}

at::Tensor signedVolume(const at::Tensor& c, const at::Tensor& n1, const at::Tensor& n2, const at::Tensor& n3) {
    return dot3(n1 - c, cross3(n2 - c, n3 - c));
}

} // namespace geometry
} // namespace OpenMMBG
