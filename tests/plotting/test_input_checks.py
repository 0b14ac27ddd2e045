"""Bad input to the picture functions: a clear error naming the argument, and no file written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gentorch.models import VAE, ConditionalVAE
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


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_output_path_must_be_a_png_file_in_a_folder(tmp_path: Path) -> None:
    images = torch.rand(4, 1, 8, 8)
    (tmp_path / "a_file").write_text("keep")
    with pytest.raises(ValueError, match=r"path: expected a \.png file to write, got the existing"):
        save_image_grid(images, tmp_path)
    with pytest.raises(ValueError, match=r"path: expected a file name ending in \.png.*grid\.jpg"):
        save_image_grid(images, tmp_path / "grid.jpg")
    with pytest.raises(ValueError, match=r"path: expected a file name ending in \.png.*samples'"):
        save_image_grid(images, tmp_path / "samples")
    with pytest.raises(ValueError, match=r"path: cannot write .*a_file' is a file, not a folder"):
        save_image_grid(images, tmp_path / "a_file" / "grid.png")
    with pytest.raises(TypeError, match=r"path: expected a str or os.PathLike.*got NoneType"):
        save_image_grid(images, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"path: expected a file name ending in \.png.*curve\.pdf"):
        save_line_plot([0, 1], {"a": [1.0, 2.0]}, tmp_path / "curve.pdf")
    with pytest.raises(ValueError, match=r"path: expected a \.png file to write"):
        save_loss_curves({"train_loss": [1.0, 2.0]}, tmp_path)
    assert _files(tmp_path) == ["a_file"]
    assert (tmp_path / "a_file").read_text() == "keep"
    # upper-case suffixes are PNG names too
    assert save_image_grid(images, tmp_path / "GRID.PNG").is_file()


def test_grid_settings_refuse_bools_and_non_numbers(tmp_path: Path) -> None:
    images, path = torch.rand(4, 1, 8, 8), tmp_path / "g.png"
    with pytest.raises(
        TypeError, match=r"nrow: expected a positive integer \(images per row\), got bool True"
    ):
        save_image_grid(images, path, nrow=True)
    with pytest.raises(ValueError, match=r"padding: expected a non-negative int, got True"):
        save_image_grid(images, path, padding=True)
    with pytest.raises(TypeError, match=r"pad_value: expected a real number, got str '0'"):
        save_image_grid(images, path, pad_value="0")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"nrow: expected a positive integer.*got bool True"):
        save_reconstructions(torch.rand(4, 64), torch.rand(4, 64), path, (8, 8), nrow=True)
    assert not path.exists()


def test_image_shape_must_be_a_tuple_of_ints(tmp_path: Path) -> None:
    x, path = torch.rand(4, 64), tmp_path / "r.png"
    with pytest.raises(TypeError, match=r"image_shape: expected a tuple of ints .* got 64"):
        save_reconstructions(x, x, path, 64)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"image_shape: .* got \(1, 8, 8\.5\)"):
        save_reconstructions(x, x, path, (1, 8, 8.5))  # type: ignore[arg-type]  # was cut to 8
    with pytest.raises(TypeError, match=r"image_shape: .* got \(True, 8, 8\)"):
        save_reconstructions(x, x, path, (True, 8, 8))
    with pytest.raises(TypeError, match=r"image_shape: .* got '8x8'"):
        save_reconstructions(x, x, path, "8x8")  # type: ignore[arg-type]
    assert not path.exists()


def test_manifold_image_shape_must_match_the_decoder(tmp_path: Path) -> None:
    path = tmp_path / "m.png"
    with pytest.raises(
        ValueError, match=r"image_shape: \(1, 28, 28\) holds 784 values.*decodes .* \(64,\)"
    ):
        save_latent_manifold(VAE(64, [16], 2), path, (28, 28), n=3)
    assert not path.exists()


def test_manifold_arguments(tmp_path: Path) -> None:
    model, path = VAE(64, [16], 2), tmp_path / "m.png"
    with pytest.raises(TypeError, match=r"n: expected a positive integer, got bool True"):
        save_latent_manifold(model, path, (8, 8), n=True)
    with pytest.raises(
        TypeError, match=r"span: expected two probabilities .* \(0\.1, 0\.5, 0\.9\)"
    ):
        save_latent_manifold(model, path, (8, 8), span=(0.1, 0.5, 0.9))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"span: expected two probabilities .* got 0.9"):
        save_latent_manifold(model, path, (8, 8), span=0.9)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"label: VAE is not conditional"):
        save_latent_manifold(model, path, (8, 8), n=3, label=3)
    conditional = ConditionalVAE(64, [16], 2, num_classes=10)
    with pytest.raises(ValueError, match=r"label: expected an int >= 0, got 1\.5"):
        save_latent_manifold(conditional, path, (8, 8), n=3, label=1.5)  # type: ignore[arg-type]
    assert not path.exists()


def test_interpolation_labels(tmp_path: Path) -> None:
    x, path = torch.rand(6, 64), tmp_path / "i.png"
    conditional = ConditionalVAE(64, [16], 2, num_classes=10)
    with pytest.raises(
        TypeError, match=r"labels: expected integer class labels, got dtype torch.float32"
    ):
        save_interpolation(conditional, x[:3], x[3:], path, (8, 8), labels=torch.rand(3))
    with pytest.raises(ValueError, match=r"labels: VAE is not conditional"):
        save_interpolation(VAE(64, [16], 2), x[:3], x[3:], path, (8, 8), labels=torch.arange(3))
    with pytest.raises(ValueError, match=r"steps: expected an int >= 2, got True"):
        save_interpolation(conditional, x[:3], x[3:], path, (8, 8), steps=True)
    assert not path.exists()


def test_line_plot_values(tmp_path: Path) -> None:
    path = tmp_path / "l.png"
    with pytest.raises(ValueError, match=r"xs: expected at least one x position, got none"):
        save_line_plot([], {"a": []}, path)
    with pytest.raises(ValueError, match=r"series\['a'\]: logy=True needs positive values, got -1"):
        save_line_plot([0, 1, 2], {"a": [-1.0, 2.0, 3.0]}, path, logy=True)
    with pytest.raises(TypeError, match=r"series\['a'\]: expected real numbers, got dtype"):
        save_line_plot([0, 1], {"a": torch.ones(2, dtype=torch.complex64)}, path)
    assert not path.exists()


def test_scatter_points_labels_and_marker_size(tmp_path: Path) -> None:
    mu, path = torch.randn(10, 2), tmp_path / "s.png"
    with pytest.raises(
        TypeError, match=r"labels: expected integer, bool or string class labels, got dtype float32"
    ):
        save_latent_scatter(mu, torch.rand(10), path)
    bad = mu.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"mu: 1 of 10 points are NaN or infinite .*row 3"):
        save_latent_scatter(bad, None, path)
    with pytest.raises(ValueError, match=r"point_size: expected a marker area > 0, got -1"):
        save_latent_scatter(mu, None, path, point_size=-1)
    with pytest.raises(ValueError, match=r"point_size: expected a marker area > 0, got 0"):
        save_latent_scatter(mu, None, path, point_size=0)
    assert not path.exists()


def test_loss_curves_need_lists_of_values(tmp_path: Path) -> None:
    path = tmp_path / "c.png"
    with pytest.raises(
        TypeError, match=r"history\['train_loss'\]: expected a list .* got float 3\.0"
    ):
        save_loss_curves({"train_loss": 3.0}, path)  # type: ignore[dict-item]
    assert not path.exists()


def test_histogram_arguments(tmp_path: Path) -> None:
    scores, path = torch.randn(10), tmp_path / "h.png"
    labels = torch.arange(10) % 2
    with pytest.raises(TypeError, match=r"bins: expected a positive integer, got bool True"):
        save_histogram(scores, labels, path, bins=True)
    with pytest.raises(TypeError, match=r"label_names: expected a dict .* got list \['a', 'b'\]"):
        save_histogram(scores, labels, path, label_names=["a", "b"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"labels: expected \(10,\) class labels, got None"):
        save_histogram(scores, None, path)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"labels: expected integer, bool or string .* float64"):
        save_histogram(scores, [0.0, 1.0] * 5, path)  # type: ignore[list-item]
    assert not path.exists()
