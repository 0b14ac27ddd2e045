"""Closed-form KL divergences between diagonal Gaussians, and the free-bits objective.

All functions take log-variances and work elementwise over ``(..., L)``; they are computed in the
input dtype with ``expm1`` so that ``exp(x) - 1 - x`` keeps its precision for ``|x|`` small
(the usual regime near the prior). ``logvar`` is not clamped here: the KL of the distribution the
arguments describe is returned as is (``exp(logvar)`` overflows float16 above ``logvar ~ 11.09``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

__all__ = ["gaussian_kl", "gaussian_kl_between", "gaussian_kl_free_bits"]

Reduction = Literal["none", "sum", "mean", "batchmean"]
_REDUCTIONS = ("none", "sum", "mean", "batchmean")


def _check_tensor(name: str, t: Tensor) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}")
    if t.dim() == 0:
        raise ValueError(f"{name}: expected shape (..., L) with at least one dimension, got ()")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")


def _check_reducible(shape: torch.Size, reduction: str, names: str) -> None:
    """``"mean"`` of no element or ``"batchmean"`` of no row would be ``0 / 0 = NaN``."""
    if (reduction == "mean" and math.prod(shape) == 0) or (
        reduction == "batchmean" and shape[0] == 0
    ):
        raise ValueError(
            f"{names}: reduction={reduction!r} needs at least one "
            f"{'element' if reduction == 'mean' else 'row'}, got shape {tuple(shape)}"
        )


def _reduce(kl: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return kl
    if reduction == "sum":
        return kl.sum()
    if reduction == "mean":
        return kl.mean()
    # batchmean: sum / size of dim 0
    return kl.sum() / kl.shape[0]


def gaussian_kl(mu: Tensor, logvar: Tensor, *, reduction: Reduction = "none") -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) in closed form, per element.

    ``KL = 0.5 * (mu^2 + exp(logvar) - 1 - logvar)`` for each latent dimension (the diagonal
    Gaussian's KL is the sum over dimensions).

    Args:
        mu: posterior mean, ``(..., L)``.
        logvar: posterior log-variance, same shape as ``mu``.
        reduction: ``"none"`` returns ``(..., L)``; ``"sum"`` the sum of all elements;
            ``"mean"`` their mean; ``"batchmean"`` the sum divided by the size of dim 0 (the
            per-example KL averaged over the batch, the usual ELBO term).

    Returns:
        ``(..., L)`` for ``"none"``, otherwise a scalar tensor.

    Raises:
        TypeError: ``mu`` or ``logvar`` is not a floating-point tensor.
        ValueError: a 0-dim input, different shapes, an unknown ``reduction``, or
            ``"mean"`` / ``"batchmean"`` of an empty input (no element / no row).

    Example:
        >>> import torch
        >>> from gentorch.losses import gaussian_kl
        >>> mu, logvar = torch.ones(16, 4), torch.zeros(16, 4)
        >>> gaussian_kl(mu, logvar).shape
        torch.Size([16, 4])
        >>> gaussian_kl(mu, logvar, reduction="batchmean")  # 4 dimensions * 0.5 * 1^2
        tensor(2.)
    """
    _check_tensor("mu", mu)
    _check_tensor("logvar", logvar)
    if mu.shape != logvar.shape:
        raise ValueError(
            f"mu and logvar: expected the same shape, got mu {tuple(mu.shape)} and "
            f"logvar {tuple(logvar.shape)}"
        )
    _check_reduction(reduction)
    _check_reducible(mu.shape, reduction, "mu and logvar")
    # 0.5 * (mu^2 + (e^lv - 1) - lv)
    kl = 0.5 * (mu.square() + torch.expm1(logvar) - logvar)
    return _reduce(kl, reduction)


def gaussian_kl_between(
    mu_q: Tensor,
    logvar_q: Tensor,
    mu_p: Tensor,
    logvar_p: Tensor,
    *,
    reduction: Reduction = "none",
) -> Tensor:
    """KL(N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p))) between diagonal Gaussians.

    ``KL = 0.5 * (logvar_p - logvar_q + (exp(logvar_q) + (mu_q - mu_p)^2) / exp(logvar_p) - 1)``
    per element. The four arguments broadcast against each other (e.g. a learned prior of shape
    ``(L,)`` against a posterior ``(B, L)``).

    Args:
        mu_q, logvar_q: the first distribution, ``(..., L)``.
        mu_p, logvar_p: the second distribution, broadcastable to the first.
        reduction: as in :func:`gaussian_kl`, applied to the broadcast shape.

    Returns:
        The broadcast shape ``(..., L)`` for ``"none"``, otherwise a scalar tensor.

    Raises:
        TypeError: an argument is not a floating-point tensor.
        ValueError: a 0-dim input, shapes that do not broadcast, an unknown ``reduction``, or
            ``"mean"`` / ``"batchmean"`` of an empty broadcast shape.

    Example:
        >>> import torch
        >>> from gentorch.losses import gaussian_kl_between
        >>> q_mu, q_lv = torch.zeros(8, 3), torch.zeros(8, 3)
        >>> gaussian_kl_between(q_mu, q_lv, torch.ones(3), torch.zeros(3), reduction="sum")
        tensor(12.)
    """
    names = ("mu_q", "logvar_q", "mu_p", "logvar_p")
    args = (mu_q, logvar_q, mu_p, logvar_p)
    for name, t in zip(names, args, strict=True):
        _check_tensor(name, t)
    try:
        shape = torch.broadcast_shapes(*(t.shape for t in args))
    except RuntimeError:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in zip(names, args, strict=True))
        raise ValueError(
            f"mu_q, logvar_q, mu_p, logvar_p: shapes do not broadcast: {shapes}"
        ) from None
    _check_reduction(reduction)
    _check_reducible(shape, reduction, ", ".join(names))
    d = logvar_q - logvar_p
    # 0.5 * ((e^d - 1) - d + (mu_q - mu_p)^2 * e^-lv_p),  d = lv_q - lv_p
    kl = 0.5 * (torch.expm1(d) - d + (mu_q - mu_p).square() * torch.exp(-logvar_p))
    return _reduce(kl, reduction)


