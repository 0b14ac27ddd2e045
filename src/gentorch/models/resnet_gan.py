"""SN-GAN's ResNet generator and discriminator (Miyato et al., ICLR 2018, Table 4, CIFAR-10).

Images are in ``[0, 1]`` on both sides, as in :mod:`gentorch.models.sngan`.

Table 4 at the paper's widths (generator 256 channels, discriminator 128):

generator, ``z`` in R^128:
    dense -> 4 x 4 x 256 (28x28: 7 x 7 x 256)
    ResBlock up 256, ResBlock up 256, ResBlock up 256    (28x28: two up-blocks, 7 -> 14 -> 28)
    BN, ReLU, 3x3 conv C, tanh

discriminator:
    ResBlock down 128 (the "optimized" first block), ResBlock down 128, ResBlock 128,
    ResBlock 128, ReLU, global sum pooling, dense -> 1

A generator block is ``BN -> ReLU -> upsample x2 -> 3x3 conv -> BN -> ReLU -> 3x3 conv`` plus the
shortcut ``upsample x2 -> 1x1 conv``; a discriminator block is ``ReLU -> 3x3 conv -> ReLU -> 3x3
conv -> 2x2 average pool`` plus ``1x1 conv -> average pool`` (the first block applies no ReLU
to the image, and pools its shortcut before the 1x1 conv). With ``spectral_norm=True`` every
conv and the dense layer of the discriminator is a :class:`gentorch.layers.SpectralNorm`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gentorch._checks import check_bool, check_positive_int
from gentorch.layers import spectral_norm as _spectral_norm
from gentorch.models._gan_checks import (
    check_codes,
    check_image_size,
    check_images,
)
from gentorch.models.sngan import sample_images

__all__ = [
    "DiscriminatorResBlock",
    "GeneratorResBlock",
    "SNGANResNetDiscriminator",
    "SNGANResNetGenerator",
]


def _check_feature_map(x: Tensor, channels: int) -> None:
    """Raise unless ``x`` is a floating tensor ``(B, channels, H, W)`` (shape and dtype only)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a Tensor (B, {channels}, H, W), got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"x: expected shape (B, {channels}, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x: expected a floating-point tensor, got dtype {x.dtype}")


class GeneratorResBlock(nn.Module):
    """Pre-activation residual block that doubles the resolution.

    ``y = conv3(relu(bn(conv3(up(relu(bn(x))))))) + conv1(up(x))`` with nearest-neighbour
    upsampling by 2.

    Args:
        in_channels: channels of ``x``.
        out_channels: channels of ``y``.

    Shape:
        ``(B, in_channels, H, W) -> (B, out_channels, 2H, 2W)``.

    Example:
        >>> import torch
        >>> from gentorch.models.resnet_gan import GeneratorResBlock
        >>> block = GeneratorResBlock(8, 4)
        >>> block(torch.randn(2, 8, 7, 7)).shape
        torch.Size([2, 4, 14, 14])
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        self.in_channels = in_channels
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W) -> (B, C_out, 2H, 2W)``."""
        _check_feature_map(x, self.in_channels)
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        out: Tensor = h + self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return out


