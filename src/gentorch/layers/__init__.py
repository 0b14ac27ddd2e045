"""Layers: differentiable sampling (reparameterization) and spectral normalization.

Layers depend on nothing else in gentorch.
"""

__all__: list[str] = []
