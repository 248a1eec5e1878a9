#ifndef OPENMMBG_CARTESIANCOORDINATES_H_
#define OPENMMBG_CARTESIANCOORDINATES_H_

#include "openmmbg/CoordinateTransform.h"

#include <memory>
#include <vector>

namespace OpenMMBG {

/**
 * Plain Cartesian coordinates for toy systems: y holds the chosen entries of
 * the flattened positions (index 3*i + k is coordinate k of particle i) and e
 * the others, which moves keep fixed. The map is a permutation: log-det 0,
 * every y in the domain.
 */
class CartesianCoordinates : public CoordinateTransform {
public:
    /**
     * @param numParticles    N
     * @param coordinates     indices into the 3N flattened coordinates that y holds (all if empty)
     * @param canonicalValues values [3N] of the other coordinates for configurations generated from
     *                        scratch (zeros if undefined)
     */
    CartesianCoordinates(int numParticles, const std::vector<int>& coordinates = {},
                         const at::Tensor& canonicalValues = at::Tensor());

    const std::vector<int>& getCoordinateIndices() const { return modelled; }

    int getNumParticles() const override { return numParticles; }
    int getNumCoordinates() const override { return (int) modelled.size(); }
    int getNumExternal() const override { return 3 * numParticles - (int) modelled.size(); }

    std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& x) const override;
    at::Tensor inverse(const at::Tensor& y, const at::Tensor& e) const override;
    at::Tensor logDetJacobian(const at::Tensor& y) const override;
    at::Tensor inDomain(const at::Tensor& y) const override;
    at::Tensor domainViolation(const at::Tensor& y) const override;
    at::Tensor canonicalExternal(int64_t batch) const override;

    std::string getTypeName() const override { return "cartesian"; }
    void saveState(TensorMap& state, const std::string& prefix) const override;
    static std::shared_ptr<CartesianCoordinates> loadState(const TensorMap& state, const std::string& prefix);

private:
    int numParticles;
    std::vector<int> modelled, external;
    at::Tensor modelledIndex, externalIndex, canonical;
};

} // namespace OpenMMBG

#endif
