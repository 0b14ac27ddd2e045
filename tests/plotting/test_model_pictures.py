from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gentorch.plotting import save_interpolation, save_latent_manifold, save_reconstructions


class _QuantileVAE(nn.Module):
    """A 2-D latent model whose pictures can be read back.

    encode(x) = (Phi^{-1}(x[:, :2]), 0); decode(z) = [Phi(z_1), Phi(z_2), 0, 1] as 2x2 images
    (Gaussian means), or the logits of those values for the Bernoulli likelihood.
    """

    def __init__(self, likelihood: str = "gaussian", latent_dim: int = 2) -> None:
        super().__init__()
        self.likelihood = likelihood
        self.latent_dim = latent_dim
        self.weight = nn.Parameter(torch.ones(()))  # device/dtype reference
        self.modes: list[bool] = []

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.modes.append(self.training)
        mu = torch.special.ndtri(x[:, :2])
        return mu, torch.zeros_like(mu)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        p = torch.special.ndtr(z) * self.weight
        out = torch.cat([p, torch.zeros_like(p[:, :1]), torch.ones_like(p[:, :1])], dim=1)
        if self.likelihood == "bernoulli":
            return torch.logit(out.clamp(1e-6, 1 - 1e-6))
        return out


def _cells(
    path: Path, n_rows: int, n_cols: int, h: int, w: int, padding: int
) -> np.ndarray[Any, Any]:
    """Split a grid PNG back into its (rows, cols, h, w) cells."""
    pixels = np.asarray(Image.open(path)).astype(int)
    assert pixels.shape == (n_rows * (h + padding) + padding, n_cols * (w + padding) + padding)
    cells = np.zeros((n_rows, n_cols, h, w), dtype=int)
    for r in range(n_rows):
        for c in range(n_cols):
            top, left = padding + r * (h + padding), padding + c * (w + padding)
            cells[r, c] = pixels[top : top + h, left : left + w]
    return cells


def test_reconstructions_alternate_input_and_output_rows(tmp_path: Path) -> None:
    # Intensities k / 255: whole 8-bit values, no rounding ties.
    levels = torch.tensor([10.0, 50.0, 90.0, 130.0, 170.0])
    inputs = (levels / 255).view(5, 1).expand(5, 6).clone()  # (N, D) flattened
    recons = (255 - levels).div(255).view(5, 1).expand(5, 6).clone()
    path = save_reconstructions(inputs, recons, tmp_path / "r.png", (2, 3), nrow=3, padding=1)
    cells = _cells(path, 4, 3, 2, 3, 1)
    for i in range(5):
        r, c = divmod(i, 3)
        assert (cells[2 * r, c] == levels[i].item()).all()
        assert (cells[2 * r + 1, c] == 255 - levels[i].item()).all()
    assert (cells[2:, 2] == 0).all()  # the sixth slot is blank in both rows


def test_reconstructions_accept_image_tensors_and_check_shapes(tmp_path: Path) -> None:
    x = torch.rand(4, 1, 5, 5)
    path = save_reconstructions(x, x, tmp_path / "r.png", (1, 5, 5), nrow=4, padding=0, scale=2)
    assert Image.open(path).size == (4 * 5 * 2, 2 * 5 * 2)
    with pytest.raises(ValueError, match=r"inputs: expected shape \(N, 25\) or \(N, 1, 5, 5\)"):
        save_reconstructions(torch.rand(4, 24), x, tmp_path / "r.png", (5, 5))
    with pytest.raises(ValueError, match="same number of images, got 4 and 3"):
        save_reconstructions(x, x[:3], tmp_path / "r.png", (5, 5))
    with pytest.raises(ValueError, match=r"image_shape: expected \(C, H, W\)"):
        save_reconstructions(x, x, tmp_path / "r.png", (2, 5, 5))
    with pytest.raises(ValueError, match=r"reconstructions: expected values in \[0, 1\]"):
        save_reconstructions(x, x + 1, tmp_path / "r.png", (5, 5))


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_interpolation_decodes_the_latent_line(tmp_path: Path, likelihood: str) -> None:
    model = _QuantileVAE(likelihood)
    model.train()
    a = torch.tensor([[0.1, 0.9, 0.0, 1.0], [0.5, 0.5, 0.0, 1.0]])
    b = torch.tensor([[0.9, 0.2, 0.0, 1.0], [0.3, 0.7, 0.0, 1.0]])
    steps = 5
    path = save_interpolation(model, a, b, tmp_path / "i.png", (2, 2), steps=steps, padding=1)
    assert model.training
    assert model.modes == [False, False]
    cells = _cells(path, 2, steps + 2, 2, 2, 1)
    t = torch.linspace(0, 1, steps, dtype=torch.float64).view(-1, 1)
    for row in range(2):
        np.testing.assert_allclose(cells[row, 0].ravel(), 255 * a[row].numpy(), atol=0.51)
        np.testing.assert_allclose(cells[row, -1].ravel(), 255 * b[row].numpy(), atol=0.51)
        # z_t = (1 - t) Phi^{-1}(a) + t Phi^{-1}(b); decoded pixel values Phi(z_t)
        za = torch.special.ndtri(a[row, :2].double())
        zb = torch.special.ndtri(b[row, :2].double())
        expected = torch.special.ndtr((1 - t) * za + t * zb)
        got = cells[row, 1:-1].reshape(steps, 4)[:, :2]
        np.testing.assert_allclose(got, 255 * expected.numpy(), atol=1.01)


