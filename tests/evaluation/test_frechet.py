import numpy as np
import pytest
import scipy.linalg
import torch

from gentorch.evaluation import frechet_distance


def _samples_with_exact_moments(
    mean: torch.Tensor, cov: torch.Tensor, n: int, generator: torch.Generator
) -> torch.Tensor:
    """n samples whose sample mean and unbiased covariance equal `mean` and `cov` exactly."""
    d = mean.shape[0]
    z = torch.randn(n, d, generator=generator, dtype=torch.float64)
    z = z - z.mean(0)
    # Whiten the sample covariance to the identity, then colour it with chol(cov).
    sample_cov = z.T @ z / (n - 1)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(sample_cov)).T
    samples: torch.Tensor = mean + z @ torch.linalg.cholesky(cov).T
    return samples


def test_diagonal_gaussians_match_closed_form() -> None:
    g = torch.Generator().manual_seed(0)
    d = 6
    mu1, mu2 = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)
    s1 = torch.rand(d, dtype=torch.float64) + 0.1
    s2 = torch.rand(d, dtype=torch.float64) * 3 + 0.1
    a = _samples_with_exact_moments(mu1, torch.diag(s1), 200, g)
    b = _samples_with_exact_moments(mu2, torch.diag(s2), 300, g)
    # ||mu1 - mu2||^2 + sum(s1 + s2 - 2 sqrt(s1 s2)) for diagonal covariances
    expected = float(((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum())
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_commuting_full_covariances_match_closed_form() -> None:
    g = torch.Generator().manual_seed(1)
    d = 5
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    e1 = torch.rand(d, generator=g, dtype=torch.float64) + 0.2
    e2 = torch.rand(d, generator=g, dtype=torch.float64) + 0.2
    # Same eigenvectors: tr((S1 S2)^{1/2}) = sum sqrt(e1 e2)
    cov1, cov2 = q @ torch.diag(e1) @ q.T, q @ torch.diag(e2) @ q.T
    mu = torch.zeros(d, dtype=torch.float64)
    a = _samples_with_exact_moments(mu, cov1, 100, g)
    b = _samples_with_exact_moments(mu + 1, cov2, 100, g)
    expected = d + float((e1 + e2 - 2 * (e1 * e2).sqrt()).sum())
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_matches_scipy_sqrtm_on_general_covariances() -> None:
    g = torch.Generator().manual_seed(2)
    a = torch.randn(400, 8, generator=g) @ torch.randn(8, 8, generator=g)
    b = torch.randn(300, 8, generator=g) @ torch.randn(8, 8, generator=g) + 0.5
    a64, b64 = a.double().numpy(), b.double().numpy()
    c1, c2 = np.cov(a64, rowvar=False), np.cov(b64, rowvar=False)
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    diff = a64.mean(0) - b64.mean(0)
    expected = diff @ diff + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_symmetric_and_zero_for_identical_samples() -> None:
    g = torch.Generator().manual_seed(3)
    a = torch.randn(50, 10, generator=g)
    b = torch.randn(80, 10, generator=g) * 2 + 1
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_singular_covariances_stay_real_and_finite() -> None:
    # Fewer samples than features: both covariances are rank deficient.
    g = torch.Generator().manual_seed(4)
    a = torch.randn(10, 64, generator=g)
    b = torch.randn(12, 64, generator=g) + 0.1
    d = frechet_distance(a, b)
    assert np.isfinite(d)
    assert d > 0
    assert frechet_distance(a, a.clone()) == pytest.approx(0.0, abs=1e-7)


def test_returns_python_float_from_float32_input() -> None:
    d = frechet_distance(torch.randn(20, 3), torch.randn(20, 3))
    assert type(d) is float


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match=r"features_a: need at least 2 samples"):
        frechet_distance(torch.randn(1, 4), torch.randn(5, 4))
    with pytest.raises(ValueError, match=r"features_b: need at least 2 samples"):
        frechet_distance(torch.randn(5, 4), torch.randn(1, 4))
    with pytest.raises(ValueError, match=r"feature dimensions differ.*\(5, 4\).*\(5, 3\)"):
        frechet_distance(torch.randn(5, 4), torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"features_a: expected shape \(N, D\), got \(5,\)"):
        frechet_distance(torch.randn(5), torch.randn(5, 3))
    with pytest.raises(TypeError, match="features_b"):
        frechet_distance(torch.randn(5, 3), np.zeros((5, 3)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(torch.full((5, 3), float("nan")), torch.randn(5, 3))
