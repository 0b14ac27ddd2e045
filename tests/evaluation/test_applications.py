from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
from torch import nn

from gentorch.evaluation import anomaly_auc, anomaly_scores, denoise, log_likelihood, psnr

if TYPE_CHECKING:
    from tests.evaluation.conftest import LinearGaussianVAE


def test_psnr_matches_formula() -> None:
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(4, 10, generator=g)
    noisy = clean + 0.05 * torch.randn(4, 10, generator=g)
    mse = float(((clean.double() - noisy.double()) ** 2).mean())
    assert psnr(clean, noisy) == pytest.approx(10 * math.log10(1 / mse), rel=1e-12)
    assert psnr(clean * 255, noisy * 255, data_range=255) == pytest.approx(
        psnr(clean, noisy), rel=1e-5
    )
    # A constant error of 0.1 on [0, 1] data: MSE = 0.01 -> exactly 20 dB.
    assert psnr(torch.zeros(3, 3), torch.full((3, 3), 0.1)) == pytest.approx(20.0, rel=1e-6)
    assert psnr(clean, clean.clone()) == math.inf


def test_psnr_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"clean and reconstructed: expected the same shape"):
        psnr(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="data_range"):
        psnr(torch.zeros(2), torch.ones(2), data_range=0)
    with pytest.raises(ValueError, match="NaN"):
        psnr(torch.zeros(2), torch.tensor([0.0, math.nan]))


def test_denoise_projects_onto_the_model_and_improves_psnr(
    make_linear_vae: type[LinearGaussianVAE],
) -> None:
    model = make_linear_vae(d=8, latent=2, s2=0.01)
    clean = model.decode(torch.randn(200, 2, dtype=torch.float64)).detach()  # on the manifold
    noisy = clean + 0.3 * torch.randn_like(clean)
    model.train()
    out = denoise(model, noisy, batch_size=64)
    assert model.training
    torch.testing.assert_close(out, model.reconstruct(noisy).detach())
    # Projecting 8-D noise onto a 2-D subspace removes about 3/4 of its energy: +6 dB at least
    # in expectation (10 log10(4)); 3 dB leaves room for the shrinkage of the posterior mean.
    assert psnr(clean, out, data_range=1.0) > psnr(clean, noisy, data_range=1.0) + 3.0


def test_anomaly_scores_are_negative_elbo_or_nll(make_linear_vae: type[LinearGaussianVAE]) -> None:
    model = make_linear_vae()
    x = model.sample_data(30)
    elbo_scores = anomaly_scores(model, x, "elbo", batch_size=7)
    torch.testing.assert_close(elbo_scores, -model.elbo(x).detach())
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    nll_scores = anomaly_scores(model, x, "nll", k=20, generator=g1)
    torch.testing.assert_close(nll_scores, -log_likelihood(model, x, 20, generator=g2))
    with pytest.raises(ValueError, match="score: expected 'elbo' or 'nll', got 'mse'"):
        anomaly_scores(model, x, "mse")  # type: ignore[arg-type]


def test_anomaly_scores_separate_out_of_distribution_points(
    make_linear_vae: type[LinearGaussianVAE],
) -> None:
    model = make_linear_vae()
    normal = model.sample_data(100, seed=2)
    outliers = model.sample_data(100, seed=3) + 4.0  # shifted far from p(x)
    scores = anomaly_scores(model, torch.cat([normal, outliers]), "elbo")
    labels = torch.cat([torch.zeros(100), torch.ones(100)]).bool()
    assert anomaly_auc(scores, labels) > 0.95


def _pairwise_auc(scores: list[float], labels: torch.Tensor) -> float:
    pos = [s for s, a in zip(scores, labels, strict=True) if a]
    neg = [s for s, a in zip(scores, labels, strict=True) if not a]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_anomaly_auc_known_cases() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    assert anomaly_auc(torch.tensor([1.0, 2, 3, 4, 5, 6]), labels) == 1.0
    assert anomaly_auc(torch.tensor([6.0, 5, 4, 3, 2, 1]), labels) == 0.0
    # Normal 1, 3, 5 against anomalies 2, 3, 6 (one tie): the anomaly 2 beats 1 normal, 3 beats
    # 1 and ties 1 (1.5), 6 beats all 3 -> 5.5 of 9 pairs.
    scores = torch.tensor([1.0, 3, 5, 2, 3, 6])
    assert anomaly_auc(scores, labels.bool()) == pytest.approx(5.5 / 9)
    assert anomaly_auc(scores, labels) == pytest.approx(_pairwise_auc(scores.tolist(), labels))


def test_anomaly_auc_gaussian_scores() -> None:
    # Normal ~ N(0, 1), anomalies ~ N(1, 1): AUC = P(Y > X) = Phi(1 / sqrt(2)) = 0.7602.
    # With 4000 + 4000 samples the AUC's standard error is ~0.005; 0.02 is 4 standard errors.
    g = torch.Generator().manual_seed(0)
    scores = torch.cat([torch.randn(4000, generator=g), torch.randn(4000, generator=g) + 1])
    labels = torch.cat([torch.zeros(4000), torch.ones(4000)])
    expected = 0.5 * (1 + math.erf(0.5))
    assert anomaly_auc(scores, labels) == pytest.approx(expected, abs=0.02)


def test_anomaly_auc_bad_arguments() -> None:
    with pytest.raises(ValueError, match="both anomalies and normal examples, got 0 anomalies"):
        anomaly_auc(torch.rand(4), torch.zeros(4))
    with pytest.raises(ValueError, match="expected the same length, got 4 and 3"):
        anomaly_auc(torch.rand(4), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="is_anomaly: expected booleans or 0/1"):
        anomaly_auc(torch.rand(3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"scores: expected shape \(N,\)"):
        anomaly_auc(torch.rand(3, 1), torch.tensor([0, 1, 0]))
    with pytest.raises(TypeError, match="scores"):
        anomaly_auc(np.zeros(3), torch.tensor([0, 1, 0]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        anomaly_auc(torch.tensor([0.0, math.nan]), torch.tensor([0, 1]))


def test_denoise_needs_reconstruct(make_linear_vae: type[LinearGaussianVAE]) -> None:
    with pytest.raises(TypeError, match=r"no method reconstruct\(\)"):
        denoise(nn.Linear(2, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"noisy: expected shape \(N, D\)"):
        denoise(make_linear_vae(), torch.zeros(3, 2, 2))
