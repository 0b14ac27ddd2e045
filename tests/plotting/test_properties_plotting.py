"""Property-based tests of the pictures: image grids, reconstructions, interpolations, the latent
manifold, the charts, and the errors for bad arguments.

Random image counts, sizes, channels, dtypes, paddings and scales (hypothesis, derandomized for
reproducible CI). Every grid PNG is read back with pillow and compared pixel by pixel with a
brute-force grid built here from the docstrings' formulas: tile ``i`` at row ``i // ncol`` and
column ``i % ncol``, 8-bit values ``round(255 * v)``, padding pixels of ``pad_value``, the
documented picture size. The manifold's latents are checked against ``scipy.stats.norm.ppf``,
the interpolation's ends against the model's own decoding of the encoded ends, and the charts'
plotted data (read from the matplotlib figure as it is saved) against their inputs. Bad
arguments must raise the documented errors, naming the argument and the value received, and
write nothing.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from PIL import Image
from scipy.stats import norm
from torch import Tensor, nn

from gentorch.plotting import (
    save_histogram,
    save_image_grid,
    save_interpolation,
    save_latent_manifold,
    save_latent_scatter,
    save_line_plot,
    save_loss_curves,
    save_reconstructions,
)
from gentorch.training import History

_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)
# matplotlib takes ~0.1-0.3 s to draw and save one figure: few chart examples.
_CHART_SETTINGS = settings(max_examples=6, deadline=None, derandomize=True)

_FLOATS = (torch.float16, torch.float32, torch.float64)

# Values in [0, 1]: anything, the ends, and the near-ties (k + 1/2) / 255, where round(255 * v)
# is decided by the last bits of v (which depend on the dtype v is cast to).
_unit = st.one_of(
    st.floats(0.0, 1.0),
    st.sampled_from([0.0, 1.0]),
    st.integers(0, 254).map(lambda k: (k + 0.5) / 255),
)

Array = np.ndarray[Any, Any]


@contextlib.contextmanager
def _folder() -> Iterator[Path]:
    """A fresh empty folder (hypothesis runs many examples in one test: no tmp_path)."""
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def _files(folder: Path) -> list[str]:
    """Everything under ``folder`` (files and folders), as sorted relative paths."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _read_png(path: Path) -> tuple[str, Array]:
    """The PNG's mode and its pixels as a ``(C, H, W)`` int array."""
    with Image.open(path) as img:
        assert img.format == "PNG"
        mode = img.mode
        pixels = np.asarray(img).astype(np.int64)
    return mode, pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _canvas(tiles: Array, ncol: int, padding: int, fill: float) -> Array:
    """The documented layout, one pixel at a time: pixel ``(y, x)`` of tile ``i`` at
    ``(p + r (H + p) + y, p + c (W + p) + x)`` with ``r, c = divmod(i, ncol)``; ``fill``
    elsewhere. Values are copied as they are (no 8-bit conversion)."""
    n, c, h, w = tiles.shape
    p, rows = padding, math.ceil(n / ncol)
    out = np.full((c, rows * (h + p) + p, ncol * (w + p) + p), fill, dtype=np.float64)
    for i in range(n):
        r, col = divmod(i, ncol)
        for y in range(h):
            for x in range(w):
                out[:, p + r * (h + p) + y, p + col * (w + p) + x] = tiles[i, :, y, x]
    return out


def _levels(values: Array) -> Array:
    """The documented 8-bit values ``round(255 * v)`` (Python's round: halves to even)."""
    return np.array([round(255 * float(v)) for v in values.ravel()], dtype=np.int64).reshape(
        values.shape
    )


def _scaled(pixels: Array, scale: int) -> Array:
    """Each pixel of a ``(C, H, W)`` picture as a ``scale x scale`` block."""
    return pixels.repeat(scale, axis=1).repeat(scale, axis=2)


def _reference_grid(tiles: Array, ncol: int, padding: int, pad_value: float, scale: int) -> Array:
    return _scaled(_levels(_canvas(tiles, ncol, padding, pad_value)), scale)


@st.composite
def _images(draw: st.DrawFn, max_n: int = 12, max_side: int = 5) -> Tensor:
    """``(N, C, H, W)`` images in [0, 1] of a random dtype (values rounded to that dtype)."""
    shape = (
        draw(st.integers(1, max_n)),
        draw(st.sampled_from((1, 3))),
        draw(st.integers(1, max_side)),
        draw(st.integers(1, max_side)),
    )
    values = draw(hnp.arrays(np.float64, shape, elements=_unit))
    return torch.from_numpy(values).to(draw(st.sampled_from(_FLOATS)))


# --- save_image_grid ---------------------------------------------------------------------------


@_SETTINGS
@given(
    images=_images(),
    nrow=st.none() | st.integers(1, 14),
    padding=st.integers(0, 3),
    pad_value=_unit,
    scale=st.integers(1, 3),
    three_dim=st.booleans(),
    as_str=st.booleans(),
)
def test_image_grid_matches_a_brute_force_grid(
    images: Tensor,
    nrow: int | None,
    padding: int,
    pad_value: float,
    scale: int,
    three_dim: bool,
    as_str: bool,
) -> None:
    n, c, h, w = images.shape
    given_images = images[:, 0] if three_dim and c == 1 else images  # (N, H, W) grayscale
    before = given_images.clone()
    with _folder() as tmp:
        target = tmp / "grid.png"
        path = save_image_grid(
            given_images,
            str(target) if as_str else target,
            nrow=nrow,
            padding=padding,
            pad_value=pad_value,
            scale=scale,
        )
        assert path == target
        assert _files(tmp) == ["grid.png"]
        mode, pixels = _read_png(path)
    assert torch.equal(given_images, before)  # the caller's images are left alone
    ncol = min(math.ceil(math.sqrt(n)) if nrow is None else nrow, n)
    rows = math.ceil(n / ncol)
    assert mode == ("L" if c == 1 else "RGB")
    # The documented size: (ncol (W + p) + p, rows (H + p) + p) pixels, times scale.
    p = padding
    assert pixels.shape == (c, scale * (rows * (h + p) + p), scale * (ncol * (w + p) + p))
    expected = _reference_grid(images.double().numpy(), ncol, padding, pad_value, scale)
    np.testing.assert_array_equal(pixels, expected)


