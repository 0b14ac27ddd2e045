"""Layers: differentiable sampling (reparameterization) and spectral normalization.

Layers depend on nothing else in gentorch.
"""

from gentorch.layers.reparameterize import LOGVAR_RANGE, Reparameterize, reparameterize

__all__: list[str] = []
__all__ += ["LOGVAR_RANGE", "Reparameterize", "reparameterize"]
