"""Charts written as PNG with matplotlib's Agg backend: curves, scatters and histograms."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from gentorch._checks import check_positive_int, check_real
from gentorch.plotting._checks import check_png_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "save_histogram",
    "save_latent_scatter",
    "save_line_plot",
    "save_loss_curves",
]


def _figure(
    ncols: int = 1, nrows: int = 1, *, width: float = 6.0, height: float = 4.0
) -> tuple[Figure, list[Axes]]:
    """A figure of ``nrows x ncols`` panels of ``width x height`` inches each, row-major."""
    # The object API with the Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * ncols, height * nrows), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = [figure.add_subplot(nrows, ncols, i + 1) for i in range(nrows * ncols)]
    return figure, axes


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _as_1d(values: Any, name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A 1-D float64 array from a tensor, array or sequence of numbers."""
    if isinstance(values, Tensor):
        if values.is_complex():
            raise TypeError(f"{name}: expected real numbers, got dtype {values.dtype}")
        values = values.detach().to(device="cpu", dtype=torch.float64).numpy()
    elif np.iscomplexobj(values):
        raise TypeError(f"{name}: expected real numbers, got complex values")
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
        >>> import tempfile
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> from gentorch.plotting import save_line_plot
        >>> curves = {"SN": [40.0, 12.0, 8.0], "no SN": [41.0, 30.0, 55.0]}
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = save_line_plot([0, 100, 200], curves, Path(tmp) / "fld.png", "step", "FLD")
        ...     path.name, Image.open(path).size  # 6 x 4 inches at 100 dpi
        ('fld.png', (600, 400))
    """
    path = check_png_path(path)
    x = _as_1d(xs, "xs")
    if x.shape[0] == 0:
        raise ValueError("xs: expected at least one x position, got none")
    if not isinstance(series, Mapping) or len(series) == 0:
        raise ValueError(f"series: expected a non-empty dict of name -> values, got {series!r}")
    curves = {}
    for name, values in series.items():
        y = _as_1d(values, f"series[{name!r}]")
        if y.shape != x.shape:
            raise ValueError(
                f"series[{name!r}]: expected {x.shape[0]} values (one per x), got {y.shape[0]}"
            )
        # Non-finite values as NaN, a gap on any axis (a log axis would clip -inf to its bottom).
        y = np.where(np.isfinite(y), y, np.nan)
        if logy and bool((y <= 0).any()):
            first = int(np.argmax(y <= 0))
            raise ValueError(
                f"series[{name!r}]: logy=True needs positive values, got {y[first]:g} at index "
                f"{first} (a log axis would drop it)"
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


def _labels_1d(labels: Any, n: int, name: str = "labels") -> np.ndarray[Any, Any]:
    if labels is None:
        raise TypeError(f"{name}: expected ({n},) class labels, got None")
    if isinstance(labels, Tensor):
        labels = labels.detach().cpu().numpy()
    array = np.asarray(labels)
    if array.ndim != 1 or array.shape[0] != n:
        raise ValueError(f"{name}: expected shape ({n},), one label per point, got {array.shape}")
    if array.dtype.kind in "fc":
        raise TypeError(
            f"{name}: expected integer, bool or string class labels, got dtype {array.dtype} "
            f"(values such as {array[:3].tolist()}); convert integer-valued ones, e.g. "
            "labels.long()"
        )
    return array


def save_latent_scatter(
    mu: Tensor,
    labels: Tensor | Sequence[int] | None,
    path: str | Path,
    *,
    title: str | None = None,
    point_size: float = 2.0,
) -> Path:
    """Scatter plot of 2-D latent codes coloured by class (the book's latent-space figure).

    Args:
        mu: ``(N, 2)`` posterior means, e.g. from :func:`gentorch.evaluation.posterior_means`.
        labels: ``(N,)`` class labels (one colour and legend entry each, for up to 20
            classes; beyond that colours repeat and there is no legend), or ``None``.
        path: the PNG file to write.
        title: optional title.
        point_size: marker area in points^2.

    Returns:
        The path of the written PNG.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import torch
        >>> from gentorch.evaluation import posterior_means
        >>> from PIL import Image
        >>> from gentorch.models import VAE
        >>> from gentorch.plotting import save_latent_scatter
        >>> mu = posterior_means(VAE(64, [32], 2), torch.rand(30, 64))
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = save_latent_scatter(mu, torch.arange(30) % 3, Path(tmp) / "latent.png")
        ...     path.name, Image.open(path).size  # 6.5 x 6 inches at 100 dpi
        ('latent.png', (650, 600))
    """
    if not isinstance(mu, Tensor):
        raise TypeError(f"mu: expected a torch.Tensor of shape (N, 2), got {type(mu).__name__}")
    if mu.dim() != 2 or mu.shape[1] != 2 or mu.shape[0] == 0:
        raise ValueError(f"mu: expected shape (N, 2) with N >= 1, got {tuple(mu.shape)}")
    if mu.is_complex():
        raise TypeError(f"mu: expected real latent codes, got dtype {mu.dtype}")
    path = check_png_path(path)
    if check_real("point_size", point_size) <= 0:
        raise ValueError(f"point_size: expected a marker area > 0, got {point_size!r}")
    points = mu.detach().to(device="cpu", dtype=torch.float64).numpy()
    bad = ~np.isfinite(points).all(axis=1)
    if bad.any():
        raise ValueError(
            f"mu: {int(bad.sum())} of {len(points)} points are NaN or infinite (first at row "
            f"{int(np.argmax(bad))}); they cannot be drawn"
        )
    figure, (ax,) = _figure(width=6.5, height=6.0)
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=point_size, alpha=0.6)
    else:
        classes = _labels_1d(labels, points.shape[0])
        values = np.unique(classes)
        cmap = _colormap("tab10" if len(values) <= 10 else "tab20")
        for i, value in enumerate(values):
            mask = classes == value
            ax.scatter(
                points[mask, 0],
                points[mask, 1],
                s=point_size,
                alpha=0.6,
                color=cmap(i % cmap.N),
                label=str(value),
            )
        if len(values) <= 20:
            ax.legend(markerscale=max(1.0, 12.0 / point_size), title="class", loc="best")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_aspect("equal", adjustable="datalim")
    if title is not None:
        ax.set_title(title)
    return _save(figure, path)


def _colormap(name: str) -> Any:
    from matplotlib import colormaps

    return colormaps[name]


# Prefixes naming the split of a metric: "train_loss" and "val_loss" share one panel "loss".
_SPLITS = ("train_", "val_", "valid_", "validation_", "test_", "train/", "val/", "test/")


@runtime_checkable
class ColumnTable(Protocol):
    """A table read column by column: ``columns`` names them, ``table[name]`` gives the values
    (what :class:`gentorch.training.History` and a pandas ``DataFrame`` provide)."""

    @property
    def columns(self) -> Any: ...

    def __getitem__(self, column: str, /) -> Any: ...


def _column(values: Any, key: Any) -> list[Any]:
    """One metric's per-epoch values as a list."""
    if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
        raise TypeError(
            f"history[{key!r}]: expected a list of per-epoch values, got {type(values).__name__} "
            f"{values!r}"
        )
    return list(values)


def _history_columns(history: Any) -> dict[str, list[float]]:
    """Metric -> per-epoch values from a dict of lists, a list of per-epoch dicts, or a
    :class:`ColumnTable` (``fit``'s ``History``)."""
    if isinstance(history, Mapping):
        columns = {str(k): _column(v, k) for k, v in history.items()}
    elif isinstance(history, ColumnTable) and not isinstance(history, Sequence):
        columns = {str(k): _column(history[k], k) for k in history.columns}
    elif isinstance(history, Sequence) and not isinstance(history, (str, bytes)):
        columns = {}
        for epoch, row in enumerate(history):
            if not isinstance(row, Mapping):
                raise TypeError(
                    f"history[{epoch}]: expected a dict of metric -> value, "
                    f"got {type(row).__name__}"
                )
            for key, value in row.items():
                # A metric missing in early epochs (e.g. validation every k epochs) is a gap.
                columns.setdefault(str(key), [math.nan] * epoch).append(value)
            for values in columns.values():
                values.extend([math.nan] * (epoch + 1 - len(values)))
    else:
        raise TypeError(
            "history: expected a History, a dict of metric -> list of floats or a list of "
            f"per-epoch dicts, got {type(history).__name__}"
        )
    out = {}
    for key, values in columns.items():
        try:
            out[key] = [float(v) for v in values]
        except (TypeError, ValueError):
            raise TypeError(f"history[{key!r}]: expected numbers, got {values!r}") from None
    return out


def save_loss_curves(
    history: Mapping[str, Sequence[float]] | Sequence[Mapping[str, float]] | ColumnTable,
    path: str | Path,
    *,
    metrics: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Plot training curves: one panel per metric, train and validation splits together.

    Metrics named ``<split>_<name>`` (``train_``, ``val_``, ``valid_``, ``test_`` prefixes, or
    ``train/``-style) share the panel ``<name>``; an ``"epoch"`` entry, if present, is the x
    axis (otherwise epochs count from 1). Missing or non-finite values are gaps.

    Args:
        history: the :class:`~gentorch.training.History` that ``fit`` returns, metric ->
            per-epoch values, or a list of per-epoch dicts of metric -> value.
        path: the PNG file to write.
        metrics: the panels to draw, in this order (e.g. ``("loss", "kl")`` for the columns
            ``train_loss``, ``val_loss``, ``train_kl``, ``val_kl``); ``None``: every metric.
        title: optional title over the panels.

    Returns:
        The path of the written PNG.

    Raises:
        ValueError: no metric with values, metrics of different lengths, or a name in
            ``metrics`` that no column has.
        TypeError: ``history`` is of none of the accepted kinds, or holds non-numbers.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> from gentorch.plotting import save_loss_curves
        >>> history = {"train_loss": [160.0, 150.2, 147.9], "val_loss": [155.1, 149.8, 148.3]}
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = save_loss_curves(history, Path(tmp) / "loss.png")
        ...     Image.open(path).size  # one panel "loss" of 4.5 x 3.5 inches at 100 dpi
        (450, 350)
    """
    from matplotlib.ticker import MaxNLocator

    path = check_png_path(path)
    columns = _history_columns(history)
    epochs = columns.pop("epoch", None)
    if not columns or not any(columns.values()):
        raise ValueError(f"history: expected at least one metric with values, got {history!r}")
    length = max(len(v) for v in columns.values())
    if any(len(v) != length for v in columns.values()):
        lengths = {k: len(v) for k, v in columns.items()}
        raise ValueError(f"history: expected one value per epoch for every metric, got {lengths}")
    x = np.asarray(epochs, dtype=np.float64) if epochs is not None else np.arange(1, length + 1)
    if x.shape[0] != length:
        raise ValueError(f"history['epoch']: expected {length} values, got {x.shape[0]}")
    panels: dict[str, dict[str, list[float]]] = {}
    for key, values in columns.items():
        panel = next(
            (key[len(p) :] for p in _SPLITS if key.startswith(p) and len(key) > len(p)), key
        )
        panels.setdefault(panel, {})[key] = values
    if metrics is not None:
        if isinstance(metrics, str) or not metrics:
            raise ValueError(f"metrics: expected a non-empty sequence of names, got {metrics!r}")
        unknown = [m for m in metrics if m not in panels]
        if unknown:
            raise ValueError(f"metrics: no column for {unknown}; the history has {list(panels)}")
        panels = {m: panels[m] for m in metrics}
    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    figure, axes = _figure(ncols, nrows, width=4.5, height=3.5)
    for ax in axes[len(panels) :]:
        ax.remove()
    for ax, (panel, curves) in zip(axes, panels.items(), strict=False):
        for key, values in curves.items():
            ax.plot(x, values, label=key, marker="o" if length <= 30 else None, markersize=3)
        ax.set_title(panel)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    if title is not None:
        figure.suptitle(title)
    return _save(figure, path)


def save_histogram(
    scores: Tensor | Sequence[float],
    labels: Tensor | Sequence[int] | Sequence[bool],
    path: str | Path,
    *,
    bins: int = 50,
    xlabel: str = "anomaly score (nats)",
    label_names: Mapping[Any, str] | None = None,
    title: str | None = None,
) -> Path:
    """Overlaid histograms of scores, one per label value (e.g. anomaly scores by class).

    Each histogram is normalised to unit area so that classes of different sizes compare;
    the bins are shared. Boolean labels are named "normal" / "anomaly" unless ``label_names``
    says otherwise.

    Args:
        scores: ``(N,)`` finite scores.
        labels: ``(N,)`` booleans or class labels.
        path: the PNG file to write.
        bins: number of shared bins.
        xlabel: x-axis label.
        label_names: label value -> legend name.
        title: optional title.

    Returns:
        The path of the written PNG.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import torch
        >>> from gentorch.plotting import save_histogram
        >>> _ = torch.manual_seed(0)
        >>> scores = torch.cat([torch.randn(90), torch.randn(10) + 3.0])  # e.g. anomaly_scores
        >>> is_anomaly = torch.arange(100) >= 90  # legend: "normal", "anomaly"
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     save_histogram(scores, is_anomaly, Path(tmp) / "hist.png", bins=20).name
        'hist.png'
    """
    path = check_png_path(path)
    values = _as_1d(scores, "scores")
    if values.shape[0] == 0:
        raise ValueError("scores: expected at least one score, got none")
    if not np.isfinite(values).all():
        raise ValueError("scores: contains NaN or Inf values")
    classes = _labels_1d(labels, values.shape[0])
    check_positive_int("bins", bins)
    if label_names is not None and not isinstance(label_names, Mapping):
        raise TypeError(
            f"label_names: expected a dict of label value -> name, got "
            f"{type(label_names).__name__} {label_names!r}"
        )
    names: dict[Any, str] = {False: "normal", True: "anomaly"} if classes.dtype == bool else {}
    names.update(label_names or {})
    try:
        edges = np.histogram_bin_edges(values, bins=bins)
    except ValueError:  # numpy's "Too many bins for data range": scores a few ulps apart
        low, high = float(values.min()), float(values.max())
        raise ValueError(
            f"scores: cannot split their range [{low!r}, {high!r}] into {bins} bins of finite, "
            "nonzero width; pass fewer bins"
        ) from None
    figure, (ax,) = _figure()
    for value in np.unique(classes):
        ax.hist(
            values[classes == value],
            bins=edges.tolist(),
            density=True,
            alpha=0.5,
            label=names.get(value.item(), str(value)),
            histtype="stepfilled",
            edgecolor="black",
            linewidth=0.5,
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend()
    if title is not None:
        ax.set_title(title)
    return _save(figure, path)