# --- save_reconstructions ----------------------------------------------------------------------


@_SETTINGS
@given(
    data=st.data(),
    nrow=st.integers(1, 8),
    padding=st.integers(0, 2),
    scale=st.integers(1, 2),
    flat=st.booleans(),
    short_shape=st.booleans(),
)
def test_reconstructions_sit_below_their_inputs(
    data: st.DataObject, nrow: int, padding: int, scale: int, flat: bool, short_shape: bool
) -> None:
    x = data.draw(_images(max_n=10, max_side=4), label="inputs")
    n, c, h, w = x.shape
    values = data.draw(hnp.arrays(np.float64, (n, c, h, w), elements=_unit), label="recon")
    y = torch.from_numpy(values).to(data.draw(st.sampled_from(_FLOATS), label="recon dtype"))
    image_shape = (h, w) if c == 1 and short_shape else (c, h, w)
    # (N, D): each image flattened in (C, H, W) order, as x.view(N, -1) gives
    given_x, given_y = (x.reshape(n, -1), y.reshape(n, -1)) if flat else (x, y)
    with _folder() as tmp:
        path = save_reconstructions(
            given_x, given_y, tmp / "r.png", image_shape, nrow=nrow, padding=padding, scale=scale
        )
        assert path == tmp / "r.png"
        mode, pixels = _read_png(path)
    assert mode == ("L" if c == 1 else "RGB")
    # Row 2r: inputs r * ncol ... (r + 1) * ncol - 1; row 2r + 1: their reconstructions;
    # slots past the last image are blank (0, like the padding).
    ncol = min(nrow, n)
    rows = math.ceil(n / ncol)
    tiles = np.zeros((2 * rows * ncol, c, h, w))
    for i in range(n):
        r, col = divmod(i, ncol)
        tiles[2 * r * ncol + col] = x[i].double().numpy()
        tiles[(2 * r + 1) * ncol + col] = y[i].double().numpy()
    np.testing.assert_array_equal(pixels, _reference_grid(tiles, ncol, padding, 0.0, scale))


# --- save_interpolation ------------------------------------------------------------------------


class _ElementwiseVAE(nn.Module):
    """``encode(x) = (4 x[:, :L] - 2, 0)``; ``decode(z)[:, j] = w_j z[:, j mod L] + b_j``.

    Elementwise (no matrix product), so a row decodes to the same bits alone or in any batch:
    the pictures' decoded ends can be compared exactly with the model's own decoding.
    """

    def __init__(self, weight: Array, bias: Array, latent_dim: int, likelihood: str) -> None:
        super().__init__()
        self.likelihood = likelihood
        self.latent_dim = latent_dim
        self.weight = nn.Parameter(torch.from_numpy(weight).float())
        self.bias = nn.Parameter(torch.from_numpy(bias).float())
        self.index = torch.arange(weight.shape[0]) % latent_dim

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu = 4 * x[:, : self.latent_dim] - 2
        return mu, torch.zeros_like(mu)

    def decode(self, z: Tensor) -> Tensor:
        return z[:, self.index] * self.weight + self.bias


def _means(model: _ElementwiseVAE, out: Tensor | Array) -> Any:
    """The documented display values: sigmoid of Bernoulli logits, Gaussian means clipped."""
    if isinstance(out, Tensor):
        return torch.sigmoid(out) if model.likelihood == "bernoulli" else out.clamp(0, 1)
    return 1 / (1 + np.exp(-out)) if model.likelihood == "bernoulli" else np.clip(out, 0, 1)


