import math

import pytest
import torch
from PIL import Image

from gentorch.plotting import save_line_plot


def _assert_png(path, min_size=(200, 150)):
    img = Image.open(path)
    assert img.format == "PNG"
    assert img.size[0] >= min_size[0]
    assert img.size[1] >= min_size[1]
    # Not a blank canvas: something was drawn.
    extrema = img.convert("L").getextrema()
    assert extrema[0] < extrema[1]
    return img


def test_line_plot_writes_png(tmp_path):
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


def test_line_plot_rejects_mismatched_lengths(tmp_path):
    with pytest.raises(ValueError, match=r"series\['a'\]: expected 3 values \(one per x\), got 2"):
        save_line_plot([0, 1, 2], {"a": [1.0, 2.0]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="series: expected a non-empty dict"):
        save_line_plot([0, 1, 2], {}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"xs: expected a 1-D sequence"):
        save_line_plot([[0, 1]], {"a": [1.0]}, tmp_path / "x.png")
    with pytest.raises(TypeError, match=r"series\['a'\]"):
        save_line_plot([0, 1], {"a": ["x", "y"]}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
