from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import torch
from torch import nn

from gentorch.evaluation import active_units, kl_per_dimension, posterior_means

if TYPE_CHECKING:
    from tests.evaluation.conftest import LinearGaussianVAE


class _FixedEncoder(nn.Module):
    """encode(x) = (x[:, :L], x[:, L:]): the test sets posterior means and log-variances."""

    def __init__(self, latent: int) -> None:
        super().__init__()
        self.latent = latent

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, : self.latent], x[:, self.latent :]


def test_active_units_counts_variance_above_threshold() -> None:
    g = torch.Generator().manual_seed(0)
    n, latent = 500, 5
    # Per-unit standard deviations of the posterior means across data: variances 1, 0.04,
    # 0.0144, 0.0001, 0 -> three above 0.01 (sample variances over 500 points are within ~10%
    # of these, far from the threshold).
    scales = torch.tensor([1.0, 0.2, 0.12, 0.01, 0.0], dtype=torch.float64)
    mu = torch.randn(n, latent, generator=g, dtype=torch.float64) * scales
    x = torch.cat([mu, torch.zeros(n, latent, dtype=torch.float64)], dim=1)
    model = _FixedEncoder(latent)
    # Brute force: per-dimension unbiased variance with an explicit loop.
    brute = 0
    for j in range(latent):
        col = [float(mu[i, j]) for i in range(n)]
        m = sum(col) / n
        brute += sum((c - m) ** 2 for c in col) / (n - 1) > 0.01
    assert active_units(model, x, batch_size=64) == brute == 3
    assert active_units(model, x, threshold=0.5) == 1
    assert active_units(model, x, threshold=0.0) == 4


def test_kl_per_dimension_matches_brute_force() -> None:
    g = torch.Generator().manual_seed(1)
    n, latent = 37, 3
    mu = torch.randn(n, latent, generator=g, dtype=torch.float64)
    logvar = torch.randn(n, latent, generator=g, dtype=torch.float64)
    x = torch.cat([mu, logvar], dim=1)
    got = kl_per_dimension(_FixedEncoder(latent), x, batch_size=10)
    assert got.shape == (latent,)
    expected = torch.zeros(latent, dtype=torch.float64)
    for i in range(n):
        for j in range(latent):
            q = torch.distributions.Normal(mu[i, j], (0.5 * logvar[i, j]).exp())
            expected[j] += torch.distributions.kl_divergence(
                q, torch.distributions.Normal(0.0, 1.0)
            )
    torch.testing.assert_close(got, expected / n, rtol=1e-10, atol=1e-12)


def test_kl_per_dimension_sums_to_the_elbo_kl_term(
    make_linear_vae: type[LinearGaussianVAE],
) -> None:
    model = make_linear_vae()
    x = model.sample_data(50)
    mu, logvar = (t.detach() for t in model.encode(x))
    kl_total = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(-1).mean()
    assert float(kl_per_dimension(model, x).sum()) == pytest.approx(float(kl_total), rel=1e-10)


def test_posterior_means_and_mode_restored(make_linear_vae: type[LinearGaussianVAE]) -> None:
    model = make_linear_vae()
    x = model.sample_data(9)
    model.train()
    mu = posterior_means(model, x, batch_size=4)
    assert model.training
    torch.testing.assert_close(mu, model.encode(x)[0].detach())
    assert not mu.requires_grad


def test_bad_arguments() -> None:
    model = _FixedEncoder(2)
    with pytest.raises(ValueError, match="at least 2 examples"):
        active_units(model, torch.zeros(1, 4))
    with pytest.raises(ValueError, match="threshold"):
        active_units(model, torch.zeros(3, 4), threshold=-1.0)
    with pytest.raises(ValueError, match=r"images: expected shape \(N, D\)"):
        kl_per_dimension(model, torch.zeros(4))
    with pytest.raises(TypeError, match=r"no method encode\(\)"):
        kl_per_dimension(nn.Linear(2, 2), torch.zeros(3, 4))