@_SETTINGS
@given(
    data=st.data(),
    steps=st.integers(2, 6),
    padding=st.integers(0, 2),
    likelihood=st.sampled_from(["gaussian", "bernoulli"]),
    training=st.booleans(),
)
def test_interpolation_rows_run_from_x_a_to_x_b(
    data: st.DataObject, steps: int, padding: int, likelihood: str, training: bool
) -> None:
    b, c = data.draw(st.integers(1, 3), label="pairs"), data.draw(st.sampled_from((1, 3)))
    h, w = data.draw(st.integers(1, 3), label="H"), data.draw(st.integers(1, 3), label="W")
    d = c * h * w
    latent_dim = data.draw(st.integers(1, min(3, d)), label="latent_dim")
    x_a, x_b = (
        torch.from_numpy(data.draw(hnp.arrays(np.float64, (b, d), elements=_unit))).float()
        for _ in range(2)
    )
    weight = data.draw(hnp.arrays(np.float64, d, elements=st.floats(-3, 3)), label="w")
    bias = data.draw(hnp.arrays(np.float64, d, elements=st.floats(-1, 2)), label="b")
    model = _ElementwiseVAE(weight, bias, latent_dim, likelihood).train(training)
    one = b == 1 and data.draw(st.booleans(), label="1-D ends")  # x_a: (D,), one row
    with _folder() as tmp:
        path = save_interpolation(
            model,
            x_a[0] if one else x_a,
            x_b[0] if one else x_b,
            tmp / "i.png",
            (c, h, w),
            steps,
            padding=padding,
        )
        mode, pixels = _read_png(path)
    assert model.training == training  # the model's mode is restored
    assert mode == ("L" if c == 1 else "RGB")
    p = padding
    assert pixels.shape == (c, b * (h + p) + p, (steps + 2) * (w + p) + p)
    # cells[r][k]: the image in row r, column k
    cells = [
        [
            pixels[:, p + r * (h + p) : (r + 1) * (h + p), p + k * (w + p) : (k + 1) * (w + p)]
            for k in range(steps + 2)
        ]
        for r in range(b)
    ]
    with torch.no_grad():  # the model's own decoding of the encoded ends, in eval mode
        model.eval()
        ends = [_means(model, model.decode(model.encode(x)[0])) for x in (x_a, x_b)]
    t = np.linspace(0.0, 1.0, steps)[:, None]
    for r in range(b):
        # Each row shows x_a, the steps decoded means, x_b; the decoded t = 0 and t = 1 ends are
        # exactly decode(mu(x_a)) and decode(mu(x_b)): z_0 = mu_a, z_1 = mu_b.
        np.testing.assert_array_equal(cells[r][0], _levels(x_a[r].double().view(c, h, w).numpy()))
        np.testing.assert_array_equal(cells[r][-1], _levels(x_b[r].double().view(c, h, w).numpy()))
        np.testing.assert_array_equal(
            cells[r][1], _levels(ends[0][r].double().view(c, h, w).numpy())
        )
        last = _levels(ends[1][r].double().view(c, h, w).numpy())
        np.testing.assert_array_equal(cells[r][steps], last)
        # z_t = (1 - t) mu_a + t mu_b, decoded here in float64. The model works in float32:
        # mu to ~2e-7, z_t to ~1e-6, outputs (|w| <= 3) to ~1e-5, display values (sigmoid or
        # clip, slope <= 1) too: 255 * 1e-5 < 0.01 of a level beyond the rounding's 0.5.
        mu_a = 4 * x_a[r, :latent_dim].double().numpy() - 2
        mu_b = 4 * x_b[r, :latent_dim].double().numpy() - 2
        z = (1 - t) * mu_a + t * mu_b  # (steps, L)
        expected = 255 * _means(model, z[:, np.arange(d) % latent_dim] * weight + bias)
        for k in range(steps):
            got = cells[r][k + 1].reshape(-1)
            assert np.abs(got - expected[k]).max() <= 0.51


# --- save_latent_manifold ----------------------------------------------------------------------


class _RecordingVAE(nn.Module):
    """``latent_dim = 2``; ``decode(z)`` records ``z`` and draws pixel ``j`` (in (C, H, W)
    order) as ``1/2 + z_{j mod 2} / 8`` (as Bernoulli logits, or Gaussian means)."""

    latent_dim = 2

    def __init__(self, d: int, likelihood: str, dtype: torch.dtype) -> None:
        super().__init__()
        self.likelihood = likelihood
        self.one = nn.Parameter(torch.ones((), dtype=dtype))  # the model's dtype
        self.index = torch.arange(d) % 2
        self.seen: list[Tensor] = []

    def decode(self, z: Tensor) -> Tensor:
        self.seen.append(z.detach().clone())
        means = 0.5 + z[:, self.index] / 8 * self.one
        return torch.logit(means) if self.likelihood == "bernoulli" else means


@st.composite
def _spans(draw: st.DrawFn) -> tuple[float, float]:
    low, high = sorted(draw(st.lists(st.floats(1e-3, 0.999), min_size=2, max_size=2)))
    return (low, high) if low < high else (1e-3, 0.999)


