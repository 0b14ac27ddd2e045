"""Continuous relaxations of discrete variables: Gumbel-Softmax / Concrete and Relaxed Bernoulli.

Jang et al. 2017 and Maddison et al. 2017: a categorical sample ``one_hot(argmax(l + g))``
(``g`` Gumbel noise, the Gumbel-max trick) is relaxed to ``softmax((l + g) / tau)``, which is
differentiable in the logits ``l``; as ``tau -> 0`` it approaches the one-hot sample. With
``hard=True`` the forward returns the exact one-hot (or 0/1) value and the backward uses the
relaxed sample's gradient (straight-through).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from gentorch._checks import check_bool, check_generator
from gentorch.layers.reparameterize import (
    _check_n_samples,
    _noise_like,
)

__all__ = ["GumbelSoftmax", "RelaxedBernoulli"]

DiscreteEvalMode = Literal["mean", "mode", "sample"]


def _check_common(temperature: float, eval_mode: str, n_samples: int | None) -> float:
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not math.isfinite(temperature)
        or temperature <= 0
    ):
        raise ValueError(f"temperature: expected a finite float > 0, got {temperature!r}")
    if eval_mode not in ("mean", "mode", "sample"):
        raise ValueError(f"eval_mode: expected 'mean', 'mode' or 'sample', got {eval_mode!r}")
    _check_n_samples(n_samples)
    return float(temperature)


def _check_logits(logits: Tensor) -> None:
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits: expected a Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits: expected a floating-point tensor, got dtype {logits.dtype}")
    if logits.dim() == 0:
        raise ValueError("logits: expected shape (..., C) with at least one dimension, got ()")


def _straight_through(hard: Tensor, soft: Tensor) -> Tensor:
    """Value ``hard`` exactly, gradient of ``soft`` (``soft - soft.detach()`` is exactly 0)."""
    return hard + (soft - soft.detach())


def _expand(t: Tensor, n_samples: int | None) -> Tensor:
    return t if n_samples is None else t.expand(n_samples, *t.shape)


class _Relaxed(nn.Module):
    """What GumbelSoftmax and RelaxedBernoulli share: their settings, the checks, the eval-mode
    summaries and the straight-through output. A subclass says how to draw the relaxed sample
    from uniform noise (:meth:`_relax`), what its mean and mode are, and how to harden it."""

    def __init__(
        self,
        temperature: float = 1.0,
        hard: bool = False,
        eval_mode: DiscreteEvalMode = "mean",
        n_samples: int | None = None,
    ) -> None:
        super().__init__()
        self.temperature = _check_common(temperature, eval_mode, n_samples)
        self.hard = check_bool("hard", hard)
        self.eval_mode: DiscreteEvalMode = eval_mode
        self.n_samples = n_samples

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, hard={self.hard}, eval_mode={self.eval_mode!r}, "
            f"n_samples={self.n_samples}"
        )

    def forward(
        self,
        logits: Tensor,
        *,
        n_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Relaxed sample (training, or ``eval_mode="sample"``), or the eval-mode summary.

        Args:
            logits: ``(..., C)``, floating point.
            n_samples: overrides the layer's ``n_samples`` for this call.
            generator: a :class:`torch.Generator` on ``logits``' device.

        Returns:
            ``(..., C)`` or ``(K, ..., C)``.
        """
        _check_logits(logits)
        self._check_classes(logits)
        _check_n_samples(n_samples)
        check_generator(generator)
        tau = _check_common(self.temperature, self.eval_mode, None)
        k = self.n_samples if n_samples is None else n_samples
        if not self.training and self.eval_mode != "sample":
            if self.eval_mode == "mean":
                return _expand(self._mean(logits), k)
            return _expand(self._mode(logits), k)
        u = _noise_like(torch.rand_like, logits.detach(), k, generator)
        y = self._relax(logits, u, tau)
        if self.hard:
            return _straight_through(self._harden(y), y)
        return y

    def _check_classes(self, logits: Tensor) -> None:
        """Raise if ``logits`` cannot hold this family's variables (default: any shape)."""

    def _mean(self, logits: Tensor) -> Tensor:
        raise NotImplementedError

    def _mode(self, logits: Tensor) -> Tensor:
        raise NotImplementedError

    def _relax(self, logits: Tensor, u: Tensor, tau: float) -> Tensor:
        """The relaxed sample ``(K, ..., C)`` from ``u ~ U[0, 1)`` of that shape."""
        raise NotImplementedError

    def _harden(self, y: Tensor) -> Tensor:
        """The exact discrete sample that the relaxed sample ``y`` stands for."""
        raise NotImplementedError


