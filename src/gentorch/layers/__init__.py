"""Layers: differentiable sampling (reparameterization) and spectral normalization.

Layers depend on nothing else in gentorch.
"""

from gentorch.layers.distributions import (
    LOG_SCALE_RANGE,
    LearnableNormal,
    ReparameterizeFullCov,
    ReparameterizeLaplace,
    ReparameterizeLogistic,
)
from gentorch.layers.relaxed import GumbelSoftmax, RelaxedBernoulli
from gentorch.layers.reparameterize import LOGVAR_RANGE, Reparameterize, reparameterize

__all__: list[str] = []
__all__ += ["LOGVAR_RANGE", "Reparameterize", "reparameterize"]
__all__ += ["LOG_SCALE_RANGE", "LearnableNormal", "ReparameterizeFullCov", "ReparameterizeLaplace"]
__all__ += ["GumbelSoftmax", "RelaxedBernoulli", "ReparameterizeLogistic"]

from gentorch.layers.operator_norm import (  # noqa: E402
    LipschitzBound,
    conv_operator_norm,
    lipschitz_bound,
)
from gentorch.layers.spectral_norm import (  # noqa: E402
    SpectralNorm,
    convert_torch_spectral_norm_state_dict,
    remove_spectral_norm,
    spectral_norm,
)

__all__ += [
    "LipschitzBound",
    "SpectralNorm",
    "conv_operator_norm",
    "convert_torch_spectral_norm_state_dict",
    "lipschitz_bound",
    "remove_spectral_norm",
    "spectral_norm",
]
