"""The reparameterization trick for a diagonal Gaussian: ``z = mu + exp(logvar / 2) * eps``.

``eps ~ N(0, I)`` is drawn on the input's device and in its dtype, so ``z`` is a differentiable
function of ``mu`` and ``logvar`` (Kingma & Welling 2014). The gradient is written out in a
custom :class:`torch.autograd.Function`:

* ``dL/dmu = g`` and ``dL/dlogvar = 0.5 * g * eps * sigma``, summed over the sample dimension
  when ``n_samples=K``;
* the only tensor saved for backward is ``h = 0.5 * sigma * eps`` (the shape of ``z``), which
  is ``dz/dlogvar`` itself, so the backward is one multiplication; ``eps`` and ``sigma`` are
  freed after the forward. The plain formula ``mu + exp(0.5 * logvar) * eps`` saves both
  ``sigma`` and ``eps``: twice as many bytes. (The noise is drawn as ``0.5 * eps`` in one kernel
  and ``z = mu + 2 * h``: scaling by powers of two is exact, so ``z`` is bit-for-bit the plain
  formula's with the same noise);
* ``h`` is saved as a (hidden) *output* of the function, so the backward, written with ordinary
  differentiable operations on ``h``, is itself differentiable through ``dh/dlogvar = 0.5 * h``:
  double backward (gradient penalties) is exact, with nothing regenerated;
* forward mode (``torch.func.jvp``, ``jacfwd``) gives ``dz = dmu + 0.5 * sigma * eps * dlogvar``,
  and ``torch.func.vmap`` (with ``randomness="different"`` or ``"same"``, as for any random op)
  and ``torch.func.grad`` work, so per-example gradients through the layer need no loop.

``logvar`` is clamped to :data:`LOGVAR_RANGE` ``= (-30, 11)`` before ``exp``: ``exp(11) ~ 59874``
is below the float16 maximum 65504 (and far below the bfloat16 and float32 maxima), so neither
``exp(logvar)`` nor ``exp(logvar / 2)`` overflows in any of those dtypes; at ``-30`` sigma is
``3.1e-7``, still a float16 subnormal rather than zero. The gradient through the clamp is
*straight-through*: ``dz/dlogvar = 0.5 * eps * sigma`` with ``sigma`` taken at the clamped value,
for every element, including those outside the range. There it is not the derivative of the
clamped forward (which would be zero), but a unit pushed past the range is not left stuck: the
loss still says which way to move it.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from gentorch._autograd_modes import transforms_or_forward_ad_active
from gentorch._checks import check_bool, check_generator, check_positive_int, values_hold

__all__ = ["LOGVAR_RANGE", "Reparameterize", "reparameterize"]

#: Default clamp applied to ``logvar`` before ``exp`` (see the module docstring).
LOGVAR_RANGE: tuple[float, float] = (-30.0, 11.0)

EvalMode = Literal["mean", "sample"]


# c = 0.5 as 0-dim CPU tensors, one per dtype: multiplying a CPU tensor by a Python float first
# wraps the float in a fresh tensor, which costs more than the multiplication itself at small
# latents (~2.1 against ~0.9 us for a (128, 2) float32 tensor).
_HALF = {
    dt: torch.tensor(0.5, dtype=dt)
    for dt in (torch.float16, torch.bfloat16, torch.float32, torch.float64)
}


def _as_factor(c: float, x: Tensor) -> Tensor | float:
    """``c`` in the cheapest form to multiply ``x`` by: a cached 0-dim tensor or the float."""
    if c == 0.5 and x.is_cpu:
        return _HALF.get(x.dtype, c)
    return c


class _ReparamFunction(torch.autograd.Function):
    """``(z, h) = (loc + h / c, h)`` with ``h = c * exp(c * clamp(t, lo, hi)) * eps``.

    ``cfg = (lo, hi, c, n_samples, generator)``; ``t`` is ``logvar`` with ``c = 0.5``
    (Gaussian) or a log-scale with ``c = 1`` (other location-scale families). ``eps`` is the
    standard noise, or ``None`` to draw ``eps ~ N(0, I)`` here (``n_samples`` and ``generator``
    are used only then). Shapes: ``loc, t: (..., L)``; ``eps, z, h: (..., L)`` or
    ``(K, ..., L)``. ``h = dz/dt`` is returned only so that it can be saved as an output (see the
    module docstring); keeping it pre-scaled by ``c`` makes the backward one multiplication.
    """

    # torch.func (vmap, grad, jacrev) runs the forward under vmap itself; noise drawn inside then
    # follows vmap's `randomness=` argument like any random op.
    generate_vmap_rule = True

    @staticmethod
    def forward(
        loc: Tensor,
        t: Tensor,
        eps: Tensor | None,
        cfg: tuple[float, float, float, int | None, torch.Generator | None],
    ) -> tuple[Tensor, Tensor]:
        lo, hi, c, k, generator = cfg  # (one argument: each argument of apply() costs ~0.5 us)
        # sigma = exp(c * clamp(t, lo, hi))   (in place on the fresh clamp buffer)
        sigma = torch.clamp(t, lo, hi)
        sigma = sigma.exp_() if c == 1.0 else sigma.mul_(_as_factor(c, sigma)).exp_()
        if torch._C._are_functorch_transforms_active():
            # under vmap either loc or t may be the unbatched one: nothing in place
            if eps is None:
                eps = _noise_like(torch.randn_like, loc, k, generator)
            h = eps * sigma * c
        elif eps is None:
            like = loc if k is None else loc.expand(k, *loc.shape)
            # h = c * eps * sigma, with c * eps ~ N(0, c^2 I) drawn in one kernel on loc's
            # device and in its dtype, filled in row-major order whatever loc's memory layout
            # (empty_like would keep a transposed or channels-last layout; the explicit format
            # is passed only then: it costs ~0.3 us a call)
            if like.is_contiguous():
                h = torch.empty_like(like)
            else:
                h = torch.empty_like(like, memory_format=torch.contiguous_format)
            h.normal_(0.0, c, generator=generator).mul_(sigma)
        else:
            # h = c * sigma * eps
            h = sigma.mul_(eps) if eps.shape == sigma.shape else sigma * eps
            if c != 1.0:
                h.mul_(c)
        # z = loc + sigma * eps
        return torch.add(loc, h, alpha=1.0 / c), h

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]) -> None:
        loc, c, h = inputs[0], inputs[3][2], output[1]
        ctx.save_for_backward(h)
        # (c, summed): loc and t have the same shape; h either that shape or (K, ...)
        ctx.c_summed = (c, h.dim() != loc.dim())
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(
        ctx: Any, grad_z: Tensor | None, grad_h: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None, None, None]:
        (h,) = ctx.saved_tensors
        c, summed = ctx.c_summed
        needs_loc, needs_t = ctx.needs_input_grad[:2]
        grad_loc = grad_t = None
        if needs_loc and grad_z is not None:
            # dz/dloc = 1, dh/dloc = 0
            grad_loc = grad_z.sum(0) if summed else grad_z
        if needs_t:
            # dz/dt = h, dh/dt = c * h   (straight-through at the clamp)
            if grad_h is None:
                g = grad_z
            elif grad_z is None:
                g = grad_h * c
            else:
                g = grad_z + grad_h * c
            if g is not None:
                grad_t = g * h
                if summed:
                    grad_t = grad_t.sum(0)
        return grad_loc, grad_t, None, None


class _ReparamFunctionFwdAD(_ReparamFunction):
    """:class:`_ReparamFunction` plus forward-mode AD (``torch.func.jvp``, ``jacfwd``).

    A separate class because dynamo cannot trace a Function that defines ``jvp``, and because
    saving ``h`` for forward mode costs ~0.5 us a call: compiled code and plain eager code use
    the base class, eager code under forward-mode AD or a ``torch.func`` transform this one.
    """

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]) -> None:
        _ReparamFunction.setup_context(ctx, inputs, output)
        ctx.save_for_forward(output[1])  # h, for jvp

    @staticmethod
    def jvp(
        ctx: Any, d_loc: Tensor | None, d_t: Tensor | None, d_eps: None, d_cfg: None
    ) -> tuple[Tensor, Tensor]:
        # forward mode (torch.func.jvp, jacfwd): dz = d_loc + h * d_t, dh = c * h * d_t
        (h,) = ctx.saved_for_forward
        c = ctx.c_summed[0]
        dz_t = torch.zeros_like(h) if d_t is None else h * d_t
        dz = dz_t if d_loc is None else dz_t + d_loc
        return dz, dz_t * c


def _check_pair(mu: Tensor, logvar: Tensor, names: tuple[str, str] = ("mu", "logvar")) -> None:
    """Raise a clear error unless ``mu`` and ``logvar`` are same-shaped floating tensors."""
    if (
        isinstance(mu, Tensor)
        and isinstance(logvar, Tensor)
        and mu.dtype == logvar.dtype
        and mu.dtype.is_floating_point
        and mu.shape == logvar.shape
        and mu.ndim > 0
        and mu.device == logvar.device
    ):
        return  # the common case, in one expression (this runs on every call)
    for name, t in zip(names, (mu, logvar), strict=True):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected a Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}")
        if t.dim() == 0:
            raise ValueError(f"{name}: expected shape (..., L) with at least one dimension, got ()")
    a, b = names
    if mu.shape != logvar.shape:
        raise ValueError(
            f"{a} and {b}: expected the same shape, got {a} {tuple(mu.shape)} and "
            f"{b} {tuple(logvar.shape)}"
        )
    if mu.dtype != logvar.dtype or mu.device != logvar.device:
        raise ValueError(
            f"{a} and {b}: expected the same dtype and device, got {mu.dtype} on {mu.device} "
            f"and {logvar.dtype} on {logvar.device}"
        )


def _check_n_samples(n_samples: int | None) -> None:
    if n_samples is not None:
        check_positive_int("n_samples", n_samples, "or None")


def _check_range(
    logvar_range: tuple[float, float], name: str = "logvar_range"
) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in logvar_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}: expected a pair of floats (lo, hi), got {logvar_range!r}"
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name}: expected finite lo < hi, got {logvar_range!r}")
    return lo, hi


def _check_finite(name: str, t: Tensor) -> None:
    """Raise if ``t`` holds NaN or Inf (an assertion op under ``torch.compile``)."""
    if not values_hold(torch.isfinite(t).all(), f"{name}: expected finite values, got NaN or Inf"):
        n_nan = int(torch.isnan(t).sum())
        n_inf = int(torch.isinf(t).sum())
        raise ValueError(
            f"{name}: expected finite values, got {n_nan} NaN and {n_inf} Inf "
            f"in a tensor of shape {tuple(t.shape)}"
        )


def _noise_like(
    draw: Any, mu: Tensor, n_samples: int | None, generator: torch.Generator | None
) -> Tensor:
    """``draw`` (``torch.randn_like``, ``torch.rand_like``) of shape ``(K, ...)`` or ``mu``'s."""
    like = mu if n_samples is None else mu.expand(n_samples, *mu.shape)
    # *_like (not randn(shape)) keeps symbolic shapes traceable and exports to ONNX
    # Random*Like; the generator overload has no ONNX translation, so it is used only if given.
    if generator is None:
        return draw(like, memory_format=torch.contiguous_format)  # type: ignore[no-any-return]
    return draw(like, generator=generator, memory_format=torch.contiguous_format)  # type: ignore[no-any-return]