@_SETTINGS
@given(
    n=st.integers(1, 6),
    span=_spans(),
    c=st.sampled_from((1, 3)),
    hw=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.integers(0, 2),
    pad_value=_unit,
    scale=st.integers(1, 2),
    likelihood=st.sampled_from(["gaussian", "bernoulli"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_latent_manifold_decodes_gaussian_quantiles(
    n: int,
    span: tuple[float, float],
    c: int,
    hw: tuple[int, int],
    padding: int,
    pad_value: float,
    scale: int,
    likelihood: str,
    dtype: torch.dtype,
) -> None:
    (h, w), d = hw, c * hw[0] * hw[1]
    model = _RecordingVAE(d, likelihood, dtype)
    image_shape = (c, h, w)
    with _folder() as tmp:
        path = save_latent_manifold(
            model,
            tmp / "m.png",
            image_shape,
            n,
            span,
            padding=padding,
            pad_value=pad_value,
            scale=scale,
        )
        mode, pixels = _read_png(path)
    assert mode == ("L" if c == 1 else "RGB")
    # z = Phi^{-1}(p), p evenly spaced over span: scipy's quantiles.
    q = norm.ppf(np.linspace(span[0], span[1], n))
    z = torch.cat(model.seen).double().numpy()
    assert z.shape == (n * n, 2)
    # float64: linspace and ndtri agree with numpy and scipy to a few ulps of p, times
    # dz/dp <= 1 / phi(Phi^{-1}(1e-3)) ~ 300: below 1e-12. float32: the cast's half ulp, 6e-8.
    rtol = 1e-12 if dtype == torch.float64 else 1.2e-7
    for axis in range(2):  # every (z_1, z_2) pair of the grid, in whatever order decoded
        np.testing.assert_allclose(np.sort(z[:, axis]), np.repeat(q, n), rtol=rtol, atol=1e-12)
    # Tile (r, c) shows z_1 = q[c] (growing left to right) and z_2 = q[n - 1 - r] (growing
    # bottom to top).
    tiles = np.zeros((n * n, d))
    for r in range(n):
        for col in range(n):
            tiles[r * n + col] = 0.5 + np.array([q[col], q[n - 1 - r]])[np.arange(d) % 2] / 8
    canvas = _scaled(_canvas(tiles.reshape(n * n, *image_shape), n, padding, math.nan), scale)
    pad = np.isnan(canvas)
    assert pixels.shape == canvas.shape
    # padding pixels: exactly round(255 * pad_value)
    assert (pixels[pad] == round(255 * pad_value)).all()
    # Tiles: the float32 model adds ~1e-6 to z (and the logit / sigmoid round trip ~1e-7), i.e.
    # ~1e-5 of a level after / 8 and * 255: 0.01 beyond the rounding's 0.5.
    assert np.abs(pixels[~pad] - 255 * canvas[~pad]).max() <= 0.51


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    bad=st.one_of(
        st.tuples(st.floats(-1, 0), st.floats(0, 2)),
        st.tuples(st.floats(0, 2), st.floats(1, 2)),
        st.tuples(st.floats(0, 1), st.floats(0, 1)).filter(lambda s: s[0] >= s[1]),
        st.tuples(st.just(math.nan), st.just(0.5)),
    ),
    latent_dim=st.integers(1, 5).filter(lambda k: k != 2),
    n=st.integers(-3, 0),
)
def test_latent_manifold_refuses_bad_arguments(
    bad: tuple[float, float], latent_dim: int, n: int
) -> None:
    model = _RecordingVAE(4, "gaussian", torch.float32)
    with _folder() as tmp:
        path = tmp / "sub" / "m.png"
        span_message = f"span: expected probabilities 0 < low < high < 1, got {bad!r}"
        with pytest.raises(ValueError, match=re.escape(span_message)):
            save_latent_manifold(model, path, (2, 2), 3, bad)
        with pytest.raises(ValueError, match=re.escape(f"n: expected a positive integer, got {n}")):
            save_latent_manifold(model, path, (2, 2), n)
        model.latent_dim = latent_dim
        with pytest.raises(
            ValueError, match=f"needs a 2-D latent space, got latent_dim={latent_dim}$"
        ):
            save_latent_manifold(model, path, (2, 2), 3)
        assert _files(tmp) == []
        assert model.seen == []  # refused before decoding anything


# Values that the pictures got wrong when pad_value and reconstructions were rounded to the
# images' dtype first: 0.3 in float16 is 0.30005 (77, not 76); 255 * 0.5470588235294117 is
# 139.49999999999997 (139), but 139.5 in float32, rounded to even (140).
@example(value=0.3, dtype=torch.float16, other=torch.float16, picture="grid")
@example(value=0.5470588235294117, dtype=torch.float32, other=torch.float32, picture="manifold")
@example(value=0.3, dtype=torch.float16, other=torch.float64, picture="reconstructions")
@_SETTINGS
@given(
    value=_unit,
    dtype=st.sampled_from(_FLOATS),
    other=st.sampled_from(_FLOATS),
    picture=st.sampled_from(["grid", "reconstructions", "manifold"]),
)
def test_eight_bit_values_do_not_depend_on_the_other_tensors_dtype(
    value: float, dtype: torch.dtype, other: torch.dtype, picture: str
) -> None:
    # round(255 * v) of each value as given: a pad_value is not first rounded to the images'
    # dtype, nor reconstructions to the inputs' dtype (e.g. pad_value 0.3 is 76, not 77).
    images = torch.full((2, 1, 2, 2), 0.5, dtype=dtype)
    with _folder() as tmp:
        path = tmp / "p.png"
        if picture == "grid":
            save_image_grid(images, path, nrow=2, padding=1, pad_value=value)
        elif picture == "manifold":
            model_dtype = torch.float64 if dtype == torch.float64 else torch.float32
            model = _RecordingVAE(4, "gaussian", model_dtype)
            save_latent_manifold(model, path, (2, 2), 2, padding=1, pad_value=value)
        else:
            reconstructions = torch.full((2, 4), value, dtype=other)
            save_reconstructions(images, reconstructions, path, (2, 2), padding=1)
            value = float(reconstructions[0, 0])  # the value given, in its own dtype
        _, pixels = _read_png(path)
    if picture == "reconstructions":  # row 2: the reconstructions
        np.testing.assert_array_equal(pixels[0, 4:6, 1:3], round(255 * value))
    else:  # the padding around the first tile
        np.testing.assert_array_equal(pixels[0, 0, :], round(255 * value))
        np.testing.assert_array_equal(pixels[0, :, 0], round(255 * value))


@settings(max_examples=10, deadline=None, derandomize=True)
@given(
    pixel=st.integers(0, 3),
    likelihood=st.sampled_from(["gaussian", "bernoulli"]),
    picture=st.sampled_from(["interpolation", "manifold"]),
)
def test_a_model_decoding_nan_is_named(pixel: int, likelihood: str, picture: str) -> None:
    # A diverged model: the error names the model's decoding, not an argument never passed.
    weight = np.ones(4)
    weight[pixel] = math.nan
    model = _ElementwiseVAE(weight, np.zeros(4), 2, likelihood)
    recording = _RecordingVAE(4, likelihood, torch.float32)
    with torch.no_grad():
        recording.one.fill_(math.nan)
    with _folder() as tmp:
        path = tmp / "p.png"
        call: Callable[[], Path] = (
            (lambda: save_interpolation(model, torch.rand(2, 4), torch.rand(2, 4), path, (2, 2)))
            if picture == "interpolation"
            else (lambda: save_latent_manifold(recording, path, (2, 2), 3))
        )
        with pytest.raises(ValueError, match=r"^model\.decode\(z\): contains NaN or Inf values$"):
            call()
        assert _files(tmp) == []


# --- bad pictures: errors naming the argument, nothing written ---------------------------------

_PICTURE_ARGUMENTS = ("images", "inputs", "reconstructions", "x_a", "x_b")


def _draw_picture(name: str, bad: Tensor, good: Tensor, path: Path) -> None:
    """Call the function that takes ``name``: ``bad`` for it, ``good`` for the other images."""
    shape = tuple(good.shape[1:])
    if name == "images":
        save_image_grid(bad, path)
    elif name in ("inputs", "reconstructions"):
        pair = (bad, good) if name == "inputs" else (good, bad)
        save_reconstructions(*pair, path, shape)
    else:
        d = math.prod(shape)
        model = _ElementwiseVAE(np.ones(d), np.zeros(d), 1, "bernoulli")
        pair = (bad, good) if name == "x_a" else (good, bad)
        save_interpolation(model, *pair, path, shape)


@_SETTINGS
@given(
    good=_images(max_n=4, max_side=3),
    name=st.sampled_from(_PICTURE_ARGUMENTS),
    where=st.integers(0, 10**6),
    value=st.one_of(
        st.floats(-1000, -0.01),
        st.floats(1.01, 1000),
        st.sampled_from([math.nan, math.inf, -math.inf]),
    ),
)
def test_values_outside_the_unit_interval_are_refused(
    good: Tensor, name: str, where: int, value: float
) -> None:
    bad = good.clone()
    bad.view(-1)[where % bad.numel()] = value  # (float16 keeps these values out of [0, 1])
    values = bad.double()
    if not bool(torch.isfinite(values).all()):
        message = f"{name}: contains NaN or Inf values"
    else:
        low, high = float(values.min()), float(values.max())
        message = f"{name}: expected values in [0, 1], got range [{low:.4g}, {high:.4g}]"
    with _folder() as tmp:
        with pytest.raises(ValueError, match=re.escape(message)):
            _draw_picture(name, bad, good, tmp / "sub" / "p.png")
        assert _files(tmp) == []  # neither the file nor its folder


@_SETTINGS
@given(
    good=_images(max_n=4, max_side=3),
    name=st.sampled_from(_PICTURE_ARGUMENTS),
    dtype=st.sampled_from([torch.uint8, torch.int32, torch.int64, torch.bool]),
)
def test_integer_pictures_are_refused(good: Tensor, name: str, dtype: torch.dtype) -> None:
    # Documented: float values in [0, 1]; 8-bit images (0..255) are not silently reinterpreted.
    bad = (good * 255).round().to(dtype)
    with _folder() as tmp:
        message = f"{name}: expected a floating-point tensor in [0, 1], got {dtype}"
        with pytest.raises(TypeError, match=re.escape(message)):
            _draw_picture(name, bad, good.float(), tmp / "p.png")
        assert _files(tmp) == []


def _valid_grid_shape(shape: tuple[int, ...]) -> bool:
    if len(shape) == 3:
        return min(shape) > 0
    return len(shape) == 4 and shape[1] in (1, 3) and min(shape) > 0


@_SETTINGS
@given(
    shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4).filter(
        lambda s: not _valid_grid_shape(s)
    )
)
def test_image_grid_names_the_shape_it_refuses(shape: tuple[int, ...]) -> None:
    with _folder() as tmp:
        with pytest.raises(ValueError, match=rf"^images: expected .*got {re.escape(str(shape))}"):
            save_image_grid(torch.zeros(shape), tmp / "g.png")
        assert _files(tmp) == []


@_SETTINGS
@given(
    image_shape=st.tuples(st.sampled_from((1, 3)), st.integers(1, 4), st.integers(1, 4)),
    n=st.integers(0, 3),
    data=st.data(),
)
def test_reconstructions_name_the_shape_they_refuse(
    image_shape: tuple[int, int, int], n: int, data: st.DataObject
) -> None:
    d = math.prod(image_shape)
    shape = data.draw(
        st.one_of(
            st.just((n, d)),  # flattened images of the right size
            st.just((n, *image_shape)),  # images of the right shape
            st.tuples(st.just(n), st.integers(0, 60)),  # flat rows of any length
            st.tuples(st.just(n), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
        ),
        label="inputs shape",
    )
    with _folder() as tmp:
        if shape[1:] not in ((d,), image_shape):
            message = (
                f"inputs: expected shape (N, {d}) or (N, {', '.join(map(str, image_shape))}) "
                f"for image_shape {image_shape}, got {shape}"
            )
        elif n == 0:  # the shape the caller gave, not the (0, C, H, W) it was turned into
            message = f"inputs: expected at least one image, got {shape}"
        else:
            x = torch.rand(shape)
            assert save_reconstructions(x, x, tmp / "r.png", image_shape) == tmp / "r.png"
            return
        good = torch.rand(max(n, 1), d)
        with pytest.raises(ValueError, match=re.escape(message)):
            save_reconstructions(torch.rand(shape), good, tmp / "r.png", image_shape)
        assert _files(tmp) == []


@_SETTINGS
@given(
    setting=st.one_of(
        st.tuples(st.just("nrow"), st.integers(-3, 0)),
        st.tuples(st.just("padding"), st.integers(-3, -1)),
        st.tuples(st.just("pad_value"), st.floats(-10, -1e-9) | st.floats(1 + 1e-9, 10)),
        st.tuples(st.just("scale"), st.integers(-3, 0)),
    ),
    picture=st.sampled_from(["grid", "reconstructions", "manifold"]),
)
def test_grid_settings_outside_their_range_are_refused(
    setting: tuple[str, float], picture: str
) -> None:
    name, value = setting
    messages = {
        "nrow": f"nrow: expected a positive integer (images per row), got {value!r}",
        "padding": f"padding: expected a non-negative int, got {value!r}",
        "pad_value": f"pad_value: expected a value in [0, 1], got {value!r}",
        "scale": f"scale: expected a positive integer (pixel magnification), got {value!r}",
    }
    images = torch.rand(4, 1, 2, 2)
    model = _RecordingVAE(4, "gaussian", torch.float32)
    with _folder() as tmp:
        path = tmp / "sub" / "p.png"
        kwargs: dict[str, Any] = {name: value}
        call: Callable[[], Path]
        if picture == "grid":
            call = functools.partial(save_image_grid, images, path, **kwargs)
        elif picture == "reconstructions" and name != "pad_value":
            call = functools.partial(save_reconstructions, images, images, path, (2, 2), **kwargs)
        elif name != "nrow":
            call = functools.partial(save_latent_manifold, model, path, (2, 2), 3, **kwargs)
        else:
            return  # the manifold has n, not nrow; reconstructions have no pad_value
        with pytest.raises(ValueError, match=re.escape(messages[name])):
            call()
        assert _files(tmp) == []


# --- output paths ------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    depth=st.integers(0, 3),
    suffix=st.sampled_from([".png", ".PNG", ".Png"]),
    as_str=st.booleans(),
    existing=st.booleans(),
    picture=st.sampled_from(["grid", "reconstructions", "interpolation", "manifold"]),
)
def test_the_returned_path_is_the_png_written(
    depth: int, suffix: str, as_str: bool, existing: bool, picture: str
) -> None:
    images = torch.rand(4, 1, 2, 2)
    with _folder() as tmp:
        folders = [f"d{i}" for i in range(depth)]
        target = tmp.joinpath(*folders, "picture" + suffix)
        if existing:  # an existing file is replaced
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"old")
        given_path: str | Path = str(target) if as_str else target
        if picture == "grid":
            path = save_image_grid(images, given_path)
        elif picture == "reconstructions":
            path = save_reconstructions(images, images, given_path, (2, 2))
        elif picture == "interpolation":
            model = _ElementwiseVAE(np.ones(4), np.zeros(4), 2, "gaussian")
            path = save_interpolation(model, images[:2], images[2:], given_path, (2, 2))
        else:
            recording = _RecordingVAE(4, "gaussian", torch.float32)
            path = save_latent_manifold(recording, given_path, (2, 2), 3)
        assert isinstance(path, Path)
        assert path == target
        # Parent folders created; nothing else left behind (no temporary files).
        chain = ["/".join(folders[: i + 1]) for i in range(depth)]
        assert _files(tmp) == sorted([*chain, "/".join([*folders, "picture" + suffix])])
        assert _read_png(path)[0] == "L"


