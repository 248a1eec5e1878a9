#ifndef OPENMMBG_THROWINGFORCE_H_
#define OPENMMBG_THROWINGFORCE_H_

// A test Force that behaves like a plugin force whose evaluation fails: its
// energy is zero, but computing it throws an OpenMMException whenever the x
// coordinate of particle 0 is at least a threshold. It adds no energy, so
// any System can carry it.

#include <openmm/Force.h>
#include <openmm/OpenMMException.h>
#include <openmm/internal/ContextImpl.h>
#include <openmm/internal/ForceImpl.h>
#include <openmm/serialization/SerializationNode.h>
#include <openmm/serialization/SerializationProxy.h>

namespace OpenMMBG {
namespace testing {

class ThrowingForce : public OpenMM::Force {
public:
    explicit ThrowingForce(double threshold) : threshold(threshold) {}
    double getThreshold() const { return threshold; }
    bool usesPeriodicBoundaryConditions() const override { return false; }

protected:
    OpenMM::ForceImpl* createImpl() const override;

private:
    double threshold;  // nm
};

class ThrowingForceImpl : public OpenMM::ForceImpl {
public:
    explicit ThrowingForceImpl(const ThrowingForce& owner) : owner(owner) {}
    void initialize(OpenMM::ContextImpl&) override {}
    const OpenMM::Force& getOwner() const override { return owner; }
    double calcForcesAndEnergy(OpenMM::ContextImpl& context, bool, bool, int) override {
        std::vector<OpenMM::Vec3> positions;
        context.getPositions(positions);
        if (positions[0][0] >= owner.getThreshold())
            throw OpenMM::OpenMMException("ThrowingForce: particle 0 is past the threshold");
        return 0.0;
    }
    std::map<std::string, double> getDefaultParameters() override { return {}; }
    std::vector<std::string> getKernelNames() override { return {}; }

private:
    const ThrowingForce& owner;
};

inline OpenMM::ForceImpl* ThrowingForce::createImpl() const {
    return new ThrowingForceImpl(*this);
}

class ThrowingForceProxy : public OpenMM::SerializationProxy {
public:
    ThrowingForceProxy() : OpenMM::SerializationProxy("ThrowingForce") {}
    void serialize(const void* object, OpenMM::SerializationNode& node) const override {
        node.setIntProperty("version", 1);
        node.setDoubleProperty("threshold", static_cast<const ThrowingForce*>(object)->getThreshold());
    }
    void* deserialize(const OpenMM::SerializationNode& node) const override {
        return new ThrowingForce(node.getDoubleProperty("threshold"));
    }
};

/** Registers the proxy once, so that Systems holding a ThrowingForce can be cloned. */
inline void registerThrowingForceProxy() {
    static bool registered = false;
    if (!registered) {
        OpenMM::SerializationProxy::registerProxy(typeid(ThrowingForce), new ThrowingForceProxy());
        registered = true;
    }
}

} // namespace testing
} // namespace OpenMMBG

#endif
