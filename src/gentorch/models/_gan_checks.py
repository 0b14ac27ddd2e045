"""Argument and input checks shared by the SN-GAN networks (standard CNN and ResNet)."""

from __future__ import annotations

from torch import Tensor

# Square image sides the SN-GAN networks are built for: MNIST-like and CIFAR-like.
IMAGE_SIZES = (28, 32)


def check_positive(name: str, value: int) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an ``int`` (not a bool) >= 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")


def check_image_size(value: int) -> None:
    """Raise ``ValueError`` unless ``value`` is one of :data:`IMAGE_SIZES`."""
    if value not in IMAGE_SIZES:
        raise ValueError(f"image_size: expected one of {IMAGE_SIZES}, got {value!r}")


def check_codes(z: Tensor, latent_dim: int) -> None:
    """Raise ``ValueError`` unless ``z`` is a tensor of shape ``(B, latent_dim)``."""
    if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != latent_dim:
        got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise ValueError(f"z: expected shape (B, {latent_dim}), got {got}")


def check_images(x: Tensor, channels: int, size: int) -> None:
    """Raise ``ValueError`` unless ``x`` is a tensor of shape ``(B, channels, size, size)``."""
    expected = (channels, size, size)
    if not isinstance(x, Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != expected:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x: expected shape (B, {', '.join(map(str, expected))}), got {got}")
