"""Charts written as PNG with matplotlib's Agg backend: curves, scatters and histograms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["save_line_plot"]


def _figure(
    ncols: int = 1, *, width: float = 6.0, height: float = 4.0
) -> tuple[Figure, list[Axes]]:
    # The object API with the Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * ncols, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = [figure.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return figure, axes


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _as_1d(values: Any, name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A 1-D float64 array from a tensor, array or sequence of numbers."""
    if isinstance(values, Tensor):
        values = values.detach().to(device="cpu", dtype=torch.float64).numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a 1-D sequence of numbers, got {values!r}") from None
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence, got shape {array.shape}")
    return array


def save_line_plot(
    xs: Sequence[float] | Tensor,
    series: Mapping[str, Sequence[float] | Tensor],
    path: str | Path,
    xlabel: str = "x",
    ylabel: str = "y",
    *,
    title: str | None = None,
    logy: bool = False,
) -> Path:
    """Plot one or more named curves over a shared x axis and write a PNG.

    Used for FLD over training time, spectral norms of layers over steps, and similar curves.
    Non-finite values (a diverged run) are drawn as gaps.

    Args:
        xs: ``(T,)`` x positions shared by every curve.
        series: curve name -> ``(T,)`` values; at least one curve.
        path: the PNG file to write; parent folders are created.
        xlabel: x-axis label.
        ylabel: y-axis label.
        title: optional title.
        logy: logarithmic y axis.

    Returns:
        The path of the written PNG.

    Example:
        >>> steps = [0, 100, 200]
        >>> save_line_plot(steps, {"SN": [40.0, 12.0, 8.0], "no SN": [41.0, 30.0, 55.0]},
        ...                "fld.png", xlabel="step", ylabel="FLD")
    """
    x = _as_1d(xs, "xs")
    if not isinstance(series, Mapping) or len(series) == 0:
        raise ValueError(f"series: expected a non-empty dict of name -> values, got {series!r}")
    curves = {}
    for name, values in series.items():
        y = _as_1d(values, f"series[{name!r}]")
        if y.shape != x.shape:
            raise ValueError(
                f"series[{name!r}]: expected {x.shape[0]} values (one per x), got {y.shape[0]}"
            )
        curves[str(name)] = y
    figure, (ax,) = _figure()
    for name, y in curves.items():
        ax.plot(x, y, label=name, marker="o" if x.shape[0] <= 30 else None, markersize=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title is not None:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(figure, path)
