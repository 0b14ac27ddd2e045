"""Reparameterizable random variables beyond the diagonal Gaussian.

* :class:`LearnableNormal` — a Gaussian random variable whose mean and standard deviation are
  trainable parameters; its forward returns reparameterized samples.
* :class:`ReparameterizeLaplace`, :class:`ReparameterizeLogistic` — location-scale families fed
  ``[loc | log_scale]``, with the layer API of :class:`~gentorch.layers.Reparameterize` and its
  autograd function (one saved tensor, exact double backward, straight-through clamp).
* :class:`ReparameterizeFullCov` — a full-covariance Gaussian fed ``[mu | Cholesky entries]``.

The relaxed discrete families live in :mod:`gentorch.layers.relaxed`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gentorch._checks import check_generator
from gentorch.layers.reparameterize import (
    _check_n_samples,
    _check_range,
    _location_scale,
    _noise_like,
    _split,
)

__all__ = [
    "LOG_SCALE_RANGE",
    "LearnableNormal",
    "ReparameterizeFullCov",
    "ReparameterizeLaplace",
    "ReparameterizeLogistic",
]

#: Clamp of ``log_scale`` for the location-scale layers: half of ``LOGVAR_RANGE`` (scale^2 never
#: overflows float16).
LOG_SCALE_RANGE: tuple[float, float] = (-15.0, 5.5)

EvalMode = Literal["mean", "sample"]


def _check_eval_mode(eval_mode: str) -> None:
    if eval_mode not in ("mean", "sample"):
        raise ValueError(f"eval_mode: expected 'mean' or 'sample', got {eval_mode!r}")


def _uniform_open(like: Tensor, n_samples: int | None, generator: torch.Generator | None) -> Tensor:
    """``u ~ U(0, 1)``, ``u > 0``: ``rand`` is ``[0, 1)``; 0 is moved to the smallest normal."""
    u = _noise_like(torch.rand_like, like, n_samples, generator)
    return u.clamp_min_(torch.finfo(u.dtype).tiny)  # (clamp_min_ has a vmap batching rule)


def _as_float_tensor(name: str, value: float | Tensor) -> Tensor:
    """``value`` (a real number or a real tensor) as a tensor of the default dtype."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
        raise TypeError(f"{name}: expected a float or a tensor, got {type(value).__name__}")
    if isinstance(value, Tensor) and (value.dtype == torch.bool or value.is_complex()):
        raise TypeError(f"{name}: expected a real-valued tensor, got dtype {value.dtype}")
    return torch.as_tensor(value, dtype=torch.get_default_dtype())