class DiscriminatorResBlock(nn.Module):
    """Residual block of the SN-GAN ResNet discriminator, optionally halving the resolution.

    ``y = pool(conv3(relu(conv3(relu(x))))) + pool(conv1(x))``; ``first=True`` drops the first
    ReLU (the input is an image) and pools the shortcut before its 1x1 conv. Without
    downsampling and with equal channel counts the shortcut is the identity.

    Args:
        in_channels: channels of ``x``.
        out_channels: channels of ``y``.
        downsample: 2x2 average pooling at the end of both paths.
        first: the "optimized" first block of the paper's code path.
        spectral_norm: wrap every conv in :class:`gentorch.layers.SpectralNorm`.
        n_power_iterations: power iterations per forward of each ``SpectralNorm``.

    Shape:
        ``(B, in_channels, H, W) -> (B, out_channels, H/2, W/2)`` (``H, W`` if not
        ``downsample``; odd sizes are floored, like ``avg_pool2d``).

    Example:
        >>> import torch
        >>> from gentorch.models.resnet_gan import DiscriminatorResBlock
        >>> block = DiscriminatorResBlock(1, 8, downsample=True, first=True)
        >>> block(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 8, 14, 14])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        downsample: bool = False,
        first: bool = False,
        spectral_norm: bool = True,
        n_power_iterations: int = 1,
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_bool("downsample", downsample)
        check_bool("first", first)
        check_bool("spectral_norm", spectral_norm)
        check_positive_int("n_power_iterations", n_power_iterations)
        self.in_channels = in_channels
        self.downsample, self.first = downsample, first

        def wrap(layer: nn.Module) -> nn.Module:
            if not spectral_norm:
                return layer
            return _spectral_norm(layer, n_power_iterations=n_power_iterations)

        self.conv1 = wrap(nn.Conv2d(in_channels, out_channels, 3, padding=1))
        self.conv2 = wrap(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.shortcut: nn.Module | None = None
        if downsample or first or in_channels != out_channels:
            self.shortcut = wrap(nn.Conv2d(in_channels, out_channels, 1))

    def _pool(self, h: Tensor) -> Tensor:
        return F.avg_pool2d(h, 2) if self.downsample else h

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W) -> (B, C_out, H', W')``."""
        _check_feature_map(x, self.in_channels)
        h = x if self.first else F.relu(x)
        h = self._pool(self.conv2(F.relu(self.conv1(h))))
        if self.shortcut is None:
            return h + x
        if self.first:
            # the first block pools the image before its 1x1 conv (cheaper, same function)
            skip: Tensor = self.shortcut(self._pool(x))
        else:
            skip = self._pool(self.shortcut(x))
        return h + skip


