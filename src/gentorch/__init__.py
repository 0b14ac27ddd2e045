"""gentorch: generative models in PyTorch.

Correct, fast differentiable sampling (:mod:`gentorch.layers`), spectral normalization, and
complete VAE and SN-GAN pipelines built on them.
"""

from gentorch import data, layers, losses

__version__ = "0.1.0"
__all__ = ["__version__", "data", "layers", "losses"]