class LearnableNormal(nn.Module):
    """A Gaussian random variable ``N(mean, std^2)`` with trainable ``mean`` and ``std``.

    ``forward()`` returns ``mean + std * eps``, ``eps ~ N(0, I)``, so gradients reach both
    parameters through the samples (unlike ``torch.normal(mean, std)``, whose output has no
    gradient). ``std = softplus(raw_std)``: always positive, and linear (not exponential) for
    large values.

    Args:
        shape: shape of the variable, e.g. ``(L,)``.
        init_mean: initial mean (a float, or a tensor broadcastable to ``shape``).
        init_std: initial standard deviation, ``> 0`` (float or broadcastable tensor).
        eval_mode: ``"mean"`` (default: eval returns ``mean``) or ``"sample"``.

    Raises:
        ValueError: ``shape`` is not positive ints, ``init_mean`` or ``init_std`` does not
            broadcast to it or is not finite (``init_std`` not ``> 0``), or ``eval_mode`` is
            unknown.
        TypeError: ``shape`` is neither an int nor a sequence, or ``init_mean`` or
            ``init_std`` is neither a number nor a real tensor.

    Input: none (``forward()`` takes only the keyword arguments ``n_samples`` and ``generator``).
    Output: ``shape``, or ``(K, *shape)`` with ``n_samples=K``.

    Example:
        >>> from gentorch.layers import LearnableNormal
        >>> noise = LearnableNormal((4,), init_mean=0.0, init_std=0.5)
        >>> z = noise(n_samples=8)  # differentiable w.r.t. noise.mean and noise.raw_std
        >>> z.shape
        torch.Size([8, 4])
        >>> z.sum().backward()
        >>> noise.mean.grad  # dz/dmean = 1 for each of the 8 samples
        tensor([8., 8., 8., 8.])
    """

    def __init__(
        self,
        shape: Sequence[int] | int,
        init_mean: float | Tensor = 0.0,
        init_std: float | Tensor = 1.0,
        eval_mode: EvalMode = "mean",
    ) -> None:
        super().__init__()
        if isinstance(shape, int):
            size: tuple[int, ...] = (shape,)
        elif isinstance(shape, Sequence) and not isinstance(shape, str):
            size = tuple(shape)
        else:
            raise TypeError(
                f"shape: expected an int or a sequence of ints, got {type(shape).__name__}"
            )
        if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in size):
            raise ValueError(f"shape: expected positive ints, got {shape!r}")
        _check_eval_mode(eval_mode)
        mean, std = (
            _as_float_tensor(name, value)
            for name, value in (("init_mean", init_mean), ("init_std", init_std))
        )
        for name, t in (("init_mean", mean), ("init_std", std)):
            try:
                torch.broadcast_shapes(t.shape, size)
            except RuntimeError:
                raise ValueError(
                    f"{name}: shape {tuple(t.shape)} does not broadcast to shape {size}"
                ) from None
        if not torch.isfinite(mean).all():
            raise ValueError(f"init_mean: expected finite values, got {init_mean!r}")
        if not (torch.isfinite(std).all() and (std > 0).all()):
            raise ValueError(f"init_std: expected finite values > 0, got {init_std!r}")
        self.shape = size
        self.eval_mode: EvalMode = eval_mode
        self.mean = nn.Parameter(mean.expand(size).clone())
        # softplus^-1(std) = std + log(-expm1(-std))
        self.raw_std = nn.Parameter((std + torch.log(-torch.expm1(-std))).expand(size).clone())

    @property
    def std(self) -> Tensor:
        """``softplus(raw_std)``, shape ``shape``."""
        return F.softplus(self.raw_std)

    def distribution(self) -> torch.distributions.Normal:
        """The current law as a :class:`torch.distributions.Normal` (for ``log_prob``, KL)."""
        return torch.distributions.Normal(self.mean, self.std)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, eval_mode={self.eval_mode!r}"

    def forward(
        self, *, n_samples: int | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw ``(K, *shape)`` (or ``shape``) reparameterized samples; eval/"mean": the mean.

        Args:
            n_samples: ``K`` samples sharing the parameters (``None``: one, no extra dimension).
            generator: a :class:`torch.Generator` on the parameters' device (reproducible noise).

        Returns:
            ``z``: ``shape`` or ``(K, *shape)``, differentiable w.r.t. ``mean`` and ``raw_std``.
        """
        _check_n_samples(n_samples)
        check_generator(generator)
        mean = self.mean
        if not self.training and self.eval_mode == "mean":
            return mean if n_samples is None else mean.expand(n_samples, *mean.shape)
        eps = _noise_like(torch.randn_like, mean.detach(), n_samples, generator)
        # z = mean + std * eps
        return mean + self.std * eps


class _LocationScale(nn.Module):
    """Shared forward of the ``[loc | log_scale]`` layers: ``loc + exp(log_scale) * e``."""

    def __init__(
        self,
        eval_mode: EvalMode = "mean",
        n_samples: int | None = None,
        *,
        log_scale_range: tuple[float, float] = LOG_SCALE_RANGE,
    ) -> None:
        super().__init__()
        _check_eval_mode(eval_mode)
        _check_n_samples(n_samples)
        self.eval_mode: EvalMode = eval_mode
        self.n_samples = n_samples
        self.log_scale_range = _check_range(log_scale_range, "log_scale_range")

    def extra_repr(self) -> str:
        lo, hi = self.log_scale_range
        return (
            f"eval_mode={self.eval_mode!r}, n_samples={self.n_samples}, "
            f"log_scale_range=({lo}, {hi})"
        )

    def _standard_noise(
        self, loc: Tensor, n_samples: int | None, generator: torch.Generator | None
    ) -> Tensor:
        raise NotImplementedError

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        *,
        n_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Sample (training, or ``eval_mode="sample"``) or return ``loc`` (eval, ``"mean"``).

        Args:
            x: ``(..., 2 * L)`` as ``[loc | log_scale]``, or a pair ``(loc, log_scale)``.
            n_samples: overrides the layer's ``n_samples`` for this call.
            generator: a :class:`torch.Generator` on the input's device.

        Returns:
            ``z``: ``(..., L)`` or ``(K, ..., L)``.
        """
        loc, log_scale = _split(x, ("loc", "log_scale"))
        _check_n_samples(n_samples)
        check_generator(generator)
        k = self.n_samples if n_samples is None else n_samples
        if not self.training and self.eval_mode == "mean":
            return loc if k is None else loc.expand(k, *loc.shape)
        e = self._standard_noise(loc, k, generator)
        lo, hi = self.log_scale_range
        # z = loc + exp(clamp(log_scale)) * e
        return _location_scale(loc, log_scale, e, (lo, hi, 1.0, k, None))


class ReparameterizeLaplace(_LocationScale):
    """Differentiable sampling from ``Laplace(loc, b)`` given ``[loc | log b]``.

    ``z = loc + b * e`` with ``e = -sign(u) * log(1 - 2|u|)``, ``u ~ U(-1/2, 1/2)`` (inverse CDF).
    Same API, memory use and gradients as :class:`~gentorch.layers.Reparameterize`, with
    ``log_scale`` in place of ``logvar`` (``dz/dlog_scale = b * e``) and its clamp
    :data:`LOG_SCALE_RANGE` (straight-through gradient). Eval ``"mean"`` returns ``loc``.

    Args:
        eval_mode: ``"mean"`` (default) or ``"sample"``.
        n_samples: default number of samples ``K``.
        log_scale_range: clamp of ``log b`` before ``exp``.

    Input: ``(..., 2L)`` as ``[loc | log_scale]`` or a pair.
    Output: ``(..., L)`` or ``(K, ..., L)``.

    Example:
        >>> import torch
        >>> from gentorch.layers import ReparameterizeLaplace
        >>> layer = ReparameterizeLaplace()
        >>> x = torch.cat([torch.full((16, 3), 2.0), torch.zeros(16, 3)], dim=-1)  # loc 2, b 1
        >>> layer(x).shape  # training mode: Laplace(2, 1) samples
        torch.Size([16, 3])
        >>> layer.eval()(x)[0]  # eval mode, eval_mode="mean": loc
        tensor([2., 2., 2.])
    """

    def _standard_noise(
        self, loc: Tensor, n_samples: int | None, generator: torch.Generator | None
    ) -> Tensor:
        u = _uniform_open(loc, n_samples, generator)
        # e = log(2u) for u < 1/2, -log(2(1 - u)) otherwise: -sign(u') log(1 - 2|u'|), u' = u - 1/2
        return torch.where(u < 0.5, torch.log(2 * u), -torch.log(2 * (1 - u)))


class ReparameterizeLogistic(_LocationScale):
    """Differentiable sampling from ``Logistic(loc, s)`` given ``[loc | log s]``.

    ``z = loc + s * log(u / (1 - u))``, ``u ~ U(0, 1)`` (inverse CDF). Same API, memory use and
    gradients as :class:`~gentorch.layers.Reparameterize`, with ``log_scale`` in place of
    ``logvar`` and its clamp :data:`LOG_SCALE_RANGE`. Eval ``"mean"`` returns ``loc``.

    Args:
        eval_mode: ``"mean"`` (default) or ``"sample"``.
        n_samples: default number of samples ``K``.
        log_scale_range: clamp of ``log s`` before ``exp``.

    Input: ``(..., 2L)`` as ``[loc | log_scale]`` or a pair.
    Output: ``(..., L)`` or ``(K, ..., L)``.

    Example:
        >>> import torch
        >>> from gentorch.layers import ReparameterizeLogistic
        >>> layer = ReparameterizeLogistic(n_samples=4)
        >>> layer(torch.zeros(16, 2 * 3)).shape  # 4 samples of Logistic(0, 1) per row
        torch.Size([4, 16, 3])
    """

    def _standard_noise(
        self, loc: Tensor, n_samples: int | None, generator: torch.Generator | None
    ) -> Tensor:
        # e = logit(u) ~ Logistic(0, 1)
        return torch.logit(_uniform_open(loc, n_samples, generator))


def _latent_dim(width: int) -> int | None:
    """``L`` with ``L + L (L + 1) / 2 = width``, or ``None`` if there is none."""
    # L^2 + 3L - 2 width = 0
    L = (math.isqrt(9 + 8 * width) - 3) // 2
    return L if L > 0 and width == L + L * (L + 1) // 2 else None


class ReparameterizeFullCov(nn.Module):
    """Differentiable sampling from ``N(mu, S S^T)`` given ``[mu | Cholesky entries of S]``.

    ``z = mu + S @ eps``, ``eps ~ N(0, I_L)``. The last dimension holds ``L`` means followed by
    the ``L (L + 1) / 2`` lower-triangular entries of ``S`` in ``torch.tril_indices(L, L)`` order
    (row by row). Off-diagonal entries are used as is; diagonal entries ``d`` become
    ``softplus(d)`` so that ``S`` is a valid Cholesky factor for any input. Gradients are
    autograd's. Eval ``"mean"`` returns ``mu``.

    Args:
        eval_mode: ``"mean"`` (default) or ``"sample"``.
        n_samples: default number of samples ``K``.

    Input: ``(..., L + L (L + 1) / 2)``. Output: ``(..., L)`` or ``(K, ..., L)``.

    Example:
        >>> import torch
        >>> from gentorch.layers import ReparameterizeFullCov
        >>> layer = ReparameterizeFullCov()
        >>> x = torch.zeros(8, 2 + 3)  # L = 2: [mu_1, mu_2 | S_11, S_21, S_22]
        >>> layer(x).shape, layer.split(x)[1].shape
        (torch.Size([8, 2]), torch.Size([8, 2, 2]))
    """

    def __init__(self, eval_mode: EvalMode = "mean", n_samples: int | None = None) -> None:
        super().__init__()
        _check_eval_mode(eval_mode)
        _check_n_samples(n_samples)
        self.eval_mode: EvalMode = eval_mode
        self.n_samples = n_samples

    def extra_repr(self) -> str:
        return f"eval_mode={self.eval_mode!r}, n_samples={self.n_samples}"

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(..., L + L(L+1)/2) -> mu (..., L), scale_tril (..., L, L)`` (lower triangular)."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x: expected a Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"x: expected a floating-point tensor, got dtype {x.dtype}")
        L = _latent_dim(x.shape[-1]) if x.dim() > 0 else None
        if L is None:
            raise ValueError(
                "x: expected last dimension L + L (L + 1) / 2 (e.g. 2, 5, 9, 14 for L = 1..4) "
                f"laid out [mu | Cholesky entries], got shape {tuple(x.shape)}"
            )
        mu, entries = x[..., :L], x[..., L:]
        rows, cols = torch.tril_indices(L, L, device=x.device)
        # diagonal entries -> softplus(d) > 0
        entries = torch.where(rows == cols, F.softplus(entries), entries)
        scale_tril = x.new_zeros(*x.shape[:-1], L, L)
        scale_tril[..., rows, cols] = entries
        return mu, scale_tril

    def forward(
        self,
        x: Tensor,
        *,
        n_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Sample (training, or ``eval_mode="sample"``) or return ``mu`` (eval, ``"mean"``).

        Args:
            x: ``(..., L + L (L + 1) / 2)`` as ``[mu | Cholesky entries]``.
            n_samples: overrides the layer's ``n_samples`` for this call.
            generator: a :class:`torch.Generator` on the input's device.

        Returns:
            ``z``: ``(..., L)`` or ``(K, ..., L)``.
        """
        mu, scale_tril = self.split(x)
        _check_n_samples(n_samples)
        check_generator(generator)
        k = self.n_samples if n_samples is None else n_samples
        if not self.training and self.eval_mode == "mean":
            return mu if k is None else mu.expand(k, *mu.shape)
        eps = _noise_like(torch.randn_like, mu.detach(), k, generator)
        # z = mu + S @ eps
        return mu + (scale_tril @ eps.unsqueeze(-1)).squeeze(-1)
