"""Layers: differentiable sampling (reparameterization) and spectral normalization.

Layers depend on nothing else in gentorch.
"""

from gentorch.layers.reparameterize import LOGVAR_RANGE, Reparameterize, reparameterize

__all__: list[str] = []
__all__ += ["LOGVAR_RANGE", "Reparameterize", "reparameterize"]

from gentorch.layers.spectral_norm import (  # noqa: E402
    SpectralNorm,
    convert_torch_spectral_norm_state_dict,
    remove_spectral_norm,
    spectral_norm,
)

__all__ += [
    "SpectralNorm",
    "convert_torch_spectral_norm_state_dict",
    "remove_spectral_norm",
    "spectral_norm",
]
