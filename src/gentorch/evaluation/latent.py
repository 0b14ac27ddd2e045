"""How a VAE uses its latent space: active units and KL per latent dimension."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gentorch._checks import check_positive_int
from gentorch._float64 import to_float64
from gentorch.evaluation._running import (
    check_images,
    check_labels,
    evaluating,
    label_args,
    model_method,
)
from gentorch.losses import gaussian_kl

__all__ = ["active_units", "kl_per_dimension", "posterior_means"]


def _encode_all(
    model: nn.Module, images: Tensor, batch_size: int, labels: Tensor | None
) -> tuple[Tensor, Tensor]:
    """``(mu, logvar)`` of ``q(z | x)`` (``q(z | x, y)`` given labels) for every example: two
    ``(N, L)`` tensors."""
    images = check_images(images)
    batch_size = check_positive_int("batch_size", batch_size)
    labels = check_labels(labels, images.shape[0])
    encode = model_method(model, "encode")
    mus, logvars = [], []
    with evaluating(model):
        for start in range(0, images.shape[0], batch_size):
            stop = start + batch_size
            mu, logvar = encode(images[start:stop], *label_args(labels, start, stop))
            mus.append(mu)
            logvars.append(logvar)
    return torch.cat(mus), torch.cat(logvars)


def posterior_means(
    model: nn.Module, images: Tensor, *, batch_size: int = 1024, labels: Tensor | None = None
) -> Tensor:
    """Means of the approximate posterior ``E_q[z | x]`` for every example.

    Args:
        model: a VAE with ``encode(x) -> (mu, logvar)``.
        images: ``(N, D)`` examples.
        batch_size: examples per encoder call.
        labels: ``(N,)`` class labels for a conditional model, passed as ``encode(x, y)``.

    Returns:
        ``(N, L)`` posterior means, e.g. for a latent scatter plot.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import posterior_means
        >>> from gentorch.models import VAE
        >>> mu = posterior_means(VAE(64, [32], 2), torch.rand(8, 64))
        >>> mu.shape  # plot with gentorch.plotting.save_latent_scatter
        torch.Size([8, 2])
    """
    return _encode_all(model, images, batch_size, labels)[0]


def active_units(
    model: nn.Module,
    images: Tensor,
    threshold: float = 0.01,
    *,
    batch_size: int = 1024,
    labels: Tensor | None = None,
) -> int:
    """Number of active latent units (Burda et al., 2015).

    Unit ``j`` is active when ``A_j = Cov_x(E_q[z_j | x]) > threshold``: its posterior mean
    varies across the data instead of collapsing onto the prior. The variance over examples is
    the unbiased sample variance.

    Args:
        model: a VAE with ``encode(x) -> (mu, logvar)``.
        images: ``(N, D)`` examples, ``N >= 2``.
        threshold: activity threshold (0.01 in the paper).
        batch_size: examples per encoder call.
        labels: ``(N,)`` class labels for a conditional model, passed as ``encode(x, y)``.

    Returns:
        The count of active units, between 0 and ``L``.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import active_units
        >>> from gentorch.models import VAE
        >>> _ = torch.manual_seed(0)
        >>> model, x = VAE(64, [32], 2), torch.rand(8, 64)
        >>> active_units(model, x)  # untrained: the means barely move (A_j ~ 0.001-0.004)
        0
        >>> active_units(model, x, threshold=0.0)
        2
    """
    if isinstance(images, Tensor) and images.dim() == 2 and images.shape[0] < 2:
        raise ValueError(
            f"images: need at least 2 examples to measure activity, got shape {tuple(images.shape)}"
        )
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise TypeError(f"threshold: expected a float, got {type(threshold).__name__}")
    if not (threshold >= 0 and math.isfinite(threshold)):
        raise ValueError(f"threshold: expected a non-negative finite number, got {threshold!r}")
    mu, _ = _encode_all(model, images, batch_size, labels)
    # A_j = Var_x(mu_j(x)), unbiased, in float64
    activity = to_float64(mu).var(dim=0, unbiased=True)
    return int((activity > threshold).sum())


def kl_per_dimension(
    model: nn.Module, images: Tensor, *, batch_size: int = 1024, labels: Tensor | None = None
) -> Tensor:
    """Average KL divergence from the posterior to the prior, per latent dimension.

    ``KL_j = 1/N sum_n KL(q(z_j | x_n) || N(0, 1))
    = 1/N sum_n 1/2 (mu_nj^2 + exp(logvar_nj) - 1 - logvar_nj)``; the values sum to the KL term
    of the ELBO averaged over the data. Dimensions with ``KL_j ~ 0`` are collapsed.

    Args:
        model: a VAE with ``encode(x) -> (mu, logvar)`` and a diagonal Gaussian posterior.
        images: ``(N, D)`` examples.
        batch_size: examples per encoder call.
        labels: ``(N,)`` class labels for a conditional model, passed as ``encode(x, y)``.

    Returns:
        ``(L,)`` nats per dimension, float64, on ``images``' device (on the CPU for MPS,
        which has no float64).

    Example:
        >>> import torch
        >>> from gentorch.evaluation import kl_per_dimension
        >>> from gentorch.models import VAE
        >>> kl = kl_per_dimension(VAE(64, [32], 2), torch.rand(8, 64))
        >>> kl.shape, kl.dtype, bool((kl >= 0).all())
        (torch.Size([2]), torch.float64, True)
    """
    mu, logvar = _encode_all(model, images, batch_size, labels)
    return gaussian_kl(to_float64(mu), to_float64(logvar)).mean(dim=0)
