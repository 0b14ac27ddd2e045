"""Image grids written as PNG with pillow: samples, reconstructions, interpolations, manifolds."""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from gentorch._checks import check_positive_int, check_real
from gentorch.plotting._checks import check_int, check_png_path

__all__ = [
    "save_image_grid",
    "save_interpolation",
    "save_latent_manifold",
    "save_reconstructions",
]


def _as_nchw(images: object, name: str = "images") -> Tensor:
    """``images`` checked, as ``(N, C, H, W)`` float64 on the CPU: float64 holds every value of
    a narrower float and ``255 * v`` is rounded once, so the 8-bit values are ``round(255 * v)``
    of the values given, whatever their dtype."""
    if not isinstance(images, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(images).__name__}")
    shape = tuple(images.shape)
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"{name}: expected shape (N, C, H, W) with C in (1, 3), or (N, H, W), got {shape}"
        )
    if images.shape[0] == 0 or images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f"{name}: expected at least one non-empty image, got {shape}")
    if not images.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor in [0, 1], got {images.dtype}")
    images = images.detach().cpu().to(torch.float64)
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
    check_positive_int("nrow", nrow, "images per row")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
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


def _write_png(grid: Tensor, path: str | Path, scale: int = 1) -> Path:
    """Write a ``(C, H, W)`` image with values in [0, 1] as an 8-bit PNG, each pixel drawn as a
    ``scale x scale`` block."""
    check_positive_int("scale", scale, "pixel magnification")
    if scale > 1:
        grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # 8-bit value = round(255 * x), in float64 (float32 would round 255 * x to a tie first)
    pixels = (grid.to(torch.float64) * 255).round().to(torch.uint8).cpu().numpy()
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
    scale: int = 1,
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
        scale: draw each pixel as a ``scale x scale`` block (for small images such as 8x8
            digits).

    Returns:
        The path of the written PNG, of size ``(ncol (W + p) + p, rows (H + p) + p)`` pixels
        times ``scale``.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import torch
        >>> from PIL import Image
        >>> from gentorch.plotting import save_image_grid
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = save_image_grid(torch.rand(16, 1, 28, 28), Path(tmp) / "grid.png", nrow=4)
        ...     Image.open(path).size, Image.open(path).mode  # 4 (28 + 2) + 2 = 122
        ((122, 122), 'L')
    """
    path = check_png_path(path)
    images = _as_nchw(images)
    if not 0.0 <= check_real("pad_value", pad_value) <= 1.0:
        raise ValueError(f"pad_value: expected a value in [0, 1], got {pad_value!r}")
    return _write_png(_make_grid(images, nrow, padding, pad_value), path, scale)


def _image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    if (
        isinstance(image_shape, str)
        or not isinstance(image_shape, Sequence)
        or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in image_shape)
    ):
        raise TypeError(
            f"image_shape: expected a tuple of ints (C, H, W) or (H, W), got {image_shape!r}"
        )
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
        raise ValueError(
            f"image_shape: expected (C, H, W) with C in (1, 3), or (H, W), got {tuple(image_shape)}"
        )
    return shape


def _to_images(x: Tensor, image_shape: tuple[int, int, int], name: str) -> Tensor:
    """``(N, D)`` flattened or ``(N, C, H, W)`` examples as ``(N, C, H, W)`` images."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    d = image_shape[0] * image_shape[1] * image_shape[2]
    if (x.dim() == 2 and x.shape[1] == d) or (x.dim() == 4 and tuple(x.shape[1:]) == image_shape):
        if x.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one image, got {tuple(x.shape)}")
        return x.detach().reshape(x.shape[0], *image_shape)
    raise ValueError(
        f"{name}: expected shape (N, {d}) or (N, {', '.join(map(str, image_shape))}) for "
        f"image_shape {image_shape}, got {tuple(x.shape)}"
    )


def _model_reference(model: nn.Module) -> Tensor:
    """A parameter (or a CPU float32 scalar) giving the model's device and dtype."""
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter
    return torch.zeros(())


