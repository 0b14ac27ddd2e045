"""The "standard CNN" generator and discriminator of SN-GAN (Miyato et al., ICLR 2018, Table 3).

Both are sized for 28x28 (MNIST, Fashion-MNIST) and 32x32 (CIFAR-10, SVHN) images. Images are in
``[0, 1]`` on both sides: the generator ends in ``(tanh(h) + 1) / 2`` (the paper's tanh output
mapped from ``[-1, 1]`` to ``[0, 1]``), and the discriminator maps its input back to ``[-1, 1]``
with ``2 x - 1`` before the first convolution, so the networks see the paper's value range.

Table 3 at ``width=64``:

generator, ``z`` in R^128 ~ N(0, I):
    dense -> M_g x M_g x 512, BN, ReLU
    4x4 stride-2 deconv 256, BN, ReLU          (28x28: 3x3 kernel, so that 4 -> 7 -> 14 -> 28)
    4x4 stride-2 deconv 128, BN, ReLU
    4x4 stride-2 deconv 64, BN, ReLU
    3x3 stride-1 conv C, tanh                   (M_g = 4)

discriminator, leaky ReLU slope 0.1 after every conv:
    3x3 s1 conv 64, 4x4 s2 conv 64, 3x3 s1 conv 128, 4x4 s2 conv 128,
    3x3 s1 conv 256, 4x4 s2 conv 256, 3x3 s1 conv 512, dense -> 1

``width`` scales every channel count (``width=64`` is the paper's network); smaller widths make
CPU experiments affordable.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gentorch._checks import check_bool, check_generator, check_positive_int
from gentorch.layers import spectral_norm as _spectral_norm
from gentorch.models._gan_checks import (
    check_codes,
    check_image_size,
    check_images,
)

__all__ = ["SNGANDiscriminator", "SNGANGenerator"]


def sample_images(
    g: nn.Module, param: Tensor, latent_dim: int, n: int, generator: torch.Generator | None
) -> Tensor:
    """``g(z)`` for ``n`` codes ``z ~ N(0, I)`` of size ``latent_dim``, drawn on the device and
    in the dtype of ``param`` (one of ``g``'s weights): ``(n, C, H, W)``."""
    check_positive_int("n", n)
    check_generator(generator)
    z = torch.randn(n, latent_dim, device=param.device, dtype=param.dtype, generator=generator)
    out: Tensor = g(z)
    return out


class SNGANGenerator(nn.Module):
    """SN-GAN's standard CNN generator (Table 3a): latent codes to images in ``[0, 1]``.

    Args:
        latent_dim: size of the latent code ``z ~ N(0, I)`` (128 in the paper).
        out_channels: channels of the generated images (1 for MNIST, 3 for CIFAR-10).
        image_size: 28 or 32 (square images).
        width: base channel count; the paper's network has ``width=64`` (channels 512-256-128-64).

    Shape:
        - Input ``z``: ``(B, latent_dim)``.
        - Output: ``(B, out_channels, image_size, image_size)``, values in ``[0, 1]``.

    Raises:
        ValueError: ``latent_dim``, ``out_channels`` or ``width`` is an int below 1
            (``TypeError`` if not an int), or
            ``image_size`` is not 28 or 32.

    Example:
        >>> import torch
        >>> from gentorch.models import SNGANGenerator
        >>> g = SNGANGenerator(latent_dim=128, out_channels=1, image_size=28, width=16)
        >>> x = g(torch.randn(4, 128))
        >>> x.shape, bool(((x >= 0) & (x <= 1)).all())
        (torch.Size([4, 1, 28, 28]), True)
    """

    def __init__(
        self,
        latent_dim: int = 128,
        out_channels: int = 1,
        image_size: int = 28,
        width: int = 64,
    ) -> None:
        super().__init__()
        check_positive_int("latent_dim", latent_dim)
        check_positive_int("out_channels", out_channels)
        check_positive_int("width", width)
        check_image_size(image_size)
        self.latent_dim = latent_dim
        self.out_channels = out_channels
        self.image_size = image_size
        self.width = width
        w = width
        self.bottom = 4
        self.dense = nn.Linear(latent_dim, self.bottom * self.bottom * 8 * w)
        self.bn0 = nn.BatchNorm2d(8 * w)
        # 28x28: a 3x3 kernel takes 4x4 to 7x7 ((4 - 1) * 2 - 2 + 3 = 7); 32x32: 4x4 takes 4 to 8.
        first_kernel = 3 if image_size == 28 else 4
        self.deconv1 = nn.ConvTranspose2d(8 * w, 4 * w, first_kernel, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(4 * w)
        self.deconv2 = nn.ConvTranspose2d(4 * w, 2 * w, 4, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * w)
        self.deconv3 = nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1)
        self.bn3 = nn.BatchNorm2d(w)
        self.conv_out = nn.Conv2d(w, out_channels, 3, stride=1, padding=1)

    def config(self) -> dict[str, Any]:
        """The constructor's arguments: ``SNGANGenerator(**g.config())`` rebuilds ``g``."""
        return {
            "latent_dim": self.latent_dim,
            "out_channels": self.out_channels,
            "image_size": self.image_size,
            "width": self.width,
        }

    def forward(self, z: Tensor) -> Tensor:
        """Map ``z: (B, latent_dim)`` to images ``(B, out_channels, image_size, image_size)``."""
        check_codes(z, self.latent_dim, self.dense.weight.dtype)
        h = self.dense(z).view(z.shape[0], -1, self.bottom, self.bottom)
        h = F.relu(self.bn0(h))
        h = F.relu(self.bn1(self.deconv1(h)))
        h = F.relu(self.bn2(self.deconv2(h)))
        h = F.relu(self.bn3(self.deconv3(h)))
        # x = (tanh(h) + 1) / 2: the paper's tanh output rescaled from [-1, 1] to [0, 1]
        return (torch.tanh(self.conv_out(h)) + 1.0) * 0.5

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` images ``(n, C, H, W)`` from ``z ~ N(0, I)`` (on this module's device).

        Gradients flow as usual; wrap the call in ``torch.no_grad()`` for inference.

        Example:
            >>> from gentorch.models import SNGANGenerator
            >>> g = SNGANGenerator(image_size=32, out_channels=3, width=8).eval()
            >>> g.sample(2).shape
            torch.Size([2, 3, 32, 32])
        """
        return sample_images(self, self.dense.weight, self.latent_dim, n, generator)


class SNGANDiscriminator(nn.Module):
    """SN-GAN's standard CNN discriminator (Table 3b); one unbounded score per image.

    With ``spectral_norm=True`` every conv and the final dense layer is wrapped in
    :class:`gentorch.layers.SpectralNorm` (one power iteration per forward in training, as in the
    paper). With ``spectral_norm=False`` they are plain ``nn.Conv2d`` / ``nn.Linear`` modules,
    stored as direct attributes named in :attr:`LAYER_NAMES` so that other spectral-norm
    implementations can be swapped in with ``setattr(disc, name, wrap(getattr(disc, name)))``.

    Args:
        in_channels: image channels (1 for MNIST, 3 for CIFAR-10).
        image_size: 28 or 32 (square images).
        spectral_norm: wrap every conv/dense layer in ``SpectralNorm``.
        width: base channel count; the paper's network has ``width=64`` (channels 64 ... 512).
        n_power_iterations: power iterations per forward of each ``SpectralNorm``.

    Shape:
        - Input ``x``: ``(B, in_channels, image_size, image_size)``, values in ``[0, 1]``.
        - Output: ``(B,)`` raw scores (logits).

    Raises:
        ValueError: ``in_channels``, ``width`` or ``n_power_iterations`` is an int below 1
            (``TypeError`` if not an int),
            or ``image_size`` is not 28 or 32.
        TypeError: ``spectral_norm`` is not a bool.

    The forward raises ``ValueError`` for images of another shape or an empty batch, and
    ``TypeError`` for non-floating images (e.g. ``uint8``, scale them to ``[0, 1]`` first) or
    a dtype other than the parameters' outside autocast.

    Example:
        >>> import torch
        >>> from gentorch.models import SNGANDiscriminator
        >>> d = SNGANDiscriminator(in_channels=1, image_size=28, width=16)
        >>> d(torch.rand(4, 1, 28, 28)).shape
        torch.Size([4])
        >>> type(d.conv1).__name__  # spectral_norm=True wraps every layer
        'SpectralNorm'
    """

    #: The weighted layers in forward order; each is a direct attribute of the module.
    LAYER_NAMES = ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "conv7", "linear")

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        spectral_norm: bool = True,
        width: int = 64,
        n_power_iterations: int = 1,
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("width", width)
        check_image_size(image_size)
        check_bool("spectral_norm", spectral_norm)
        check_positive_int("n_power_iterations", n_power_iterations)
        self.in_channels = in_channels
        self.image_size = image_size
        self.spectral_norm = spectral_norm
        self.width = width
        self.n_power_iterations = n_power_iterations
        w = width
        # Three stride-2 convs with padding 1: 32 -> 16 -> 8 -> 4 and 28 -> 14 -> 7 -> 3.
        bottom = 4 if image_size == 32 else 3
        layers: dict[str, nn.Module] = {
            "conv1": nn.Conv2d(in_channels, w, 3, stride=1, padding=1),
            "conv2": nn.Conv2d(w, w, 4, stride=2, padding=1),
            "conv3": nn.Conv2d(w, 2 * w, 3, stride=1, padding=1),
            "conv4": nn.Conv2d(2 * w, 2 * w, 4, stride=2, padding=1),
            "conv5": nn.Conv2d(2 * w, 4 * w, 3, stride=1, padding=1),
            "conv6": nn.Conv2d(4 * w, 4 * w, 4, stride=2, padding=1),
            "conv7": nn.Conv2d(4 * w, 8 * w, 3, stride=1, padding=1),
            "linear": nn.Linear(8 * w * bottom * bottom, 1),
        }
        for name, layer in layers.items():
            if spectral_norm:
                layer = _spectral_norm(layer, n_power_iterations=n_power_iterations)
            self.add_module(name, layer)

    def config(self) -> dict[str, Any]:
        """The constructor's arguments: ``SNGANDiscriminator(**d.config())`` rebuilds ``d``."""
        return {
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "spectral_norm": self.spectral_norm,
            "width": self.width,
            "n_power_iterations": self.n_power_iterations,
        }

    def forward(self, x: Tensor) -> Tensor:
        """Score images ``x: (B, C, H, W)`` in ``[0, 1]``; returns ``(B,)``."""
        check_images(x, self.in_channels, self.image_size, next(self.parameters()).dtype)
        # the paper's networks see images in [-1, 1]
        h = 2.0 * x - 1.0
        for name in self.LAYER_NAMES[:-1]:
            h = F.leaky_relu(getattr(self, name)(h), 0.1)
        out: Tensor = getattr(self, self.LAYER_NAMES[-1])(h.flatten(1))
        return out.squeeze(1)
