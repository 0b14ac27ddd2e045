"""Image grids written as PNG with pillow: samples, reconstructions, interpolations, manifolds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

__all__ = ["save_image_grid"]


def _as_nchw(images: object, name: str = "images") -> Tensor:
    if not isinstance(images, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(images).__name__}")
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"{name}: expected shape (N, C, H, W) with C in (1, 3), or (N, H, W), "
            f"got {tuple(images.shape)}"
        )
    if images.shape[0] == 0 or images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(
            f"{name}: expected at least one non-empty image, got {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor in [0, 1], got {images.dtype}")
    images = images.detach()
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{name}: contains NaN or Inf values")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{name}: expected values in [0, 1], got range [{low:.4g}, {high:.4g}]; "
            "rescale first (e.g. (x + 1) / 2 for tanh outputs)"
        )
    return images


def _make_grid(images: Tensor, nrow: int | None, padding: int, pad_value: float) -> Tensor:
    """Tile ``(N, C, H, W)`` images into one ``(C, rows*(H+p)+p, nrow*(W+p)+p)`` image."""
    n, c, h, w = images.shape
    if nrow is None:
        nrow = math.ceil(math.sqrt(n))
    if not isinstance(nrow, int) or nrow < 1:
        raise ValueError(f"nrow: expected a positive int (images per row), got {nrow!r}")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding: expected a non-negative int, got {padding!r}")
    ncol = min(nrow, n)
    rows = math.ceil(n / ncol)
    # Each cell is an image with `padding` pixels above and to its left; empty cells are padding.
    cells = images.new_full((rows * ncol, c, h + padding, w + padding), pad_value)
    cells[:n, :, padding:, padding:] = images
    # (rows, ncol, C, H+p, W+p) -> (C, rows, H+p, ncol, W+p) -> (C, rows (H+p), ncol (W+p))
    grid = cells.view(rows, ncol, c, h + padding, w + padding).permute(2, 0, 3, 1, 4)
    grid = grid.reshape(c, rows * (h + padding), ncol * (w + padding))
    # Close the grid with `padding` pixels at the bottom and on the right.
    return torch.nn.functional.pad(grid, (0, padding, 0, padding), value=pad_value)


def _write_png(grid: Tensor, path: str | Path) -> Path:
    """Write a ``(C, H, W)`` image with values in [0, 1] as an 8-bit PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # 8-bit value = round(255 * x)
    pixels = (grid.to(torch.float32) * 255).round().to(torch.uint8).cpu().numpy()
    if pixels.shape[0] == 1:
        image = Image.fromarray(pixels[0], mode="L")
    else:
        image = Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)), mode="RGB")
    image.save(path, format="PNG")
    return path


def save_image_grid(
    images: Tensor,
    path: str | Path,
    *,
    nrow: int | None = None,
    padding: int = 2,
    pad_value: float = 0.0,
) -> Path:
    """Tile images into a grid and write it as a PNG.

    Pixel ``(y, x)`` of image ``i`` lands at ``(p + r (H + p) + y, p + c (W + p) + x)`` with
    ``r, c = divmod(i, ncol)``, ``ncol = min(nrow, N)`` and ``p = padding``; values become 8-bit
    as ``round(255 * v)``. Grayscale images give a mode ``"L"`` PNG, RGB images a mode ``"RGB"``.

    Args:
        images: ``(N, C, H, W)`` with ``C`` in (1, 3), or ``(N, H, W)`` grayscale, float values
            in ``[0, 1]`` (anything outside is an error, never clipped silently).
        path: the PNG file to write; parent folders are created.
        nrow: images per row; default ``ceil(sqrt(N))``.
        padding: pixels of ``pad_value`` between images and around the grid.
        pad_value: padding intensity in ``[0, 1]``.

    Returns:
        The path of the written PNG, of size ``(ncol (W + p) + p, rows (H + p) + p)`` pixels.

    Example:
        >>> path = save_image_grid(torch.rand(16, 1, 28, 28), "samples.png", nrow=4)
        >>> Image.open(path).size
        (122, 122)
    """
    images = _as_nchw(images)
    if not 0.0 <= pad_value <= 1.0:
        raise ValueError(f"pad_value: expected a value in [0, 1], got {pad_value!r}")
    return _write_png(_make_grid(images, nrow, padding, pad_value), path)