def _decoded_means(model: nn.Module, z: Tensor, labels: Tensor | None = None) -> Tensor:
    """Images ``(N, D)`` for latents ``(N, L)``: the mean of ``p(x | z)`` (``p(x | z, y)`` given
    ``labels: (N,)``), in [0, 1] for display.

    ``decode`` returns logits for a Bernoulli likelihood (mean = sigmoid) and means for a
    Gaussian one; Gaussian means outside ``[0, 1]`` are clipped, for the picture only.
    """
    likelihood = getattr(model, "likelihood", None)
    decode = getattr(model, "decode", None)
    if not callable(decode):
        raise TypeError(f"model: {type(model).__name__} has no method decode(), which this needs")
    out: Tensor = decode(z) if labels is None else decode(z, labels)
    if likelihood == "bernoulli":
        return torch.sigmoid(out)
    if likelihood == "gaussian":
        return out.clamp(0.0, 1.0)
    raise TypeError(
        f"model.likelihood: expected 'bernoulli' or 'gaussian' to turn decoder outputs into "
        f"images, got {likelihood!r}"
    )


def _check_conditional(model: nn.Module, name: str) -> None:
    """Refuse labels for one of gentorch's unconditional VAEs, whose decode() ignores them."""
    from gentorch.models import VAE

    if isinstance(model, VAE) and getattr(model, "num_classes", None) is None:
        raise ValueError(
            f"{name}: {type(model).__name__} is not conditional (no num_classes), so {name} "
            f"would be ignored; pass {name}=None or a ConditionalVAE"
        )


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def save_reconstructions(
    inputs: Tensor,
    reconstructions: Tensor,
    path: str | Path,
    image_shape: Sequence[int],
    *,
    nrow: int = 10,
    padding: int = 2,
    scale: int = 1,
) -> Path:
    """Write inputs and their reconstructions as alternating rows of a PNG grid.

    Row ``2r`` holds inputs ``r * nrow ... (r + 1) * nrow - 1`` and row ``2r + 1`` their
    reconstructions, so each reconstruction sits right below its input.

    Args:
        inputs: ``(N, D)`` flattened or ``(N, C, H, W)`` images in ``[0, 1]``.
        reconstructions: same shape as ``inputs`` (e.g. ``model.reconstruct(inputs)``).
        path: the PNG file to write.
        image_shape: ``(C, H, W)`` or ``(H, W)`` with ``C * H * W = D``.
        nrow: images per row.
        padding: pixels between images.
        scale: pixel magnification.

    Returns:
        The path of the written PNG.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import torch
        >>> from PIL import Image
        >>> from gentorch.models import VAE
        >>> from gentorch.plotting import save_reconstructions
        >>> x = torch.rand(8, 64)
        >>> recon = VAE(64, [32], 2).reconstruct(x)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = save_reconstructions(x, recon, Path(tmp) / "r.png", (8, 8), nrow=4)
        ...     Image.open(path).size  # 4 columns, 2 x 2 rows of 8x8 images, 2-pixel padding
        (42, 42)
    """
    path = check_png_path(path)
    shape = _image_shape(image_shape)
    a = _as_nchw(_to_images(inputs, shape, "inputs"), "inputs")
    b = _as_nchw(_to_images(reconstructions, shape, "reconstructions"), "reconstructions")
    if a.shape != b.shape:
        raise ValueError(
            f"inputs and reconstructions: expected the same number of images, got {a.shape[0]} "
            f"and {b.shape[0]}"
        )
    check_positive_int("nrow", nrow, "images per row")
    n = a.shape[0]
    ncol = min(nrow, n)
    rows = math.ceil(n / ncol)
    # Pad to whole rows with blank (pad-valued) images, then interleave input and output rows.
    blank = a.new_zeros((rows * ncol - n, *a.shape[1:]))
    a_rows = torch.cat([a, blank]).view(rows, 1, ncol, *a.shape[1:])
    b_rows = torch.cat([b.to(a.device, a.dtype), blank]).view(rows, 1, ncol, *a.shape[1:])
    tiles = torch.cat([a_rows, b_rows], dim=1).reshape(2 * rows * ncol, *a.shape[1:])
    return _write_png(_make_grid(tiles, ncol, padding, 0.0), path, scale)