@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    depth=st.integers(0, 2),
    name=st.sampled_from(["grid.jpg", "grid", "grid.png.bak", "grid.pdf", "png"]),
)
def test_non_png_names_are_refused_before_anything_is_created(depth: int, name: str) -> None:
    with _folder() as tmp:
        target = tmp.joinpath(*[f"d{i}" for i in range(depth)], name)
        message = (
            "path: expected a file name ending in .png (the picture is written as PNG), "
            f"got {str(target)!r}"
        )
        with pytest.raises(ValueError, match=re.escape(message)):
            save_image_grid(torch.rand(2, 2, 2), target)
        assert _files(tmp) == []


# --- charts: the plotted data, read from the figure as it is saved ------------------------------


@contextlib.contextmanager
def _saved_figures() -> Iterator[list[Figure]]:
    """The matplotlib figures saved inside the block (still written to their files)."""
    saved: list[Figure] = []
    original = Figure.savefig

    def savefig(self: Figure, *args: Any, **kwargs: Any) -> None:
        saved.append(self)
        original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "savefig", savefig)
        yield saved


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


_gappy = st.one_of(
    st.floats(0.01, 1e3), st.sampled_from([math.nan, math.inf, -math.inf])
)  # positive values (for logy) and non-finite ones (a diverged run)
_names = st.text(alphabet="abcxyz", min_size=1, max_size=4)


