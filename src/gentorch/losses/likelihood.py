"""Log-likelihoods of a decoder's output: Bernoulli (on logits) and diagonal Gaussian.

Both return ``log p(x | decoder output)`` summed over the feature dimension (the last one), in
nats, one value per example: the reconstruction term of a VAE's ELBO is their batch mean. The
leading dimensions broadcast, so a decoder output ``(K, B, D)`` for ``K`` latent samples scores
data ``(B, D)`` without copying it first.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["bernoulli_log_likelihood", "gaussian_log_likelihood"]

_LOG_2PI = math.log(2.0 * math.pi)


def _check_features(name: str, value: Tensor, x: Tensor) -> None:
    """Raise unless ``value`` and ``x`` are floating tensors with the same last dimension."""
    for arg, t in ((name, value), ("x", x)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{arg}: expected a Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{arg}: expected a floating-point tensor, got dtype {t.dtype}")
        if t.dim() == 0:
            raise ValueError(f"{arg}: expected shape (..., D), got a 0-d tensor")
    if value.shape[-1] != x.shape[-1]:
        raise ValueError(
            f"{name} and x: expected the same feature size D in (..., D), got "
            f"{tuple(value.shape)} and {tuple(x.shape)}"
        )
    _check_broadcast(f"{name} and x", value.shape, x.shape)


def _check_broadcast(names: str, a: torch.Size, b: torch.Size) -> None:
    """``ValueError`` naming ``names`` unless shapes ``a`` and ``b`` broadcast.

    (By hand: ``torch.broadcast_shapes`` costs ~15 us, more than the loss on small batches.)
    """
    for m, n in zip(reversed(a), reversed(b), strict=False):
        if m != n and m != 1 and n != 1:
            raise ValueError(
                f"{names}: expected leading dimensions that broadcast (e.g. (B, D) against "
                f"(K, B, D)), got {tuple(a)} and {tuple(b)}"
            )


def bernoulli_log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
    """Log-likelihood of ``x`` under independent Bernoullis with the given logits, per example.

    ``log p(x | logits) = sum_d x_d * logits_d - softplus(logits_d)``, computed as written (no
    ``sigmoid`` then ``log``, so logits of any size are exact), with the gradients
    ``x - sigmoid(logits)`` and ``logits`` in one pass each. ``x`` in ``[0, 1]`` is accepted as
    is: for grey-level targets this is the usual "BCE on intensities" reconstruction term (not a
    normalised density); the values of ``x`` are not checked, to keep the call free of device
    syncs.

    Args:
        logits: decoder output, ``(..., D)``.
        x: data, ``(..., D)``, broadcastable against ``logits`` (e.g. ``(B, D)`` against
            ``(K, B, D)``).

    Returns:
        ``(...)``: the broadcast leading shape, summed over ``D``. Sum, not mean, over
        features: the book's ``784 * BCE`` equals ``-bernoulli_log_likelihood`` for 784 pixels.

    Raises:
        TypeError: ``logits`` or ``x`` is not a floating-point tensor.
        ValueError: a 0-dim input, different feature sizes ``D``, or leading dimensions that
            do not broadcast.

    Example:
        >>> import torch
        >>> from gentorch.losses import bernoulli_log_likelihood
        >>> logits = torch.zeros(2, 784)
        >>> bernoulli_log_likelihood(logits, torch.ones(2, 784))  # 784 * log(1/2)
        tensor([-543.4275, -543.4275])
        >>> bernoulli_log_likelihood(torch.zeros(5, 2, 784), torch.ones(2, 784)).shape  # K = 5
        torch.Size([5, 2])
    """
    _check_features("logits", logits, x)
    logits, x = torch.broadcast_tensors(logits, x)
    if torch.is_grad_enabled() and (logits.requires_grad or x.requires_grad):
        out: Tensor = _BernoulliLogLikelihood.apply(logits, x)
        return out
    return _bernoulli_values(logits, x)


def _bernoulli_values(logits: Tensor, x: Tensor) -> Tensor:
    """``sum_d x_d * l_d - softplus(l_d)`` in two passes over the logits (BCE-with-logits takes
    four, and its ``log_sigmoid`` kernel alone costs 3x a ``softplus`` on CPU)."""
    # Above its threshold softplus(l) = l, off by log1p(exp(-l)): e^-20 ~ 2e-9 is below
    # float32's resolution at 20, e^-40 below float64's at 40.
    threshold = 40.0 if logits.dtype == torch.float64 else 20.0
    return F.softplus(logits, threshold=threshold).addcmul_(logits, x, value=-1).sum(-1).neg_()


class _BernoulliLogLikelihood(torch.autograd.Function):
    """:func:`_bernoulli_values` with its gradients in one pass each: ``logits, x: (..., D)``
    of the same shape -> ``(...)``. The backward is made of differentiable ops (double backward
    works)."""

    @staticmethod
    def forward(ctx: Any, logits: Tensor, x: Tensor) -> Tensor:
        ctx.save_for_backward(logits, x)
        return _bernoulli_values(logits, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        logits, x = ctx.saved_tensors
        g = grad.unsqueeze(-1)
        grad_logits = grad_x = None
        if ctx.needs_input_grad[0]:
            # d/dl [x l - softplus(l)] = x - sigmoid(l)
            grad_logits = (x - torch.sigmoid(logits)) * g
        if ctx.needs_input_grad[1]:
            # d/dx [x l - softplus(l)] = l
            grad_x = logits * g
        return grad_logits, grad_x


def gaussian_log_likelihood(mean: Tensor, x: Tensor, logvar: Tensor | float = 0.0) -> Tensor:
    """Log-density of ``x`` under a diagonal Gaussian ``N(mean, exp(logvar))``, per example.

    The full density, constant included:
    ``log p(x) = -1/2 * sum_d [log(2 pi) + logvar_d + (x_d - mean_d)^2 / exp(logvar_d)]``.
    With the default ``logvar=0`` (unit variance) this is ``-1/2 * ||x - mean||^2 - D/2 log(2 pi)``:
    the "MSE" reconstruction term.

    Args:
        mean: decoder output, ``(..., D)``.
        x: data, ``(..., D)``, broadcastable against ``mean``.
        logvar: log-variance: a float (fixed, shared by every feature) or a tensor broadcastable
            against ``(..., D)`` (e.g. a learned ``()`` or ``(D,)`` parameter, or a
            per-example ``(..., D)`` decoder output).

    Returns:
        ``(...)``: the broadcast leading shape, summed over ``D``.

    Raises:
        TypeError: ``mean``, ``x`` or a tensor ``logvar`` is not floating point, or ``logvar``
            is neither a tensor nor a number (a bool is refused).
        ValueError: a 0-dim input, different feature sizes ``D``, leading dimensions (of
            ``mean``, ``x`` and a tensor ``logvar``) that do not broadcast, a ``logvar`` whose
            last dimension is neither 1 nor ``D``, or a non-finite float ``logvar``.

    Example:
        >>> import torch
        >>> from gentorch.losses import gaussian_log_likelihood
        >>> mean = torch.zeros(3, 5)
        >>> gaussian_log_likelihood(mean, torch.zeros(3, 5))  # -5/2 * log(2 pi)
        tensor([-4.5947, -4.5947, -4.5947])
    """
    _check_features("mean", mean, x)
    if isinstance(logvar, Tensor):
        if not logvar.is_floating_point():
            raise TypeError(f"logvar: expected a floating-point tensor, got dtype {logvar.dtype}")
        # Sum over D below must see D features: a logvar wider than D would be summed wrongly.
        if logvar.dim() > 0 and logvar.shape[-1] not in (1, x.shape[-1]):
            raise ValueError(
                f"logvar: expected a shape broadcastable to (..., {x.shape[-1]}), "
                f"got {tuple(logvar.shape)}"
            )
        if logvar.dim() > 1:
            # (pairwise broadcasting of the three shapes is joint broadcasting)
            _check_broadcast("logvar and mean", logvar.shape, mean.shape)
            _check_broadcast("logvar and x", logvar.shape, x.shape)
        inv_var: Tensor | float = torch.exp(-logvar)
    elif isinstance(logvar, (int, float)) and not isinstance(logvar, bool):
        if not math.isfinite(logvar):
            raise ValueError(f"logvar: expected a finite number, got {logvar}")
        inv_var = math.exp(-logvar)
    else:
        raise TypeError(f"logvar: expected a Tensor or a float, got {type(logvar).__name__}")
    # log N(x; m, v) = -1/2 [log(2 pi) + log v + (x - m)^2 / v], summed over features
    # (x and mean share D, so a () or (..., 1) logvar is counted once per feature.)
    return -0.5 * ((x - mean).square() * inv_var + logvar + _LOG_2PI).sum(-1)