# The C entry point under ``Function.apply``. The Python wrapper around it binds default arguments
# (with inspect.signature: our calls pass every argument), unwraps dead functorch wrappers and
# dispatches functorch transforms; it costs ~3 us per call, a tenth of the layer's forward at
# small latents.
# (Private torch API: if a torch release renames it, the public Function.apply is used.)
_apply_c = super(torch.autograd.Function, _ReparamFunction).apply
_unwrap_if_dead = getattr(torch._C._functorch, "unwrap_if_dead", None)


def _location_scale(
    loc: Tensor,
    t: Tensor,
    eps: Tensor | None,
    cfg: tuple[float, float, float, int | None, torch.Generator | None],
) -> Tensor:
    """``loc + exp(c * clamp(t, lo, hi)) * eps`` through :class:`_ReparamFunction`."""
    if torch.compiler.is_compiling():
        # dynamo traces Function.apply itself (and no Function with a custom jvp)
        z, _ = _ReparamFunction.apply(loc, t, eps, cfg)
    elif _unwrap_if_dead is None or transforms_or_forward_ad_active():
        # functorch transforms need Function.apply's dispatch; dual tensors (inside
        # forward_ad.dual_level()) need the jvp
        z, _ = _ReparamFunctionFwdAD.apply(loc, t, eps, cfg)
    else:
        # what Function.apply does here, minus its Python overhead
        z, _ = _apply_c(_unwrap_if_dead(loc), _unwrap_if_dead(t), eps, cfg)
    return z  # type: ignore[no-any-return]