@_CHART_SETTINGS
@given(data=st.data(), logy=st.booleans(), as_tensor=st.booleans())
def test_line_plot_draws_every_series_with_gaps(
    data: st.DataObject, logy: bool, as_tensor: bool
) -> None:
    t = data.draw(st.integers(1, 6), label="T")
    xs = data.draw(st.lists(st.integers(-50, 50), min_size=t, max_size=t, unique=True), label="xs")
    names = data.draw(st.lists(_names, min_size=1, max_size=3, unique=True), label="names")
    series: dict[str, Sequence[float] | Tensor] = {}
    for name in names:
        values = data.draw(st.lists(_gappy, min_size=t, max_size=t), label=name)
        series[name] = torch.tensor(values, dtype=torch.float64) if as_tensor else values
    with _folder() as tmp, _saved_figures() as figures:
        path = save_line_plot(xs, series, tmp / "sub" / "l.png", logy=logy)
        assert path == tmp / "sub" / "l.png"
        assert _size(path) == (600, 400)  # 6 x 4 inches at 100 dpi
        (ax,) = figures[0].axes
        assert [line.get_label() for line in ax.get_lines()] == names
        for line, given_values in zip(ax.get_lines(), series.values(), strict=True):
            np.testing.assert_array_equal(line.get_xdata(), np.asarray(xs, dtype=np.float64))
            # the values; the non-finite ones may be drawn as NaN (a gap either way)
            y, drawn = np.asarray(given_values, dtype=np.float64), np.asarray(line.get_ydata())
            np.testing.assert_array_equal(np.isfinite(drawn), np.isfinite(y))
            np.testing.assert_array_equal(drawn[np.isfinite(y)], y[np.isfinite(y)])
        assert ax.get_yscale() == ("log" if logy else "linear")
        # Non-finite values are gaps: with every one of them NaN, the same picture.
        if any(not math.isfinite(v) for values in series.values() for v in values):
            nan_gaps = {
                k: [v if math.isfinite(v) else math.nan for v in values]
                for k, values in series.items()
            }
            same = save_line_plot(xs, nan_gaps, tmp / "nan.png", logy=logy)
            assert same.read_bytes() == path.read_bytes()


