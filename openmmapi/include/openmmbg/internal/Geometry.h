#ifndef OPENMMBG_GEOMETRY_H_
#define OPENMMBG_GEOMETRY_H_

// Batched, differentiable geometry on [..., 3] float64 tensors.

#include <ATen/core/Tensor.h>

namespace OpenMMBG {
namespace geometry {

/** |v| over the last dimension. */
at::Tensor length(const at::Tensor& v);
/** (a . b) over the last dimension. */
at::Tensor dot3(const at::Tensor& a, const at::Tensor& b);
/** a x b over the last dimension. */
at::Tensor cross3(const at::Tensor& a, const at::Tensor& b);
/** Angle (rad, [0, pi]) at b between b->a and b->c. */
at::Tensor angle(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c);
/** Dihedral (rad, (-pi, pi]) of a-b-c-d: between planes (a,b,c) and (b,c,d). */
at::Tensor dihedral(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c, const at::Tensor& d);
/**
 * The position i with |i - j| = bond, angle(i, j, k) = angle and
 * dihedral(i, j, k, l) = torsion; inverse of the three functions above.
 */
at::Tensor place(const at::Tensor& j, const at::Tensor& k, const at::Tensor& l, const at::Tensor& bond,
                 const at::Tensor& angle, const at::Tensor& torsion);
/** (n1 - c) . ((n2 - c) x (n3 - c)): the sign tells the handedness of a centre c. */
at::Tensor signedVolume(const at::Tensor& c, const at::Tensor& n1, const at::Tensor& n2, const at::Tensor& n3);

} // namespace geometry
} // namespace OpenMMBG

#endif