def reparameterize(
    mu: Tensor,
    logvar: Tensor,
    *,
    n_samples: int | None = None,
    generator: torch.Generator | None = None,
    logvar_range: tuple[float, float] = LOGVAR_RANGE,
) -> Tensor:
    """Draw ``z = mu + exp(0.5 * logvar) * eps`` differentiably; always samples.

    Uses the same autograd function as :class:`Reparameterize` (one tensor saved for backward,
    exact double backward, straight-through gradient at the ``logvar`` clamp).

    Args:
        mu: mean, ``(..., L)``, floating point.
        logvar: log-variance, same shape, dtype and device as ``mu``.
        n_samples: ``None`` for one sample ``(..., L)``; ``K`` for ``(K, ..., L)`` samples that
            share ``mu`` and ``sigma`` (their gradients are summed over ``K``).
        generator: a :class:`torch.Generator` on ``mu``'s device, for reproducible noise.
        logvar_range: ``(lo, hi)`` clamp applied to ``logvar`` before ``exp``.

    Returns:
        ``z``: ``(..., L)``, or ``(K, ..., L)`` when ``n_samples=K``.

    Raises:
        TypeError: ``mu`` or ``logvar`` is not a floating-point tensor, or ``generator`` is not
            a :class:`torch.Generator`.
        ValueError: their shapes, dtypes or devices differ, a 0-dim input, an invalid
            ``logvar_range``, or ``n_samples`` below 1 (``TypeError`` if not an int or None).

    Example:
        >>> import torch
        >>> from gentorch.layers import reparameterize
        >>> mu, logvar = torch.zeros(8, 2, requires_grad=True), torch.zeros(8, 2)
        >>> z = reparameterize(mu, logvar, n_samples=5)
        >>> z.shape
        torch.Size([5, 8, 2])
        >>> z.sum().backward()
        >>> mu.grad[0]  # summed over the 5 samples
        tensor([5., 5.])
    """
    _check_pair(mu, logvar)
    _check_n_samples(n_samples)
    check_generator(generator)
    lo, hi = _check_range(logvar_range)
    # eps ~ N(0, I) is drawn inside the function, on mu's device and in its dtype
    return _location_scale(mu, logvar, None, (lo, hi, 0.5, n_samples, generator))