_SPLIT_PREFIXES = ("", "train_", "val_", "valid_", "test_", "train/", "val/", "test/")


@_CHART_SETTINGS
@given(
    data=st.data(),
    form=st.sampled_from(["dict", "rows", "History"]),
    with_epoch=st.booleans(),
)
def test_loss_curves_group_splits_into_panels(
    data: st.DataObject, form: str, with_epoch: bool
) -> None:
    t = data.draw(st.integers(1, 5), label="epochs")
    keys = data.draw(
        st.lists(
            st.tuples(st.sampled_from(_SPLIT_PREFIXES), st.sampled_from(["loss", "kl", "recon"])),
            min_size=1,
            max_size=5,
            unique=True,
        ),
        label="metrics",
    )
    columns = {
        prefix + base: data.draw(st.lists(_gappy, min_size=t, max_size=t), label=prefix + base)
        for prefix, base in keys
    }
    epochs = sorted(data.draw(st.lists(st.integers(0, 100), min_size=t, max_size=t, unique=True)))
    table: dict[str, Sequence[float]] = {**columns, **({"epoch": epochs} if with_epoch else {})}
    history: Any = table
    if form != "dict":
        # Per-epoch rows; a metric may be missing from some (validation every k epochs): a gap.
        flags = st.lists(st.booleans(), min_size=t, max_size=t)
        missing = {
            key: [False] * t if i == 0 else data.draw(flags, label=f"{key} missing")
            for i, key in enumerate(columns)
        }
        rows = [
            {k: v[i] for k, v in table.items() if not missing.get(k, [False] * t)[i]}
            for i in range(t)
        ]
        history = History(rows) if form == "History" else rows
        columns = {
            key: [math.nan if gone else v for v, gone in zip(values, missing[key], strict=True)]
            for key, values in columns.items()
            if not all(missing[key])  # a metric in no row is no column
        }
    # The documented panels: <split>_<name> and <split>/<name> share the panel <name>.
    panels: dict[str, set[str]] = {}
    for prefix, base in keys:
        if prefix + base in columns:
            panels.setdefault(base, set()).add(prefix + base)
    order = data.draw(st.none() | st.permutations(sorted(panels)), label="metrics")
    with _folder() as tmp, _saved_figures() as figures:
        save_loss_curves(history, tmp / "c.png", metrics=order)
        axes = figures[0].axes
    titles = [ax.get_title() for ax in axes]
    if order is None:
        assert sorted(titles) == sorted(panels)
    else:
        assert titles == list(order)
    x = np.asarray(epochs if with_epoch else range(1, t + 1), dtype=np.float64)
    for ax in axes:
        lines = {str(line.get_label()): line for line in ax.get_lines()}
        assert set(lines) == panels[ax.get_title()]
        for key, line in lines.items():
            np.testing.assert_array_equal(line.get_xdata(), x)
            np.testing.assert_array_equal(line.get_ydata(), np.asarray(columns[key]))


def _polygon_area(xy: Array) -> float:
    """Shoelace formula, shifted to the first vertex (less cancellation)."""
    x, y = (xy - xy[0]).T
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