def gaussian_kl_free_bits(
    mu: Tensor,
    logvar: Tensor,
    free_bits: float,
    *,
    reduction: Reduction = "batchmean",
) -> Tensor:
    """KL to N(0, I) with free bits per latent dimension (Kingma et al. 2016, "IAF").

    For each latent dimension ``j`` the KL is averaged over all ``N`` rows (every leading
    dimension), ``KL_j = mean_rows KL(q(z_j|x) || N(0, 1))``, and replaced by ``free_bits`` when it
    is not above it: ``max(free_bits, KL_j)``. Kingma et al. group latents; here each dimension
    is its own group. The gradient w.r.t. ``mu`` and ``logvar`` is that of ``KL_j`` for the
    dimensions where ``KL_j > free_bits`` and exactly zero for the others (also at equality), so
    the optimiser stops squeezing dimensions that already cost no more than ``free_bits`` nats.

    Args:
        mu: posterior mean, ``(..., L)``.
        logvar: posterior log-variance, same shape.
        free_bits: the floor in nats per dimension, ``>= 0``.
        reduction: ``"none"`` returns the ``(L,)`` floored per-dimension means;
            ``"batchmean"`` (default) ``sum_j max(free_bits, KL_j) * N / size(0)``, the value to
            add to a batch-mean loss; ``"sum"`` that sum times ``N``; ``"mean"`` the sum divided
            by ``L``. With ``free_bits=0`` each reduction equals :func:`gaussian_kl`'s.

    Returns:
        ``(L,)`` for ``"none"``, otherwise a scalar tensor.

    Raises:
        ValueError: ``free_bits`` negative, not finite, not a number or beyond the inputs'
            dtype, an input with no row or no latent dimension, or as :func:`gaussian_kl`.
        TypeError: as :func:`gaussian_kl`.

    Example:
        >>> import torch
        >>> from gentorch.losses import gaussian_kl_free_bits
        >>> mu, logvar = torch.zeros(16, 4), torch.zeros(16, 4)
        >>> mu[:, 0] = 1.0  # KL_0 = 0.5, the other dimensions 0
        >>> gaussian_kl_free_bits(mu, logvar, 0.25, reduction="none")
        tensor([0.5000, 0.2500, 0.2500, 0.2500])
        >>> gaussian_kl_free_bits(mu, logvar, 0.25)  # their sum, per example
        tensor(1.2500)
    """
    if (
        isinstance(free_bits, bool)
        or not isinstance(free_bits, (int, float))
        or not 0 <= free_bits < math.inf
    ):
        raise ValueError(
            f"free_bits: expected a finite float >= 0 (nats per dimension), got {free_bits!r}"
        )
    _check_reduction(reduction)
    kl = gaussian_kl(mu, logvar)
    L = kl.shape[-1]
    if kl.numel() == 0:
        raise ValueError(
            "mu and logvar: expected at least one row and one latent dimension (..., L), got "
            f"shape {tuple(kl.shape)}"
        )
    n_rows = kl.numel() // L
    largest = torch.finfo(kl.dtype).max
    if free_bits > largest:
        raise ValueError(
            f"free_bits: expected at most the largest {kl.dtype} ({largest:.4g}), the inputs' "
            f"dtype, got {free_bits!r}"
        )
    # KL_j = mean over rows; floored at free_bits with zero gradient where KL_j <= free_bits
    kl_dim = kl.reshape(-1, L).mean(dim=0)
    floored = torch.where(kl_dim > free_bits, kl_dim, torch.full_like(kl_dim, float(free_bits)))
    if reduction == "none":
        return floored
    if reduction == "batchmean":
        return floored.sum() * (n_rows / kl.shape[0])
    if reduction == "sum":
        return floored.sum() * n_rows
    # mean
    return floored.sum() / L