class Reparameterize(nn.Module):
    """Differentiable sampling from a diagonal Gaussian given ``[mu | logvar]``.

    ``z = mu + exp(0.5 * clamp(logvar)) * eps`` with ``eps ~ N(0, I)``. In training mode the
    layer samples; in eval mode it returns ``mu`` (``eval_mode="mean"``) or keeps sampling
    (``eval_mode="sample"``). It has no parameters. The backward saves one tensor of the shape of
    ``z`` (``0.5 * sigma * eps``), and supports double backward, forward-mode AD and ``torch.func``
    transforms (``vmap(..., randomness="different")``, ``grad``, ``jvp``); see the module docstring
    for the ``logvar`` clamp (:data:`LOGVAR_RANGE`) and its straight-through gradient.

    Args:
        eval_mode: ``"mean"`` (default) or ``"sample"``: what the layer does in eval mode.
        n_samples: default number of samples ``K`` per input (``None``: one, no extra
            dimension); ``forward(n_samples=...)`` overrides it.
        check_finite: raise ``ValueError`` if ``mu`` or ``logvar`` holds NaN or Inf. This costs a
            reduction and (on GPU) a device synchronisation per call. Under ``torch.compile`` the
            check becomes an in-graph assertion that raises ``RuntimeError`` instead.
        logvar_range: ``(lo, hi)`` clamp applied to ``logvar`` before ``exp``; the default keeps
            ``exp(logvar)`` finite in float16. ``hi`` above ``log(65504) ~ 11.09`` is allowed
            but may overflow in float16.
        track_diagnostics: keep a detached reference to the last ``mu`` and ``logvar`` so that
            :meth:`diagnostics` can summarise them (no autograd graph is kept; the last batch's
            ``mu`` and ``logvar`` stay in memory until the next call or :meth:`reset_state`).
            Off by default, like any instrumentation: the record costs 1.5-2.5 us of a ~32 us
            forward + backward at ``(128, 2)`` on a CPU, which is what separates the layer
            from the plain formula's speed there (docs/benchmarks.md), and it holds the last
            batch's tensors between calls. The flag may be switched on an existing layer
            (``model.sampler.track_diagnostics = True``). Nothing is recorded while
            ``torch.export`` traces the layer.

    Input: ``x`` of shape ``(..., 2 * L)`` laid out ``[mu | logvar]``, or a pair
    ``(mu, logvar)`` of shape ``(..., L)`` each.
    Output: ``z`` of shape ``(..., L)``, or ``(K, ..., L)`` with ``n_samples=K`` (in eval mean mode,
    ``mu`` expanded to that shape).

    Example:
        >>> import torch
        >>> from gentorch.layers import Reparameterize
        >>> _ = torch.manual_seed(0)
        >>> layer = Reparameterize(track_diagnostics=True)
        >>> z = layer(torch.randn(32, 2 * 16))  # [mu | logvar]
        >>> z.shape, layer.diagnostics()["active_units"]  # every mu varies over the batch
        (torch.Size([32, 16]), 16)
    """

    def __init__(
        self,
        eval_mode: EvalMode = "mean",
        n_samples: int | None = None,
        check_finite: bool = False,
        *,
        logvar_range: tuple[float, float] = LOGVAR_RANGE,
        track_diagnostics: bool = False,
    ) -> None:
        super().__init__()
        if eval_mode not in ("mean", "sample"):
            raise ValueError(f"eval_mode: expected 'mean' or 'sample', got {eval_mode!r}")
        _check_n_samples(n_samples)
        self.eval_mode: EvalMode = eval_mode
        self.n_samples = n_samples
        self.check_finite = check_bool("check_finite", check_finite)
        self.logvar_range = _check_range(logvar_range)
        self.track_diagnostics = check_bool("track_diagnostics", track_diagnostics)
        # [mu, logvar] of the last forward, detached; a plain list, so recording them costs
        # no nn.Module.__setattr__ (~1 us per tensor attribute) on every call
        self._last: list[Tensor] = []

    def extra_repr(self) -> str:
        lo, hi = self.logvar_range
        return (
            f"eval_mode={self.eval_mode!r}, n_samples={self.n_samples}, "
            f"check_finite={self.check_finite}, logvar_range=({lo}, {hi}), "
            f"track_diagnostics={self.track_diagnostics}"
        )

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        *,
        n_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Sample (training, or ``eval_mode="sample"``) or return ``mu`` (eval, ``"mean"``).

        Args:
            x: ``(..., 2 * L)`` as ``[mu | logvar]``, or a pair ``(mu, logvar)`` of ``(..., L)``.
            n_samples: overrides the layer's ``n_samples`` for this call.
            generator: a :class:`torch.Generator` on the input's device. Not traceable by
                ``torch.compile`` (dynamo cannot hold a generator): compiled code seeds with
                :func:`torch.manual_seed` instead.

        Returns:
            ``z``: ``(..., L)`` or ``(K, ..., L)``.
        """
        mu, logvar = _split(x)
        if n_samples is None:
            k = self.n_samples
        else:
            _check_n_samples(n_samples)
            k = n_samples
        if generator is not None:
            check_generator(generator)
        if self.check_finite:
            _check_finite("mu", mu)
            _check_finite("logvar", logvar)
        # (an exported program cannot keep Python-side state: nothing is recorded there)
        if self.track_diagnostics and not torch.compiler.is_exporting():
            self._last[:] = (mu.detach(), logvar.detach())
        if not self.training and self.eval_mode == "mean":
            return mu if k is None else mu.expand(k, *mu.shape)
        lo, hi = self.logvar_range
        return _location_scale(mu, logvar, None, (lo, hi, 0.5, k, generator))

    @torch.no_grad()
    def diagnostics(self) -> dict[str, Tensor | int | float]:
        """Summaries of the last forward's posterior ``q(z|x) = N(mu, exp(clamp(logvar)))``.

        All averages run over every leading dimension of the last input (``N`` rows).

        Returns:
            A dict with ``kl_per_dim`` (``(L,)`` tensor: batch-mean KL(q || N(0, I)) per latent
            dimension), ``kl_total`` (float: their sum), ``mean_abs_mu`` (float), ``mean_sigma``
            (float), ``active_units`` (int: dimensions whose variance of ``mu`` over the rows
            exceeds 0.01, Burda et al. 2015; the variance divides by ``N``) and ``n_rows`` (int).

        Raises:
            RuntimeError: if ``track_diagnostics`` is off, there was no forward since
                construction or :meth:`reset_state`, or the last forward had an empty batch.
        """
        if not self.track_diagnostics and not self._last:
            raise RuntimeError(
                "diagnostics: nothing recorded because track_diagnostics=False; construct the "
                "layer with Reparameterize(track_diagnostics=True) or set "
                "layer.track_diagnostics = True"
            )
        if not self._last:
            raise RuntimeError(
                "diagnostics: no forward pass recorded since construction or the last reset_state()"
            )
        lo, hi = self.logvar_range
        last_mu, last_logvar = self._last
        if last_mu.numel() == 0:
            raise RuntimeError(
                "diagnostics: the last forward had no rows to summarise (mu of shape "
                f"{tuple(last_mu.shape)}); run a forward on a non-empty batch first"
            )
        L = last_mu.shape[-1]
        mu = last_mu.reshape(-1, L).float()
        logvar = last_logvar.reshape(-1, L).float().clamp(lo, hi)
        # KL(N(mu, e^lv) || N(0, 1)) = 0.5 * (mu^2 + e^lv - 1 - lv)
        kl = 0.5 * (mu.square() + torch.expm1(logvar) - logvar)
        kl_per_dim = kl.mean(dim=0)
        # active unit (Burda et al. 2015): Cov_x(E_q[z]) = Var_x(mu) > 0.01
        var_mu = mu.var(dim=0, correction=0)
        return {
            "kl_per_dim": kl_per_dim,
            "kl_total": float(kl_per_dim.sum()),
            "mean_abs_mu": float(mu.abs().mean()),
            "mean_sigma": float(torch.exp(0.5 * logvar).mean()),
            "active_units": int((var_mu > 0.01).sum()),
            "n_rows": int(mu.shape[0]),
        }

    def reset_state(self) -> None:
        """Forget the last forward (drops the detached ``mu``/``logvar`` references)."""
        self._last.clear()


def _split(
    x: Tensor | tuple[Tensor, Tensor], names: tuple[str, str] = ("mu", "logvar")
) -> tuple[Tensor, Tensor]:
    """``(..., 2L) -> (..., L), (..., L)``, or validate a ``(mu, logvar)`` pair."""
    if isinstance(x, Tensor):
        if x.dim() == 0 or x.shape[-1] % 2 != 0:
            raise ValueError(
                f"x: expected shape (..., 2 * L) laid out [{names[0]} | {names[1]}] with an even "
                f"last dimension, got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"x: expected a floating-point tensor, got dtype {x.dtype}")
        mu, logvar = x.chunk(2, dim=-1)
        return mu, logvar  # halves of one floating tensor: same shape, dtype and device
    elif isinstance(x, (tuple, list)) and len(x) == 2:
        mu, logvar = x
    else:
        raise TypeError(
            f"x: expected a tensor (..., 2 * L) or a pair ({names[0]}, {names[1]}), got "
            f"{type(x).__name__}" + (f" of length {len(x)}" if isinstance(x, (tuple, list)) else "")
        )
    _check_pair(mu, logvar, names)
    return mu, logvar