def test_interpolation_single_pair_and_errors(tmp_path: Path) -> None:
    model = _QuantileVAE()
    a, b = torch.tensor([0.2, 0.3, 0.0, 1.0]), torch.tensor([0.7, 0.6, 0.0, 1.0])
    path = save_interpolation(model, a, b, tmp_path / "i.png", (2, 2), steps=3, padding=0)
    assert Image.open(path).size == (5 * 2, 2)
    with pytest.raises(ValueError, match="steps: expected an int >= 2"):
        save_interpolation(model, a, b, tmp_path / "i.png", (2, 2), steps=1)
    with pytest.raises(ValueError, match="x_a and x_b: expected the same shape"):
        save_interpolation(model, a, b[:3], tmp_path / "i.png", (2, 2))
    model.likelihood = "poisson"
    with pytest.raises(TypeError, match=r"model\.likelihood: expected 'bernoulli' or 'gaussian'"):
        save_interpolation(model, a, b, tmp_path / "i.png", (2, 2))


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_latent_manifold_is_decoded_at_gaussian_quantiles(tmp_path: Path, likelihood: str) -> None:
    n = 4
    path = save_latent_manifold(
        _QuantileVAE(likelihood), tmp_path / "m.png", (2, 2), n=n, span=(0.1, 0.9), padding=1
    )
    cells = _cells(path, n, n, 2, 2, 1)
    p = np.linspace(0.1, 0.9, n)
    for r in range(n):
        for c in range(n):
            # Phi(Phi^{-1}(p)) = p: z_1 grows to the right, z_2 grows upwards.
            assert abs(cells[r, c, 0, 0] - 255 * p[c]) <= 1
            assert abs(cells[r, c, 0, 1] - 255 * p[n - 1 - r]) <= 1
            assert (cells[r, c, 1] == [0, 255]).all()


def test_latent_manifold_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a 2-D latent space, got latent_dim=3"):
        save_latent_manifold(_QuantileVAE(latent_dim=3), tmp_path / "m.png", (2, 2))
    with pytest.raises(ValueError, match="span"):
        save_latent_manifold(_QuantileVAE(), tmp_path / "m.png", (2, 2), span=(0.0, 0.9))
    with pytest.raises(ValueError, match="n: expected a positive int"):
        save_latent_manifold(_QuantileVAE(), tmp_path / "m.png", (2, 2), n=0)
    with pytest.raises(ValueError, match="scale"):
        save_latent_manifold(_QuantileVAE(), tmp_path / "m.png", (2, 2), n=2, scale=0)
    assert not (tmp_path / "m.png").exists()


class _LabelledQuantileVAE(_QuantileVAE):
    """_QuantileVAE conditioned on a label: the decoded image's third pixel shows ``y / 10``."""

    # y defaults to None only to keep the base class's encode(x)/decode(z) signatures (as
    # ConditionalVAE does); this model always needs it
    def encode(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        assert y is not None
        assert y.shape == (x.shape[0],)
        return super().encode(x)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        assert y is not None
        assert y.shape == (z.shape[0],)
        out = super().decode(z)
        return torch.cat([out[:, :2], (y.to(out.dtype) / 10).unsqueeze(1), out[:, 3:]], dim=1)


def test_interpolation_of_a_conditional_model_uses_each_rows_label(tmp_path: Path) -> None:
    model = _LabelledQuantileVAE()
    a = torch.tensor([[0.1, 0.9, 0.0, 1.0], [0.5, 0.5, 0.0, 1.0], [0.2, 0.4, 0.0, 1.0]])
    b = torch.tensor([[0.9, 0.2, 0.0, 1.0], [0.3, 0.7, 0.0, 1.0], [0.6, 0.6, 0.0, 1.0]])
    labels = torch.tensor([2, 7, 5])
    steps = 4
    path = save_interpolation(
        model, a, b, tmp_path / "i.png", (2, 2), steps=steps, padding=1, labels=labels
    )
    cells = _cells(path, 3, steps + 2, 2, 2, 1)
    for row in range(3):
        za = torch.special.ndtri(a[row, :2].double())
        zb = torch.special.ndtri(b[row, :2].double())
        t = torch.linspace(0, 1, steps, dtype=torch.float64).view(-1, 1)
        got = cells[row, 1:-1].reshape(steps, 4)
        np.testing.assert_allclose(
            got[:, :2], 255 * torch.special.ndtr((1 - t) * za + t * zb), atol=1.01
        )
        # every decoded image of the row carries that row's label
        np.testing.assert_allclose(got[:, 2], 255 * labels[row].item() / 10, atol=0.51)
    with pytest.raises(ValueError, match=r"labels: expected shape \(3,\), one per row, got \(2,\)"):
        save_interpolation(model, a, b, tmp_path / "i.png", (2, 2), labels=labels[:2])


def test_latent_manifold_of_one_class_of_a_conditional_model(tmp_path: Path) -> None:
    n = 3
    path = save_latent_manifold(
        _LabelledQuantileVAE(), tmp_path / "m.png", (2, 2), n=n, padding=1, label=6
    )
    cells = _cells(path, n, n, 2, 2, 1)
    assert (np.abs(cells[:, :, 1, 0] - 255 * 0.6) <= 0.51).all()  # every tile decoded as a 6
