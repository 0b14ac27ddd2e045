"""Argument and input checks shared by the SN-GAN networks (standard CNN and ResNet)."""

from __future__ import annotations

import torch
from torch import Tensor

# Square image sides the SN-GAN networks are built for: MNIST-like and CIFAR-like.
IMAGE_SIZES = (28, 32)


def check_image_size(value: int) -> None:
    """Raise ``ValueError`` unless ``value`` is one of :data:`IMAGE_SIZES` (an ``int``)."""
    if not isinstance(value, int) or isinstance(value, bool) or value not in IMAGE_SIZES:
        raise ValueError(f"image_size: expected one of {IMAGE_SIZES}, got {value!r}")


def _check_floating(name: str, t: Tensor, dtype: torch.dtype) -> None:
    """Raise ``TypeError`` unless ``t`` is floating point and (outside autocast) of ``dtype``."""
    if not t.is_floating_point():
        hint = " (convert and scale images, e.g. x.float() / 255)" if name == "x" else ""
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}{hint}")
    if t.dtype != dtype and not torch.is_autocast_enabled(t.device.type):
        raise TypeError(
            f"{name}: expected dtype {dtype} (the model's parameters), got {t.dtype}; convert "
            f"the input (e.g. {name}.to({dtype})) or the model (model.to({t.dtype}))"
        )


def check_codes(z: Tensor, latent_dim: int, dtype: torch.dtype) -> None:
    """Raise unless ``z`` is a non-empty floating tensor ``(B, latent_dim)`` of ``dtype``.

    ``TypeError`` for a non-tensor or a wrong dtype, ``ValueError`` for a wrong shape.
    """
    if not isinstance(z, Tensor):
        raise TypeError(f"z: expected a Tensor of shape (B, {latent_dim}), got {type(z).__name__}")
    if z.dim() != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"z: expected shape (B, {latent_dim}), got {tuple(z.shape)}")
    if z.shape[0] == 0:
        raise ValueError(f"z: expected at least one code (B >= 1), got shape {tuple(z.shape)}")
    _check_floating("z", z, dtype)


def check_images(x: Tensor, channels: int, size: int, dtype: torch.dtype) -> None:
    """Raise unless ``x`` is a non-empty floating tensor ``(B, channels, size, size)``.

    ``TypeError`` for a non-tensor or a wrong dtype, ``ValueError`` for a wrong shape.
    """
    expected = (channels, size, size)
    text = ", ".join(map(str, expected))
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a Tensor of shape (B, {text}), got {type(x).__name__}")
    if x.dim() != 4 or tuple(x.shape[1:]) != expected:
        raise ValueError(f"x: expected shape (B, {text}), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"x: expected at least one image (B >= 1), got shape {tuple(x.shape)}")
    _check_floating("x", x, dtype)
