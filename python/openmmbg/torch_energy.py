"""The energy bridge as a differentiable torch function (torch is imported on first use)."""
import functools


def torch_reduced_energy(bridge, x):
    """Reduced energies u = U/kT (B,) of positions x (B, N, 3) in nm, a torch
    tensor, through OpenMMEnergy.evaluate(); backpropagation uses the forces,
    du/dx = -F/kT. Frames that are not finite give u = +inf and zero gradient.
    The result has x's dtype and device (evaluation runs on the CPU in float64)."""
    return _reducedEnergyFunction().apply(x, bridge)


@functools.lru_cache(maxsize=None)
def _reducedEnergyFunction():
    import torch

    class ReducedEnergy(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, bridge):
            batch = bridge.evaluate(x.detach().to("cpu", torch.float64).numpy())
            ctx.save_for_backward(torch.from_numpy(batch.forces).to(x))
            return torch.from_numpy(batch.reducedEnergy).to(x)

        @staticmethod
        def backward(ctx, gradient):
            (forces,) = ctx.saved_tensors
            return -forces * gradient.reshape(-1, 1, 1), None

    return ReducedEnergy
