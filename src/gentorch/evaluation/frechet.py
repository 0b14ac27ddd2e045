"""Fréchet distance between two sets of features (FID / FLD).

Each set is summarised by a Gaussian with its sample mean and covariance; the distance is the
2-Wasserstein distance between the two Gaussians (Dowson & Landau, 1982; Heusel et al., 2017).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gentorch._float64 import to_float64

__all__ = ["frechet_distance"]


def _check_features(name: str, features: object) -> Tensor:
    if not isinstance(features, Tensor):
        raise TypeError(
            f"{name}: expected a torch.Tensor of shape (N, D), got {type(features).__name__}"
        )
    if features.dim() != 2:
        raise ValueError(f"{name}: expected shape (N, D), got {tuple(features.shape)}")
    if features.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one feature (D >= 1), got shape (N, 0)")
    if features.shape[0] < 2:
        raise ValueError(
            f"{name}: need at least 2 samples (rows) to estimate a covariance, "
            f"got {features.shape[0]}"
        )
    if features.is_complex() or features.dtype == torch.bool:
        raise TypeError(f"{name}: expected a real-valued tensor, got dtype {features.dtype}")
    features = to_float64(features.detach())
    if not bool(torch.isfinite(features).all()):
        raise ValueError(f"{name}: contains NaN or Inf values")
    return features


def _cov(centred: Tensor, scale: float) -> Tensor:
    # Unbiased sample covariance of the features / scale: S = Xc^T Xc / (N - 1)
    x = centred / scale
    return x.T @ x / (centred.shape[0] - 1)


def _psd_sqrt(cov: Tensor) -> Tensor:
    # sqrt(S) = V diag(sqrt(max(lambda, 0))) V^T; negative eigenvalues are rounding noise of a PSD S
    eigvals, eigvecs = torch.linalg.eigh(cov)
    root: Tensor = (eigvecs * eigvals.clamp(min=0).sqrt()) @ eigvecs.T
    return root


def frechet_distance(features_a: Tensor, features_b: Tensor) -> float:
    """Fréchet distance between the Gaussians fitted to two sets of features.

    ``d^2 = ||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^{1/2} S_b S_a^{1/2})^{1/2})``,
    the squared 2-Wasserstein distance between ``N(mu_a, S_a)`` and ``N(mu_b, S_b)`` with sample
    means and unbiased sample covariances. This is the quantity reported as FID (Inception
    features) or FLD (features of a small classifier). The matrix square root is taken through
    symmetric eigendecompositions in float64, which stays stable for singular covariances
    (fewer samples than features) where ``scipy.linalg.sqrtm(S_a @ S_b)`` can return complex
    noise. Eigenvalues below zero, which a PSD matrix only has through rounding, count as zero.

    Args:
        features_a: ``(N_a, D)`` features of the first set, ``N_a >= 2``.
        features_b: ``(N_b, D)`` features of the second set, ``N_b >= 2``, same ``D``.

    Returns:
        The distance (squared, as in the FID convention) as a Python float ``>= 0``.

    Raises:
        TypeError: if an argument is not a real tensor.
        ValueError: if a shape is not ``(N, D)``, ``N < 2``, the ``D`` differ, or a value is
            not finite.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import frechet_distance
        >>> _ = torch.manual_seed(0)
        >>> a, b = torch.randn(2000, 8), torch.randn(2000, 8) + 1.0
        >>> abs(frechet_distance(a, b) - 8.0) < 0.5  # same covariance: ||mu_a - mu_b||^2 = 8
        True
        >>> frechet_distance(a, a)
        0.0
    """
    a = _check_features("features_a", features_a)
    b = _check_features("features_b", features_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"features_a and features_b: feature dimensions differ, got {tuple(a.shape)} "
            f"and {tuple(b.shape)}; expected the same D"
        )
    b = b.to(a.device)
    mu_a, mu_b = a.mean(dim=0), b.mean(dim=0)
    centred_a, centred_b = a - mu_a, b - mu_b
    # The covariance terms scale as s^2 when the features do as s: compute them for the features
    # divided by a power of two s ~ max |centred value| (exact), then multiply by s^2. Else
    # S_a^{1/2} S_b S_a^{1/2}, quartic in the features, overflows from ~1e77 and underflows
    # below ~1e-77 (wrong distances, or an eigh that fails to converge).
    largest = float(torch.maximum(centred_a.abs().max(), centred_b.abs().max()))
    scale = math.ldexp(1.0, math.frexp(largest)[1] - 1) if 0 < largest < math.inf else 1.0
    cov_a, cov_b = _cov(centred_a, scale), _cov(centred_b, scale)
    sqrt_a = _psd_sqrt(cov_a)
    # tr((S_a S_b)^{1/2}) = sum sqrt(eig(S_a^{1/2} S_b S_a^{1/2})), a symmetric PSD matrix
    middle = sqrt_a @ cov_b @ sqrt_a
    middle = (middle + middle.T) / 2
    trace_sqrt = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()
    diff = mu_a - mu_b
    # d^2 = ||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^{1/2})
    covariance_terms = float(cov_a.trace() + cov_b.trace() - 2 * trace_sqrt)
    # Rounding can leave -1e-12 for identical sets; the true value is >= 0.
    return max(float(diff @ diff) + covariance_terms * scale * scale, 0.0)