class GumbelSoftmax(_Relaxed):
    """Differentiable relaxed categorical samples (Gumbel-Softmax / Concrete).

    ``y = softmax((logits + g) / temperature)`` over the last dimension, with
    ``g = -log(E)``, ``E ~ Exp(1)`` (standard Gumbel noise). ``argmax(y)`` is an exact sample of
    ``Categorical(softmax(logits))`` for any temperature. With ``hard=True`` the output is
    ``one_hot(argmax(y))`` and its gradient is ``y``'s (straight-through).

    Args:
        temperature: ``tau > 0``; may be changed between calls (annealing).
        hard: return one-hot vectors with straight-through gradients.
        eval_mode: in eval mode return ``"mean"`` (default: ``softmax(logits)``, the categorical's
            mean), ``"mode"`` (``one_hot(argmax(logits))``) or ``"sample"`` (keep sampling).
        n_samples: default number of samples ``K``.

    Input: ``logits`` ``(..., C)`` (unnormalised log-probabilities).
    Output: ``(..., C)`` on the simplex, or ``(K, ..., C)`` with ``n_samples=K``.

    Example:
        >>> import torch
        >>> from gentorch.layers import GumbelSoftmax
        >>> layer = GumbelSoftmax(temperature=0.5, hard=True)
        >>> y = layer(torch.randn(16, 10, requires_grad=True))
        >>> y.shape, bool((y.sum(-1) == 1).all()), bool(((y == 0) | (y == 1)).all())  # one-hot
        (torch.Size([16, 10]), True, True)
        >>> layer.eval()(torch.tensor([[0.0, 1.0, 0.0]]))  # eval_mode="mean": softmax(logits)
        tensor([[0.2119, 0.5761, 0.2119]])
    """

    def _check_classes(self, logits: Tensor) -> None:
        if logits.shape[-1] == 0:
            raise ValueError(
                f"logits: expected shape (..., C) with C >= 1 categories, got {tuple(logits.shape)}"
            )

    def _mean(self, logits: Tensor) -> Tensor:
        return torch.softmax(logits, dim=-1)

    def _mode(self, logits: Tensor) -> Tensor:
        return _one_hot_argmax(logits)

    def _relax(self, logits: Tensor, u: Tensor, tau: float) -> Tensor:
        # E = -log(1 - u) ~ Exp(1), u in [0, 1) so E >= 0; floor at the smallest normal
        # g = -log(E) ~ Gumbel(0, 1)
        g = -torch.log(torch.log1p(-u).neg_().clamp_min_(torch.finfo(u.dtype).tiny))
        a = logits + g
        # y = softmax((a - max a) / tau): the shift (exact for softmax) keeps a / tau from
        # overflowing to inf - inf = NaN at small tau or in float16
        return torch.softmax((a - a.detach().amax(dim=-1, keepdim=True)) / tau, dim=-1)

    def _harden(self, y: Tensor) -> Tensor:
        return _one_hot_argmax(y)


def _one_hot_argmax(y: Tensor) -> Tensor:
    """``one_hot(argmax(y, -1))`` in ``y``'s dtype, ``(..., C)``."""
    index = y.argmax(dim=-1, keepdim=True)
    return torch.zeros_like(y).scatter(-1, index, 1.0)  # (out of place: vmap has its rule)


class RelaxedBernoulli(_Relaxed):
    """Differentiable relaxed Bernoulli samples (binary Concrete).

    ``y = sigmoid((logits + l) / temperature)`` elementwise, with ``l = log(u / (1 - u))``,
    ``u ~ U(0, 1)`` (standard logistic noise). ``y > 1/2`` is an exact
    ``Bernoulli(sigmoid(logits))`` sample for any temperature. With ``hard=True`` the output is
    that 0/1 value and its gradient is ``y``'s (straight-through).

    Args:
        temperature: ``tau > 0``; may be changed between calls (annealing).
        hard: return 0/1 values with straight-through gradients.
        eval_mode: in eval mode return ``"mean"`` (default: ``sigmoid(logits)``), ``"mode"``
            (``logits > 0`` as 0/1) or ``"sample"``.
        n_samples: default number of samples ``K``.

    Input: ``logits`` ``(..., L)``. Output: ``(..., L)`` or ``(K, ..., L)``, in ``(0, 1)`` up to
    rounding: ``sigmoid`` returns exactly 1.0 above ~16.6 in float32 (~36.7 in float64), which
    a logistic draw divided by a small temperature can reach.

    Example:
        >>> import torch
        >>> from gentorch.layers import RelaxedBernoulli
        >>> layer = RelaxedBernoulli(temperature=0.5)
        >>> y = layer(torch.zeros(16, 8))
        >>> y.shape, bool(((y >= 0) & (y <= 1)).all())
        (torch.Size([16, 8]), True)
    """

    def _mean(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits)

    def _mode(self, logits: Tensor) -> Tensor:
        return (logits > 0).to(logits.dtype)

    def _relax(self, logits: Tensor, u: Tensor, tau: float) -> Tensor:
        # l = logit(u) ~ Logistic(0, 1); u = 0 moved to the smallest normal
        noise = torch.logit(u.clamp_min_(torch.finfo(u.dtype).tiny))
        # y = sigmoid((logits + l) / tau)
        return torch.sigmoid((logits + noise) / tau)

    def _harden(self, y: Tensor) -> Tensor:
        # y > 1/2, i.e. logits + l > 0: the Bernoulli sample
        return (y > 0.5).to(y.dtype)
