from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gentorch.plotting import save_image_grid


def test_pixels_land_where_documented(tmp_path: Path) -> None:
    # 5 images of 3x4 with distinct constant values, 2 per row, padding 1 -> 3 rows.
    values = torch.tensor([10.0, 50.0, 100.0, 150.0, 255.0]) / 255  # whole 8-bit levels
    images = values.view(5, 1, 1, 1).expand(5, 1, 3, 4).clone()
    images[2, 0, 1, 2] = 0.0  # one marked pixel inside image 2
    path = save_image_grid(images, tmp_path / "grid.png", nrow=2, padding=1)
    img = Image.open(path)
    assert img.format == "PNG"
    assert img.mode == "L"
    assert img.size == (2 * (4 + 1) + 1, 3 * (3 + 1) + 1)  # (width, height)
    pixels = np.asarray(img)
    for i, v in enumerate(values.tolist()):
        r, c = divmod(i, 2)
        top, left = 1 + r * 4, 1 + c * 5
        cell = pixels[top : top + 3, left : left + 4].astype(int)
        expected = np.full((3, 4), round(255 * v))  # v = k / 255 gives back k exactly
        if i == 2:
            expected[1, 2] = 0
        np.testing.assert_array_equal(cell, expected)
    # Padding rows/columns and the empty sixth cell are pad_value 0.
    assert (pixels[0, :] == 0).all()
    assert (pixels[:, 0] == 0).all()
    assert (pixels[9:12, 6:10] == 0).all()


def test_rgb_and_three_dim_input(tmp_path: Path) -> None:
    rgb = torch.zeros(2, 3, 5, 5)
    rgb[0, 0] = 1.0  # red
    rgb[1, 2] = 1.0  # blue
    img = Image.open(save_image_grid(rgb, tmp_path / "rgb.png", padding=0, nrow=2))
    assert img.mode == "RGB"
    assert img.size == (10, 5)
    pixels = np.asarray(img)
    np.testing.assert_array_equal(pixels[2, 2], [255, 0, 0])
    np.testing.assert_array_equal(pixels[2, 7], [0, 0, 255])
    gray = Image.open(save_image_grid(torch.ones(4, 6, 6), tmp_path / "g.png", pad_value=1.0))
    assert gray.size == (2 * 8 + 2, 2 * 8 + 2)  # default nrow = ceil(sqrt(4)) = 2
    assert (np.asarray(gray) == 255).all()


def test_bad_inputs_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"images: expected values in \[0, 1\], got range"):
        save_image_grid(torch.full((2, 1, 4, 4), 1.5), tmp_path / "x.png")
    with pytest.raises(
        ValueError, match=r"images: expected shape \(N, C, H, W\).*got \(2, 2, 4, 4\)"
    ):
        save_image_grid(torch.rand(2, 2, 4, 4), tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"got \(16,\)"):
        save_image_grid(torch.rand(16), tmp_path / "x.png")
    with pytest.raises(TypeError, match="floating-point"):
        save_image_grid(torch.ones(2, 4, 4, dtype=torch.uint8), tmp_path / "x.png")
    with pytest.raises(ValueError, match="nrow"):
        save_image_grid(torch.rand(2, 4, 4), tmp_path / "x.png", nrow=0)
    with pytest.raises(ValueError, match="NaN"):
        save_image_grid(torch.full((2, 4, 4), float("nan")), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
