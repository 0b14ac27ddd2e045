import math
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from PIL import Image

from gentorch.plotting import save_histogram, save_latent_scatter, save_line_plot, save_loss_curves
from gentorch.training import History


def _assert_png(path: Path, min_size: tuple[int, int] = (200, 150)) -> Image.Image:
    img = Image.open(path)
    assert img.format == "PNG"
    assert img.size[0] >= min_size[0]
    assert img.size[1] >= min_size[1]
    # Not a blank canvas: something was drawn.
    extrema = cast(tuple[float, float], img.convert("L").getextrema())  # one band: (min, max)
    assert extrema[0] < extrema[1]
    return img


def test_line_plot_writes_png(tmp_path: Path) -> None:
    path = save_line_plot(
        torch.arange(5),
        {"SN": [5.0, 4.0, 3.0, 2.5, 2.0], "no SN": torch.tensor([5.0, 6.0, math.nan, 9.0, 12.0])},
        tmp_path / "sub" / "fld.png",
        xlabel="step",
        ylabel="FLD",
        title="FLD",
        logy=True,
    )
    assert path == tmp_path / "sub" / "fld.png"
    _assert_png(path)


def test_line_plot_rejects_mismatched_lengths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"series\['a'\]: expected 3 values \(one per x\), got 2"):
        save_line_plot([0, 1, 2], {"a": [1.0, 2.0]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="series: expected a non-empty dict"):
        save_line_plot([0, 1, 2], {}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"xs: expected a 1-D sequence"):
        save_line_plot(cast(Any, [[0, 1]]), {"a": [1.0]}, tmp_path / "x.png")
    with pytest.raises(TypeError, match=r"series\['a'\]"):
        save_line_plot([0, 1], {"a": cast(Any, ["x", "y"])}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_latent_scatter(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(300, 2, generator=g)
    labels = torch.arange(300) % 10
    _assert_png(save_latent_scatter(mu, labels, tmp_path / "s.png", title="latent"))
    _assert_png(save_latent_scatter(mu, None, tmp_path / "s2.png"))
    with pytest.raises(ValueError, match=r"mu: expected shape \(N, 2\)"):
        save_latent_scatter(torch.randn(10, 3), None, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"labels: expected shape \(10,\)"):
        save_latent_scatter(torch.randn(10, 2), torch.zeros(9), tmp_path / "x.png")


def test_loss_curves_from_dict_rows_and_history_are_the_same_picture(tmp_path: Path) -> None:
    history = {
        "train_loss": [160.0, 150.0, 147.0],
        "val_loss": [155.0, 149.0, 148.0],
        "kl": [3.0, 4.5, 5.0],
    }
    rows = [{k: v[i] for k, v in history.items()} for i in range(3)]
    a = save_loss_curves(history, tmp_path / "a.png")
    b = save_loss_curves(rows, tmp_path / "b.png")
    c = save_loss_curves(History(rows), tmp_path / "c.png")  # what fit() returns
    _assert_png(a)
    assert a.read_bytes() == b.read_bytes() == c.read_bytes()
    # Two panels ("loss" for both splits, "kl"): wider than tall.
    width, height = Image.open(a).size
    assert width > 1.5 * height


def test_loss_curves_metrics_selects_and_orders_the_panels(tmp_path: Path) -> None:
    rows = [
        {"epoch": 1, "step": 10, "train_loss": 3.0, "val_loss": 3.5, "train_kl": 1.0},
        {"epoch": 2, "step": 20, "train_loss": 2.0, "val_loss": 2.5, "train_kl": 1.5},
    ]
    history = History(rows)
    only = save_loss_curves(history, tmp_path / "only.png", metrics=["kl", "loss"])
    same = save_loss_curves(
        [{k: r[k] for k in ("epoch", "train_kl", "train_loss", "val_loss")} for r in rows],
        tmp_path / "same.png",
    )
    assert only.read_bytes() == same.read_bytes()  # "step" left out, panels in the given order
    assert Image.open(only).size == (900, 350)  # two panels of 4.5 x 3.5 inches
    with pytest.raises(ValueError, match=r"metrics: no column for \['recon'\]; the history has"):
        save_loss_curves(history, tmp_path / "x.png", metrics=("loss", "recon"))
    with pytest.raises(ValueError, match="metrics: expected a non-empty sequence of names"):
        save_loss_curves(history, tmp_path / "x.png", metrics="loss")
    with pytest.raises(ValueError, match="metrics: expected a non-empty sequence of names"):
        save_loss_curves(history, tmp_path / "x.png", metrics=[])


def test_loss_curves_gaps_epoch_axis_and_errors(tmp_path: Path) -> None:
    # Validation only from the second epoch: a gap, not an error.
    rows = [{"epoch": 1, "train_loss": 3.0}, {"epoch": 2, "train_loss": 2.0, "val_loss": 2.5}]
    _assert_png(save_loss_curves(rows, tmp_path / "g.png", title="run"))
    with pytest.raises(ValueError, match="one value per epoch"):
        save_loss_curves({"a": [1.0, 2.0], "b": [1.0]}, tmp_path / "x.png")
    with pytest.raises(TypeError, match=r"history\['a'\]: expected numbers"):
        save_loss_curves({"a": cast(Any, ["high", "low"])}, tmp_path / "x.png")
    with pytest.raises(TypeError, match=r"history\[1\]: expected a dict"):
        save_loss_curves([{"a": 1.0}, cast(Any, 2.0)], tmp_path / "x.png")
    with pytest.raises(TypeError, match="history: expected a History, a dict"):
        save_loss_curves(3.0, tmp_path / "x.png")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one metric"):
        save_loss_curves({"epoch": [1, 2]}, tmp_path / "x.png")


def test_histogram(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    scores = torch.cat([torch.randn(200, generator=g), torch.randn(50, generator=g) + 3])
    is_anomaly = torch.cat([torch.zeros(200), torch.ones(50)]).bool()
    _assert_png(save_histogram(scores, is_anomaly, tmp_path / "h.png", title="digit 7 held out"))
    digits = torch.arange(250) % 3
    _assert_png(
        save_histogram(scores, digits, tmp_path / "h3.png", label_names={0: "zero"}, bins=20)
    )
    with pytest.raises(ValueError, match=r"labels: expected shape \(250,\)"):
        save_histogram(scores, is_anomaly[:10], tmp_path / "x.png")
    with pytest.raises(ValueError, match="scores: contains NaN"):
        save_histogram(torch.tensor([0.0, math.nan]), torch.tensor([0, 1]), tmp_path / "x.png")
    with pytest.raises(ValueError, match="bins"):
        save_histogram(scores, is_anomaly, tmp_path / "x.png", bins=0)