class SNGANResNetGenerator(nn.Module):
    """SN-GAN's ResNet generator (Table 4): latent codes to images in ``[0, 1]``.

    Args:
        latent_dim: size of ``z ~ N(0, I)`` (128 in the paper).
        out_channels: image channels.
        image_size: 28 (7x7 start, two up-blocks) or 32 (4x4 start, three, as in the paper).
        width: channels of every block (256 in the paper).

    Shape:
        ``(B, latent_dim) -> (B, out_channels, image_size, image_size)``.

    Raises:
        ValueError: ``latent_dim``, ``out_channels`` or ``width`` is an int below 1
            (``TypeError`` if not an int), or
            ``image_size`` is not 28 or 32.

    Example:
        >>> import torch
        >>> from gentorch.models import SNGANResNetGenerator
        >>> g = SNGANResNetGenerator(image_size=32, out_channels=3, width=32)
        >>> x = g(torch.randn(2, 128))
        >>> x.shape, bool(((x >= 0) & (x <= 1)).all())
        (torch.Size([2, 3, 32, 32]), True)
    """

    def __init__(
        self,
        latent_dim: int = 128,
        out_channels: int = 1,
        image_size: int = 28,
        width: int = 256,
    ) -> None:
        super().__init__()
        check_positive_int("latent_dim", latent_dim)
        check_positive_int("out_channels", out_channels)
        check_positive_int("width", width)
        check_image_size(image_size)
        self.latent_dim, self.out_channels = latent_dim, out_channels
        self.image_size, self.width = image_size, width
        self.bottom = 7 if image_size == 28 else 4
        n_blocks = 2 if image_size == 28 else 3
        self.dense = nn.Linear(latent_dim, self.bottom * self.bottom * width)
        self.blocks = nn.Sequential(*[GeneratorResBlock(width, width) for _ in range(n_blocks)])
        self.bn = nn.BatchNorm2d(width)
        self.conv_out = nn.Conv2d(width, out_channels, 3, padding=1)

    def config(self) -> dict[str, Any]:
        """The constructor's arguments."""
        return {
            "latent_dim": self.latent_dim,
            "out_channels": self.out_channels,
            "image_size": self.image_size,
            "width": self.width,
        }

    def forward(self, z: Tensor) -> Tensor:
        """``z: (B, latent_dim)`` to images ``(B, C, H, W)`` in ``[0, 1]``."""
        check_codes(z, self.latent_dim, self.dense.weight.dtype)
        h = self.dense(z).view(z.shape[0], self.width, self.bottom, self.bottom)
        h = F.relu(self.bn(self.blocks(h)))
        # x = (tanh(h) + 1) / 2: the paper's tanh output rescaled to [0, 1]
        return (torch.tanh(self.conv_out(h)) + 1.0) * 0.5

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` images ``(n, C, H, W)`` from ``z ~ N(0, I)`` (on this module's device).

        Gradients flow as usual; wrap the call in ``torch.no_grad()`` for inference. In training
        mode the batch norms use the sample's own statistics: call ``eval()`` first.

        Example:
            >>> from gentorch.models import SNGANResNetGenerator
            >>> g = SNGANResNetGenerator(image_size=28, width=8).eval()
            >>> g.sample(2).shape
            torch.Size([2, 1, 28, 28])
        """
        return sample_images(self, self.dense.weight, self.latent_dim, n, generator)


class SNGANResNetDiscriminator(nn.Module):
    """SN-GAN's ResNet discriminator (Table 4): images in ``[0, 1]`` to ``(B,)`` scores.

    Args:
        in_channels: image channels.
        image_size: 28 or 32 (the blocks pool twice; global sum pooling does the rest).
        spectral_norm: wrap every conv and the dense layer in ``SpectralNorm``.
        width: channels of every block (128 in the paper).
        n_power_iterations: power iterations per forward of each ``SpectralNorm``.

    Shape:
        ``(B, in_channels, image_size, image_size) -> (B,)``.

    Raises:
        ValueError: ``in_channels``, ``width`` or ``n_power_iterations`` is not a positive int,
            or ``image_size`` is not 28 or 32.
        TypeError: ``spectral_norm`` is not a bool.

    Example:
        >>> import torch
        >>> from gentorch.models import SNGANResNetDiscriminator
        >>> d = SNGANResNetDiscriminator(in_channels=1, image_size=28, width=16)
        >>> d(torch.rand(2, 1, 28, 28)).shape
        torch.Size([2])
        >>> type(d.linear).__name__  # spectral_norm=True wraps every conv and the dense layer
        'SpectralNorm'
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        spectral_norm: bool = True,
        width: int = 128,
        n_power_iterations: int = 1,
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("width", width)
        check_image_size(image_size)
        check_bool("spectral_norm", spectral_norm)
        check_positive_int("n_power_iterations", n_power_iterations)
        self.in_channels, self.image_size = in_channels, image_size
        self.spectral_norm, self.width = spectral_norm, width
        self.n_power_iterations = n_power_iterations
        sn, k = spectral_norm, n_power_iterations
        self.blocks = nn.Sequential(
            DiscriminatorResBlock(
                in_channels,
                width,
                downsample=True,
                first=True,
                spectral_norm=sn,
                n_power_iterations=k,
            ),
            DiscriminatorResBlock(
                width, width, downsample=True, spectral_norm=sn, n_power_iterations=k
            ),
            DiscriminatorResBlock(width, width, spectral_norm=sn, n_power_iterations=k),
            DiscriminatorResBlock(width, width, spectral_norm=sn, n_power_iterations=k),
        )
        linear = nn.Linear(width, 1)
        self.linear = (
            _spectral_norm(linear, n_power_iterations=n_power_iterations)
            if spectral_norm
            else linear
        )

    def config(self) -> dict[str, Any]:
        """The constructor's arguments."""
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
        # the paper's networks see images in [-1, 1]; global sum pooling over positions
        h = F.relu(self.blocks(2.0 * x - 1.0)).sum(dim=(2, 3))
        out: Tensor = self.linear(h)
        return out.squeeze(1)