def save_interpolation(
    model: nn.Module,
    x_a: Tensor,
    x_b: Tensor,
    path: str | Path,
    image_shape: Sequence[int],
    steps: int = 10,
    *,
    padding: int = 2,
    scale: int = 1,
    labels: Tensor | None = None,
) -> Path:
    """Decode a straight line in latent space between the encodings of two inputs.

    ``z_t = (1 - t) mu(x_a) + t mu(x_b)`` for ``steps`` values of ``t`` from 0 to 1, with
    ``mu`` the posterior mean; each row shows ``x_a``, the ``steps`` decoded means, ``x_b``.

    Args:
        model: a VAE with ``encode(x) -> (mu, logvar)``, ``decode(z)`` and a ``likelihood``
            attribute (``"bernoulli"``: decode gives logits; ``"gaussian"``: means, clipped to
            ``[0, 1]`` for display).
        x_a: ``(D,)`` or ``(B, D)`` start inputs in ``[0, 1]`` (one row per pair).
        x_b: same shape as ``x_a``: end inputs.
        path: the PNG file to write.
        image_shape: ``(C, H, W)`` or ``(H, W)`` with ``C * H * W = D``.
        steps: decoded images per row, ``>= 2`` (the ends ``t = 0`` and ``t = 1`` included).
        padding: pixels between images.
        scale: pixel magnification.
        labels: ``(B,)`` class labels for a conditional model: row ``i`` is encoded and decoded
            with ``labels[i]`` (``encode(x, y)``, ``decode(z, y)``), so its two ends should be
            of that class.

    Returns:
        The path of the written PNG, ``B`` rows of ``steps + 2`` images.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import torch
        >>> from PIL import Image
        >>> from gentorch.models import VAE
        >>> from gentorch.plotting import save_interpolation
        >>> model, x = VAE(64, [32], 2), torch.rand(6, 64)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = save_interpolation(model, x[:3], x[3:], Path(tmp) / "i.png", (8, 8), steps=8)
        ...     Image.open(path).size  # 3 rows of 8 + 2 images of 8x8, 2-pixel padding
        (102, 32)
    """
    path = check_png_path(path)
    shape = _image_shape(image_shape)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps: expected an int >= 2, got {steps!r}")
    for name, t in (("x_a", x_a), ("x_b", x_b)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if x_a.shape != x_b.shape:
        raise ValueError(
            f"x_a and x_b: expected the same shape, got {tuple(x_a.shape)} and {tuple(x_b.shape)}"
        )
    a = x_a.unsqueeze(0) if x_a.dim() == 1 else x_a
    b = x_b.unsqueeze(0) if x_b.dim() == 1 else x_b
    ends_a = _as_nchw(_to_images(a, shape, "x_a"), "x_a")
    ends_b = _as_nchw(_to_images(b, shape, "x_b"), "x_b")
    if labels is not None and (
        not isinstance(labels, Tensor) or tuple(labels.shape) != (a.shape[0],)
    ):
        got = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels: expected shape ({a.shape[0]},), one per row, got {got}")
    if labels is not None and (labels.is_floating_point() or labels.is_complex()):
        raise TypeError(
            f"labels: expected integer class labels, got dtype {labels.dtype} (e.g. labels.long())"
        )
    if labels is not None:
        _check_conditional(model, "labels")
    extra = () if labels is None else (labels,)
    encode = getattr(model, "encode", None)
    if not callable(encode):
        raise TypeError(f"model: {type(model).__name__} has no method encode(), which this needs")
    with _evaluating(model):
        mu_a, _ = encode(a.reshape(a.shape[0], -1), *extra)
        mu_b, _ = encode(b.reshape(b.shape[0], -1), *extra)
        t = torch.linspace(0.0, 1.0, steps, device=mu_a.device, dtype=mu_a.dtype).view(-1, 1, 1)
        # z_t = (1 - t) mu_a + t mu_b: (steps, B, L), decoded row by row: (B * steps, L)
        z = (1 - t) * mu_a + t * mu_b
        row_labels = None if labels is None else labels.repeat_interleave(steps)
        decoded = _decoded_means(model, z.transpose(0, 1).reshape(-1, mu_a.shape[-1]), row_labels)
    middle = _as_nchw(decoded.reshape(-1, *shape), "model.decode(z)")
    rows = torch.cat(
        [ends_a.unsqueeze(1), middle.view(a.shape[0], steps, *shape), ends_b.unsqueeze(1)], dim=1
    )
    tiles = rows.reshape(-1, *shape)
    return _write_png(_make_grid(tiles, steps + 2, padding, 0.0), path, scale)


def save_latent_manifold(
    model: nn.Module,
    path: str | Path,
    image_shape: Sequence[int],
    n: int = 20,
    span: tuple[float, float] = (0.05, 0.95),
    *,
    padding: int = 0,
    pad_value: float = 0.0,
    scale: int = 1,
    label: int | None = None,
) -> Path:
    """Decode an ``n x n`` grid of a 2-D latent space (Kingma & Welling, 2014, Fig. 4).

    The grid's coordinates are Gaussian quantiles, ``z = Phi^{-1}(p)`` for ``n`` probabilities
    ``p`` evenly spaced over ``span``, so that the grid covers the prior ``N(0, I)`` evenly in
    probability. ``z_1`` grows left to right and ``z_2`` bottom to top, as in a plot.

    Args:
        model: a VAE with ``latent_dim == 2``, ``decode(z)`` and a ``likelihood`` attribute.
        path: the PNG file to write.
        image_shape: ``(C, H, W)`` or ``(H, W)`` of one decoded image.
        n: images per side.
        span: the probability range ``(p_low, p_high)``, ``0 < p_low < p_high < 1``.
        padding: pixels between images (0, as in the paper's figure).
        pad_value: grey level of the padding, in [0, 1] (separates tiny images such as 8x8 digits).
        scale: pixel magnification.
        label: for a conditional model, the class every latent is decoded with
            (``decode(z, y)``).

    Returns:
        The path of the written PNG.

    Raises:
        ValueError: if ``model.latent_dim != 2``.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> from gentorch.models import VAE
        >>> from gentorch.plotting import save_latent_manifold
        >>> model = VAE(64, [32], 2)  # latent_dim = 2
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = save_latent_manifold(model, Path(tmp) / "m.png", (8, 8), n=5)
        ...     Image.open(path).size  # 5 x 5 images of 8x8, no padding
        (40, 40)
    """
    path = check_png_path(path)
    shape = _image_shape(image_shape)
    latent_dim = getattr(model, "latent_dim", None)
    if latent_dim != 2:
        raise ValueError(
            f"model: the latent manifold needs a 2-D latent space, got latent_dim={latent_dim!r}"
        )
    check_positive_int("n", n)
    if (
        isinstance(span, str)
        or not isinstance(span, Sequence)
        or len(span) != 2
        or not all(isinstance(p, numbers.Real) and not isinstance(p, bool) for p in span)
    ):
        raise TypeError(f"span: expected two probabilities (p_low, p_high), got {span!r}")
    low, high = float(span[0]), float(span[1])
    if not 0.0 < low < high < 1.0:
        raise ValueError(f"span: expected probabilities 0 < low < high < 1, got {span!r}")
    if not 0.0 <= check_real("pad_value", pad_value) <= 1.0:
        raise ValueError(f"pad_value: expected a value in [0, 1], got {pad_value!r}")
    if label is not None:
        check_int(label, "label", 0)
        _check_conditional(model, "label")
    ref = _model_reference(model)
    p = torch.linspace(low, high, n, device=ref.device, dtype=torch.float64)
    # z = Phi^{-1}(p): Gaussian quantiles
    z = torch.special.ndtri(p).to(ref.dtype)
    # Row r (top to bottom) has z_2 = z[n - 1 - r]; column c has z_1 = z[c].
    z2, z1 = torch.meshgrid(z.flip(0), z, indexing="ij")
    grid = torch.stack([z1, z2], dim=-1).reshape(n * n, 2)
    labels = None if label is None else torch.full((n * n,), label, device=ref.device)
    with _evaluating(model):
        images = _decoded_means(model, grid, labels)
    d = shape[0] * shape[1] * shape[2]
    if images.dim() != 2 or images.shape[1] != d:
        raise ValueError(
            f"image_shape: {shape} holds {d} values per image, but the model decodes each latent "
            f"to shape {tuple(images.shape[1:])}; pass the shape of the model's images"
        )
    tiles = _as_nchw(images.reshape(n * n, *shape), "model.decode(z)")
    return _write_png(_make_grid(tiles, n, padding, pad_value), path, scale)