@_CHART_SETTINGS
@given(
    data=st.data(),
    kind=st.sampled_from(["bool", "int", "str"]),
    bins=st.integers(1, 20),
)
def test_histograms_have_unit_area_and_shared_bins(
    data: st.DataObject, kind: str, bins: int
) -> None:
    n = data.draw(st.integers(1, 30), label="N")
    # On a grid of 1/4: distinct scores are far enough apart for 20 bins of finite width (closer
    # ones are refused, see the next test).
    quarters = st.integers(-400, 400).map(lambda k: k / 4)
    scores = data.draw(hnp.arrays(np.float64, n, elements=quarters), label="scores")
    labels: Any
    if kind == "bool":
        labels = torch.tensor(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    elif kind == "int":
        labels = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    else:
        labels = data.draw(st.lists(st.sampled_from(["cat", "dog", "owl"]), min_size=n, max_size=n))
    classes = np.unique(np.asarray(labels))
    named = data.draw(st.lists(st.sampled_from(classes.tolist()), unique=True), label="named")
    label_names = {value: f"class {value}!" for value in named}
    defaults = {False: "normal", True: "anomaly"} if kind == "bool" else {}
    name_of = {
        label_names.get(v, defaults.get(v, str(v))): v for v in classes.tolist()
    }  # legend name -> class; the documented defaults: "normal" / "anomaly" for booleans
    with _folder() as tmp, _saved_figures() as figures:
        save_histogram(
            torch.from_numpy(scores),
            labels,
            tmp / "h.png",
            bins=bins,
            label_names=label_names or None,
        )
        (ax,) = figures[0].axes
    patches = ax.patches
    assert sorted(str(p.get_label()) for p in patches) == sorted(name_of)
    edges: Array | None = None
    for patch in patches:
        xy = np.asarray(patch.get_xy())  # type: ignore[attr-defined]
        # Density: unit area. The heights are counts / (n_class * width) and the shoelace terms
        # are <= bins * max(count) / n_class <= 20 in size: float64 error ~1e-13.
        assert _polygon_area(xy) == pytest.approx(1.0, rel=1e-9)
        # Shared bins: every class's outline has the same bins + 1 edges, spanning the scores.
        own = np.unique(xy[:, 0])
        assert own.shape == (bins + 1,)
        assert own[0] <= scores.min()
        assert own[-1] >= scores.max()
        if edges is not None:
            np.testing.assert_array_equal(own, edges)
        edges = own
    assert edges is not None
    # Bins of equal width (to float64 rounding of the edges, ~1e-14 for |scores| <= 100)
    widths = np.diff(edges)
    np.testing.assert_allclose(widths, widths[0], rtol=1e-9)
    # Each class's outline is its own scores' histogram: over bin k, the height
    # count_k / (n_class * width_k) (count_k read with numpy on those same edges).
    for patch in patches:
        values = scores[np.asarray(labels) == name_of[str(patch.get_label())]]
        counts, _ = np.histogram(values, edges)
        xy = np.asarray(patch.get_xy())  # type: ignore[attr-defined]
        for k, height in enumerate(counts / (values.size * widths)):
            for edge in (edges[k], edges[k + 1]):  # the top of bin k runs from edge to edge
                tops = xy[xy[:, 0] == edge, 1]
                # the same float64 formula, maybe another order of operations: a few ulps
                assert np.isclose(tops, height, rtol=1e-12, atol=0).any(), (k, tops, height)


@_SETTINGS
@given(
    # |start| >= 1e-3: a density over a few subnormal steps would overflow to inf
    start=st.floats(1e-3, 1e6) | st.floats(-1e6, -1e-3),
    ulps=st.integers(1, 8),
    bins=st.integers(1, 60),
    n=st.integers(2, 10),
)
def test_histogram_of_scores_too_close_for_the_bins_names_them(
    start: float, ulps: int, bins: int, n: int
) -> None:
    # n finite scores within `ulps` float64 steps: bins + 1 distinct edges need bins <= ulps.
    steps = [start]
    for _ in range(ulps):
        steps.append(float(np.nextafter(steps[-1], math.inf)))
    scores = [steps[i % len(steps)] for i in range(n)]
    with _folder() as tmp:
        if bins == 1:  # one bin always fits: a picture
            assert save_histogram(scores, [0] * n, tmp / "h.png", bins=1) == tmp / "h.png"
        elif bins > ulps:
            low, high = min(scores), max(scores)
            message = f"scores: cannot split their range [{low!r}, {high!r}] into {bins} bins"
            with pytest.raises(ValueError, match=re.escape(message)):
                save_histogram(scores, [0] * n, tmp / "h.png", bins=bins)
            assert _files(tmp) == []


@_CHART_SETTINGS
@given(
    data=st.data(),
    dtype=st.sampled_from(_FLOATS),
    kind=st.sampled_from(["none", "int", "str"]),
    point_size=st.floats(0.5, 20),
)
def test_latent_scatter_draws_every_point_in_its_class(
    data: st.DataObject, dtype: torch.dtype, kind: str, point_size: float
) -> None:
    n = data.draw(st.integers(1, 25), label="N")
    mu = torch.from_numpy(
        data.draw(hnp.arrays(np.float64, (n, 2), elements=st.floats(-10, 10)), label="mu")
    ).to(dtype)
    points = mu.double().numpy()
    labels: Any = None
    if kind == "int":
        labels = torch.tensor(data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)))
    elif kind == "str":
        labels = data.draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    with _folder() as tmp, _saved_figures() as figures:
        path = save_latent_scatter(mu, labels, tmp / "s.png", point_size=point_size)
        assert _size(path) == (650, 600)  # 6.5 x 6 inches at 100 dpi
        (ax,) = figures[0].axes
    collections = ax.collections
    if labels is None:
        groups = {"": points}
    else:
        classes = np.asarray(labels)
        groups = {str(v): points[classes == v] for v in np.unique(classes).tolist()}
    assert len(collections) == len(groups)
    if labels is not None:  # one colour and one legend entry per class
        colours = {tuple(np.asarray(c.get_facecolor()).ravel()) for c in collections}
        assert len(colours) == len(groups)
        legend = ax.get_legend()
        assert legend is not None
        assert sorted(text.get_text() for text in legend.get_texts()) == sorted(groups)
    for collection in collections:
        label = "" if labels is None else str(collection.get_label())
        offsets = np.asarray(collection.get_offsets())
        # the same points (float64 of the codes), in any order
        np.testing.assert_array_equal(
            offsets[np.lexsort(offsets.T)], groups[label][np.lexsort(groups[label].T)]
        )
        np.testing.assert_array_equal(collection.get_sizes(), [point_size])  # type: ignore[attr-defined]


@_SETTINGS
@given(n=st.integers(1, 40), data=st.data())
def test_latent_scatter_names_the_points_it_cannot_draw(n: int, data: st.DataObject) -> None:
    bad_rows = data.draw(st.lists(st.integers(0, n - 1), min_size=1, unique=True), label="rows")
    mu = torch.zeros(n, 2)
    for row in bad_rows:
        mu[row, data.draw(st.integers(0, 1))] = data.draw(
            st.sampled_from([math.nan, math.inf, -math.inf])
        )
    first = min(bad_rows)
    message = f"mu: {len(bad_rows)} of {n} points are NaN or infinite (first at row {first})"
    with _folder() as tmp:
        with pytest.raises(ValueError, match=re.escape(message)):
            save_latent_scatter(mu, None, tmp / "s.png")
        assert _files(tmp) == []
