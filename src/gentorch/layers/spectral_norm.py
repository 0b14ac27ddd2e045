"""Spectral normalization (Miyato et al., 2018): run a layer with its weight divided by the
weight's largest singular value ``sigma``.

``SpectralNorm`` wraps a module and keeps two persistent buffers, the power-iteration vectors
``u`` and ``v``. ``sigma`` is estimated as ``u^T W v`` where ``W`` is the weight with ``dim`` moved
first and the other dimensions flattened (``mode="matrix"``, the paper's choice), or where ``W``
is the convolution operator itself on inputs of a given shape (``mode="operator"``).

Differences from ``torch.nn.utils.parametrizations.spectral_norm`` that users can rely on:

- exactly ``n_power_iterations`` updates of ``u``, ``v`` per training forward (the normalized
  weight is computed once per forward, never on attribute access); none in eval mode;
- ``u``, ``v`` are warmed up at construction until ``sigma`` has converged;
- an all-zero weight gives ``sigma = 0`` and a normalized weight of zeros (``W / max(sigma,
  eps)``) instead of NaN, and ``u``, ``v`` stay unit vectors;
- ``.sigma``, :meth:`SpectralNorm.exact_sigma` and :meth:`SpectralNorm.diagnostics` expose the
  estimate; the module deep-copies, pickles, and compiles with ``torch.compile(fullgraph=True)``;
- the power iteration runs in at least float32 with autocast disabled, so ``u``, ``v`` stay
  float32 under bf16 autocast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.modules.conv import _ConvNd
from torch.nn.utils import parametrize

from gentorch._checks import check_positive_int
from gentorch.layers._conv_operator import (
    adjoint_operator,
    check_input_shape,
    conv_adjoint,
    conv_apply,
    is_conv,
    is_conv_transpose,
    operator_norm_fft,
    operator_norm_lanczos,
    output_shape,
)
from gentorch.layers._lanczos import measure_dtype, top_singular_triplet
from gentorch.layers._spectral_divide import spectral_divide

__all__ = [
    "SpectralNorm",
    "convert_torch_spectral_norm_state_dict",
    "remove_spectral_norm",
    "spectral_norm",
]

_MODES = ("matrix", "operator")
# Layers whose forward input SpectralNorm checks (exact types: a subclass may take other input)
_CONV_TYPES = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
# Warm-up: Lanczos bidiagonalization until sigma changes by less than _WARMUP_RTOL over 5 steps
# (at most _WARMUP_MAX_STEPS), then _WARMUP_POLISH power iterations.
_WARMUP_MAX_STEPS = 300
_WARMUP_RTOL = 1e-7
_WARMUP_POLISH = 5


def _compute_dtype(weight: Tensor) -> torch.dtype:
    """At least float32 (bf16/fp16 weights are iterated in float32; float64 stays float64)."""
    return torch.promote_types(weight.dtype, torch.float32)


def _unit(x: Tensor, fallback: Tensor, eps: float) -> Tensor:
    """``x / ||x||``, or ``fallback`` (already a unit vector) when ``||x|| <= eps``."""
    norm = torch.linalg.vector_norm(x)
    return torch.where(norm > eps, x / norm.clamp_min(eps), fallback)


class SpectralNorm(nn.Module):
    """Wrap a module so that its forward runs with ``W / sigma(W)``.

    ``sigma`` is the largest singular value of the weight seen as a matrix (``mode="matrix"``:
    ``dim`` moved first, the rest flattened, as in Miyato et al. 2018), or of the convolution
    operator on inputs of ``input_shape`` (``mode="operator"``; see :func:`conv_operator_norm`).
    It is estimated by power iteration with persistent unit vectors ``u`` and ``v``:
    ``sigma = u^T W v``, with the gradient flowing through ``W`` only (``u``, ``v`` held constant),
    as in the paper.

    The vectors are warmed up at construction (Lanczos bidiagonalization, then a few power
    steps) until the estimate has converged; :meth:`warm_up` does it again, e.g. after weight
    averaging. Each forward in training mode performs exactly ``n_power_iterations`` updates (in
    place, without gradient); eval mode performs none. For an all-zero weight ``sigma`` is 0 and
    the normalized weight is ``W / max(sigma, eps) = 0``: outputs stay finite. In matrix mode
    ``W / sigma`` is one autograd node with the closed-form gradient
    ``(g - <g, W_sn> u v^T) / sigma`` (differentiable again for gradient penalties).

    The original parameter stays in the wrapped module (``self.module.<name>``); the state dict
    holds ``module.<name>``, the module's other entries, ``u`` and ``v``.

    Args:
        module: the layer to normalize (Linear, Conv1d/2d/3d, ConvTranspose1d/2d/3d, Embedding,
            or any module with a parameter called ``name`` of at least 2 dimensions).
        name: name of the weight parameter.
        n_power_iterations: power-iteration updates per training forward (>= 1).
        dim: the dimension of the weight that indexes outputs (the matrix rows); default 1 for
            ``ConvTranspose*d`` and 0 otherwise. Matrix mode only.
        eps: floor for norms and for ``sigma`` (> 0).
        mode: ``"matrix"`` or ``"operator"`` (convolution layers only).
        input_shape: for ``mode="operator"``, the shape of one input sample without the batch
            dimension, ``(C_in, *spatial)``; the normalization is exact for that spatial size.

    Raises:
        TypeError: ``module`` is not a module, or ``n_power_iterations`` or ``dim`` has the
            wrong type.
        ValueError: no suitable parameter ``name`` (missing, under 2 dimensions, lazy, or
            already spectrally normalized by PyTorch), or an invalid ``n_power_iterations``,
            ``eps``, ``mode``, ``dim`` or ``input_shape``.

    The forward of a wrapped ``Linear`` or ``Conv*d`` / ``ConvTranspose*d`` checks its input
    first: ``ValueError`` for a wrong last dimension (``Linear``) or channel count / rank
    (convolutions), or in operator mode a spatial size other than ``input_shape``'s;
    ``TypeError`` for a non-floating input or, outside autocast, a dtype other than the weight's.

    Shapes:
        Input and output: those of the wrapped module (e.g. ``(B, in_features) ->
        (B, out_features)`` for a ``Linear``). Buffers: matrix mode ``u: (rows,)``,
        ``v: (cols,)``; operator mode ``u: (C_out, *spatial_out)``, ``v: input_shape``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from gentorch.layers import SpectralNorm
        >>> layer = SpectralNorm(nn.Linear(20, 10))
        >>> layer(torch.randn(4, 20)).shape  # training mode: one power iteration
        torch.Size([4, 10])
        >>> torch.allclose(layer.sigma, layer.exact_sigma())  # converged at construction
        True
    """

    u: Tensor
    v: Tensor

    def __init__(
        self,
        module: nn.Module,
        name: str = "weight",
        n_power_iterations: int = 1,
        dim: int | None = None,
        eps: float = 1e-12,
        mode: str = "matrix",
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        weight = _checked_weight(module, name)
        check_positive_int("n_power_iterations", n_power_iterations)
        if (
            isinstance(eps, bool)
            or not isinstance(eps, (int, float))
            or not eps > 0
            or not math.isfinite(eps)
        ):
            raise ValueError(f"eps: expected a finite number > 0, got {eps!r}")
        if mode not in _MODES:
            raise ValueError(f"mode: expected one of {_MODES}, got {mode!r}")
        self.module = module
        self.name = name
        self.n_power_iterations = n_power_iterations
        self.eps = float(eps)
        self.mode = mode
        self.input_shape: tuple[int, ...] | None = None
        if mode == "matrix":
            if input_shape is not None:
                raise ValueError(
                    f"input_shape: only used with mode='operator', got {input_shape!r} "
                    "with mode='matrix'"
                )
            self.dim = _checked_dim(module, weight, dim)
        else:
            if not is_conv(module) or name != "weight":
                raise ValueError(
                    "mode: 'operator' needs a Conv1d/2d/3d or ConvTranspose1d/2d/3d layer and "
                    f"name='weight', got {type(module).__name__} with name={name!r}"
                )
            if dim is not None:
                raise ValueError(f"dim: not used with mode='operator', got {dim}")
            if input_shape is None:
                raise ValueError("input_shape: required with mode='operator', e.g. (C_in, H, W)")
            self.dim = 0
            self.input_shape = check_input_shape(module, input_shape, "input_shape")
        with torch.no_grad():
            dtype = _compute_dtype(weight)
            if mode == "matrix":
                rows = weight.shape[self.dim]
                u_shape: tuple[int, ...] = (rows,)
                v_shape: tuple[int, ...] = (weight.numel() // rows,)
            else:
                assert self.input_shape is not None
                assert is_conv(module)
                u_shape = output_shape(module, self.input_shape)
                v_shape = self.input_shape
            u = torch.randn(u_shape, device=weight.device, dtype=dtype)
            v = torch.randn(v_shape, device=weight.device, dtype=dtype)
            self.register_buffer("u", u / torch.linalg.vector_norm(u))
            self.register_buffer("v", v / torch.linalg.vector_norm(v))
            self._warm_up(weight)

    # ----------------------------------------------------------------------------- internals

    def _weight(self) -> Tensor:
        weight = getattr(self.module, self.name)
        assert isinstance(weight, Tensor)
        return weight

    def _conv(self) -> _ConvNd:
        module = self.module
        assert is_conv(module)
        return module

    def _matrix(self, weight: Tensor) -> Tensor:
        """``weight: (..., rows at dim, ...) -> (rows, cols)``."""
        if self.dim != 0:
            weight = weight.movedim(self.dim, 0)
        return weight.reshape(weight.shape[0], -1)

    def _power_iteration(self, weight: Tensor, n_iterations: int) -> tuple[Tensor, Tensor]:
        """Update ``u``, ``v`` in place with ``n_iterations`` steps (no gradient, no autocast)."""
        dtype = _compute_dtype(weight)
        with torch.no_grad(), torch.autocast(weight.device.type, enabled=False):
            w = weight.detach().to(dtype)
            u, v = self.u.to(dtype), self.v.to(dtype)
            if self.mode == "matrix":
                W = self._matrix(w)
                # Products as (n, 1) matmuls, not mv: under torch.compile mv decomposes into
                # pointwise ops that the backward may recompute from the buffers *after* their
                # in-place update (wrong gradients); matmuls are saved, never recomputed.
                for _ in range(n_iterations):
                    # v <- W^T u / ||W^T u||,  u <- W v / ||W v||
                    v = _unit((W.t() @ u.unsqueeze(1)).squeeze(1), v, self.eps)
                    u = _unit((W @ v.unsqueeze(1)).squeeze(1), u, self.eps)
            else:
                for _ in range(n_iterations):
                    # u <- A v / ||A v||,  v <- A^T u / ||A^T u||  (A: the conv operator)
                    assert self.input_shape is not None
                    Av = conv_apply(self._conv(), w, v.unsqueeze(0)).squeeze(0)
                    u = _unit(Av, u, self.eps)
                    Atu = conv_adjoint(self._conv(), w, u.unsqueeze(0), self.input_shape)
                    v = _unit(Atu.squeeze(0), v, self.eps)
            self.u.copy_(u)
            self.v.copy_(v)
        return u, v

    def _sigma(self, weight: Tensor, uv: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """``u^T W v / (||u|| ||v||)`` as a 0-dim tensor, differentiable in ``weight`` only.

        ``uv``: the vectors just computed by :meth:`_power_iteration`, else the buffers.
        """
        dtype = _compute_dtype(weight)
        with torch.autocast(weight.device.type, enabled=False):
            if uv is None:
                # copies: the buffers are updated in place by later forwards (two forwards, one
                # backward must work)
                u = self.u.to(dtype, copy=True)
                v = self.v.to(dtype, copy=True)
            else:
                # the fresh vectors, not a re-read of the mutated buffers (under torch.compile
                # the backward may otherwise recompute them from the already-updated buffers)
                u, v = uv
            w = weight.to(dtype)
            if self.mode == "matrix":
                sigma = torch.vdot(u, torch.mv(self._matrix(w), v))
            else:
                sigma = torch.sum(u * conv_apply(self._conv(), w, v.unsqueeze(0)).squeeze(0))
            # the norms are 1 except after averaging of buffers (e.g. AveragedModel)
            scale: Tensor = torch.linalg.vector_norm(u) * torch.linalg.vector_norm(v)
            return sigma / scale.clamp_min(self.eps)

    def _normalize(self, weight: Tensor, uv: tuple[Tensor, Tensor] | None = None) -> Tensor:
        # W_sn = W / max(sigma, eps)
        if self.mode == "operator":
            sigma = self._sigma(weight, uv).clamp_min(self.eps)
            return weight / sigma.to(weight.dtype)
        dtype = _compute_dtype(weight)
        with torch.autocast(weight.device.type, enabled=False):
            if uv is None:
                # copies: the buffers are updated in place by later forwards
                u, v = self.u.to(dtype, copy=True), self.v.to(dtype, copy=True)
            else:
                u, v = uv
            W_sn = spectral_divide(self._matrix(weight.to(dtype)), u, v, self.eps)
        if self.dim == 0:
            return W_sn.reshape(weight.shape).to(weight.dtype)
        moved = weight.movedim(self.dim, 0).shape
        return W_sn.reshape(moved).movedim(0, self.dim).to(weight.dtype)

    def _warm_up(self, weight: Tensor) -> None:
        """Set ``u``, ``v`` to the top singular vectors (Lanczos from the current ``v``), then
        polish with a few power iterations so that ``u`` and ``v`` are consistent."""
        weight = weight.detach()
        dtype = measure_dtype(weight.device)
        w = weight.detach().to(dtype)
        if self.mode == "matrix":
            W = self._matrix(w)

            def apply(x: Tensor) -> Tensor:
                return torch.mv(W, x)

            def adjoint(y: Tensor) -> Tensor:
                return torch.mv(W.t(), y)
        else:
            conv, shape, out_shape = self._conv(), self.input_shape, self.u.shape
            assert shape is not None

            def apply(x: Tensor) -> Tensor:
                return conv_apply(conv, w, x.reshape(1, *shape)).flatten()

            operator_adjoint = adjoint_operator(conv, w, shape)

            def adjoint(y: Tensor) -> Tensor:
                return operator_adjoint(y.reshape(1, *out_shape)).flatten()

        sigma, u, v = top_singular_triplet(
            apply,
            adjoint,
            self.v.to(dtype).flatten(),
            self.u.numel(),
            max_iterations=_WARMUP_MAX_STEPS,
            rtol=_WARMUP_RTOL,
        )
        if float(sigma) > 0:
            self.u.copy_(u.reshape(self.u.shape))
            self.v.copy_(v.reshape(self.v.shape))
        self._power_iteration(weight, _WARMUP_POLISH)

    # -------------------------------------------------------------------------------- public

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the wrapped module with ``W / sigma`` (``n_power_iterations`` steps first in
        training mode, none in eval); inputs and outputs are the wrapped module's."""
        weight = self._weight()
        if args and isinstance(args[0], Tensor) and self.name == "weight":
            _check_layer_input(self.module, weight, args[0])
            if self.input_shape is not None:
                self._check_spatial_size(args[0])
        if (
            self.training
            and not torch.compiler.is_compiling()
            and torch._C._are_functorch_transforms_active()
        ):
            raise RuntimeError(
                "SpectralNorm: in training mode the forward updates the u, v buffers in place, "
                "which torch.func transforms (grad, vmap, jacrev, ...) forbid; run the "
                "training-mode forward outside the transform and call .eval() on the layer (or "
                "its model) inside it, where u and v are read, not updated"
            )
        uv = self._power_iteration(weight, self.n_power_iterations) if self.training else None
        return functional_call(self.module, {self.name: self._normalize(weight, uv)}, args, kwargs)

    def _check_spatial_size(self, x: Tensor) -> None:
        """Operator mode: refuse inputs of another spatial size than ``input_shape``'s.

        The operator norm of a convolution depends on the input size (with zero padding it grows
        with the size), so ``W / sigma`` computed for one size is not normalized for another.
        """
        assert self.input_shape is not None
        spatial = self.input_shape[1:]
        if tuple(x.shape[x.dim() - len(spatial) :]) != spatial:
            raise ValueError(
                f"input: SpectralNorm({type(self.module).__name__}, mode='operator') normalizes "
                f"the convolution on inputs of spatial size {spatial} (input_shape="
                f"{self.input_shape}), got {tuple(x.shape)}; its operator norm differs at other "
                f"sizes. Wrap the layer with input_shape=(C_in, *spatial) of these inputs, or use "
                f"mode='matrix'"
            )

    def warm_up(self) -> None:
        """Re-estimate ``u``, ``v`` from scratch for the current weight (no gradient).

        Done at construction. Call it after replacing the weight by something unrelated to the
        weight ``u``, ``v`` were tracking: weights loaded without their ``u``, ``v``, or averaged
        weights (``torch.optim.swa_utils.AveragedModel``, whose averaged or stale buffers no longer
        hold the top singular vectors of the averaged weight).

        For an ``ema = AveragedModel(disc, ...)``, call it on every layer of the average:
        ``for m in ema.modules(): if isinstance(m, SpectralNorm): m.warm_up()``.

        Example:
            >>> import torch
            >>> from torch import nn
            >>> from gentorch.layers import SpectralNorm
            >>> layer = SpectralNorm(nn.Linear(8, 4))
            >>> with torch.no_grad():  # a new weight: u, v now give sigma = -||W||
            ...     _ = layer.module.weight.neg_()
            >>> round(layer.diagnostics()["relative_error"], 2)
            2.0
            >>> layer.warm_up()
            >>> layer.diagnostics()["relative_error"] < 1e-4
            True
        """
        with torch.no_grad():
            self._warm_up(self._weight())

    def normalized_weight(self) -> Tensor:
        """``W / sigma`` with the current ``u``, ``v`` (no update; differentiable in ``W``).

        Returns:
            A tensor shaped like the wrapped module's weight.

        Example:
            >>> import torch
            >>> from torch import nn
            >>> from gentorch.layers import SpectralNorm
            >>> W_sn = SpectralNorm(nn.Linear(20, 10)).normalized_weight()
            >>> W_sn.shape, round(float(torch.linalg.matrix_norm(W_sn.detach(), ord=2)), 4)
            (torch.Size([10, 20]), 1.0)
        """
        return self._normalize(self._weight())

    @property
    def sigma(self) -> Tensor:
        """The current estimate ``u^T W v`` as a detached 0-dim tensor (no update).

        Example:
            >>> import torch
            >>> from torch import nn
            >>> from gentorch.layers import SpectralNorm
            >>> layer = SpectralNorm(nn.Conv2d(3, 8, 3))
            >>> y = layer(torch.randn(2, 3, 8, 8))  # training: one power step
            >>> layer.sigma.shape, torch.allclose(layer.sigma, layer.exact_sigma())
            (torch.Size([]), True)
        """
        with torch.no_grad():
            return self._sigma(self._weight()).detach()

    def exact_sigma(self) -> Tensor:
        """``sigma`` computed directly, as a detached 0-dim tensor.

        Matrix mode: ``torch.linalg.matrix_norm(W, ord=2)``. Operator mode: the FFT method when it
        is exact (circular padding, stride 1, output size = input size), otherwise Lanczos
        bidiagonalization of the operator run to convergence (residual < 1e-8 of sigma). Computed
        in float64 (float32 on MPS), then rounded to the returned dtype.

        Returns:
            A detached 0-dim tensor, in the weight's dtype or float32 if that is narrower.

        Example:
            >>> import torch
            >>> from torch import nn
            >>> from gentorch.layers import SpectralNorm
            >>> layer = SpectralNorm(nn.Linear(20, 10))
            >>> W = layer.module.weight.detach()
            >>> exact = torch.linalg.matrix_norm(W.double(), ord=2)  # in float64
            >>> bool(layer.exact_sigma() == exact.float())
            True
        """
        weight = self._weight().detach()
        # computed in float64 where the device has it, returned in the estimate's dtype
        dtype, out_dtype = measure_dtype(weight.device), _compute_dtype(weight)
        with torch.no_grad(), torch.autocast(weight.device.type, enabled=False):
            if self.mode == "matrix":
                exact: Tensor = torch.linalg.matrix_norm(self._matrix(weight.to(dtype)), ord=2)
                return exact.to(out_dtype)
            assert self.input_shape is not None
            fft = operator_norm_fft(self._conv(), weight.to(dtype), self.input_shape, strict=False)
            if fft is not None:
                return fft.to(out_dtype)
            return operator_norm_lanczos(
                self._conv(), weight.to(dtype), self.input_shape, max_iterations=1000, rtol=1e-8
            ).to(out_dtype)

    def diagnostics(self) -> dict[str, float]:
        """The estimate, the exact value and their relative gap.

        Returns:
            ``{"sigma": estimate, "exact_sigma": exact, "relative_error": |est - exact| / exact,
            "n_power_iterations": n}`` (``relative_error`` is 0 when both are 0).

        Example:
            >>> from torch import nn
            >>> from gentorch.layers import SpectralNorm
            >>> d = SpectralNorm(nn.Conv2d(64, 128, 4, stride=2, padding=1)).diagnostics()
            >>> sorted(d), d["relative_error"] < 1e-4  # converged after the warm-up
            (['exact_sigma', 'n_power_iterations', 'relative_error', 'sigma'], True)
        """
        estimate = float(self.sigma)
        exact = float(self.exact_sigma())
        gap = abs(estimate - exact)
        relative = gap / exact if exact > 0 else (0.0 if gap == 0 else math.inf)
        return {
            "sigma": estimate,
            "exact_sigma": exact,
            "relative_error": relative,
            "n_power_iterations": float(self.n_power_iterations),
        }

    def extra_repr(self) -> str:
        text = f"name={self.name!r}, n_power_iterations={self.n_power_iterations}, "
        if self.mode == "matrix":
            return text + f"dim={self.dim}, eps={self.eps}"
        return text + f"eps={self.eps}, mode='operator', input_shape={self.input_shape}"


def _check_layer_input(module: nn.Module, weight: Tensor, x: Tensor) -> None:
    """Raise a clear error for an input that a wrapped ``Linear`` or ``Conv*d`` cannot take.

    Shape and dtype checks only (no device sync): the errors torch would raise further down
    ("mat1 and mat2 shapes cannot be multiplied", "expected input ... to have 3 channels") do
    not name the argument. Other modules are left to report their own errors.
    """
    kind = type(module).__name__
    if type(module) is nn.Linear:
        assert isinstance(module, nn.Linear)
        if x.dim() == 0 or x.shape[-1] != module.in_features:
            raise ValueError(
                f"input: SpectralNorm({kind}) expected shape (..., {module.in_features}), "
                f"got {tuple(x.shape)}"
            )
    elif type(module) in _CONV_TYPES and is_conv(module):
        nd = weight.dim() - 2
        channels = int(module.in_channels)
        if x.dim() not in (nd + 1, nd + 2) or x.shape[-nd - 1] != channels:
            spatial = ", ".join(["*"] * nd)
            raise ValueError(
                f"input: SpectralNorm({kind}) expected shape (B, {channels}, {spatial}) or "
                f"({channels}, {spatial}), got {tuple(x.shape)}"
            )
    else:
        return
    if not x.is_floating_point():
        raise TypeError(
            f"input: SpectralNorm({kind}) expected a floating-point tensor, got dtype {x.dtype}"
        )
    if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(
            f"input: SpectralNorm({kind}) expected dtype {weight.dtype} (the weight's), got "
            f"{x.dtype}; convert the input or the module (outside autocast the dtypes must match)"
        )


def _checked_weight(module: nn.Module, name: str) -> Tensor:
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    if parametrize.is_parametrized(module, name):
        raise ValueError(
            f"module: {type(module).__name__}.{name} already has a torch parametrization (e.g. "
            "torch.nn.utils.parametrizations.spectral_norm); remove it first, or move its state "
            "over with convert_torch_spectral_norm_state_dict"
        )
    if hasattr(module, name + "_orig"):
        raise ValueError(
            f"module: {type(module).__name__} already has torch.nn.utils.spectral_norm on "
            f"{name!r} ({name}_orig exists); remove it with torch.nn.utils.remove_spectral_norm"
        )
    weight = getattr(module, name, None)
    if isinstance(weight, nn.parameter.UninitializedParameter):
        raise ValueError(
            f"module: {type(module).__name__}.{name} is not initialized yet (lazy module); run "
            "one forward before wrapping it"
        )
    if not isinstance(weight, nn.Parameter):
        raise ValueError(
            f"name: {type(module).__name__} has no parameter named {name!r} "
            f"(its parameters: {[n for n, _ in module.named_parameters(recurse=False)]})"
        )
    if weight.dim() < 2:
        raise ValueError(
            f"module: {type(module).__name__}.{name} has shape {tuple(weight.shape)}; spectral "
            "normalization needs a weight with at least 2 dimensions"
        )
    return weight


def _checked_dim(module: nn.Module, weight: Tensor, dim: int | None) -> int:
    if dim is None:
        return 1 if is_conv_transpose(module) else 0
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim: expected an int or None, got {type(dim).__name__}")
    if not -weight.dim() <= dim < weight.dim():
        raise ValueError(
            f"dim: expected a dimension of the {weight.dim()}-d weight "
            f"{tuple(weight.shape)}, got {dim}"
        )
    return dim % weight.dim()


def spectral_norm(
    module: nn.Module,
    name: str = "weight",
    n_power_iterations: int = 1,
    dim: int | None = None,
    eps: float = 1e-12,
    mode: str = "matrix",
    input_shape: Sequence[int] | None = None,
) -> SpectralNorm:
    """Return ``module`` wrapped in :class:`SpectralNorm` (same arguments).

    Use it wherever ``torch.nn.utils.parametrizations.spectral_norm(module)`` is used; the
    normalized weight is ``layer.normalized_weight()`` and the original ``layer.module.weight``.

    Args:
        module: the layer to normalize (Linear, Conv*d, ConvTranspose*d, Embedding, or any module
            with a parameter ``name`` of at least 2 dimensions).
        name: name of the weight parameter.
        n_power_iterations: power-iteration updates per training forward (>= 1).
        dim: the weight dimension that indexes the matrix rows; default 1 for
            ``ConvTranspose*d``, 0 otherwise (as PyTorch's). Matrix mode only.
        eps: floor for norms and for ``sigma`` (> 0).
        mode: ``"matrix"`` (the paper's reshaped kernel) or ``"operator"`` (convolutions only).
        input_shape: ``(C_in, *spatial)`` of one sample, required for ``mode="operator"``.

    Returns:
        A :class:`SpectralNorm` whose inputs and outputs are shaped as ``module``'s.

    Raises:
        TypeError, ValueError: as :class:`SpectralNorm`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from gentorch.layers import spectral_norm
        >>> disc = nn.Sequential(spectral_norm(nn.Conv2d(3, 16, 3, padding=1)), nn.LeakyReLU(0.1))
        >>> disc(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 16, 16, 16])
        >>> W_sn = disc[0].normalized_weight().detach()  # (16, 3, 3, 3)
        >>> round(float(torch.linalg.matrix_norm(W_sn.flatten(1), ord=2)), 4)
        1.0
    """
    return SpectralNorm(module, name, n_power_iterations, dim, eps, mode, input_shape)


def remove_spectral_norm(module: nn.Module) -> nn.Module:
    """Replace spectral normalization by a plain parameter holding the normalized weight.

    ``module`` is either a :class:`SpectralNorm` (its wrapped module is returned) or a model whose
    ``SpectralNorm`` sub-modules are replaced in place (the model is returned). The normalized
    weight uses the current ``u``, ``v`` without updating them, so the result computes exactly
    what the wrapper computes in eval mode. The wrapped modules are modified in place; a
    ``SpectralNorm`` must not be used after it has been removed.

    Args:
        module: a :class:`SpectralNorm`, or any module containing some.

    Returns:
        The plain module (same input and output shapes), each normalized weight an
        ``nn.Parameter`` with ``requires_grad`` as the original's.

    Raises:
        TypeError: ``module`` is not an ``nn.Module``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from gentorch.layers import SpectralNorm, remove_spectral_norm
        >>> plain = remove_spectral_norm(SpectralNorm(nn.Linear(4, 3)))
        >>> type(plain).__name__
        'Linear'
        >>> round(float(torch.linalg.matrix_norm(plain.weight.detach(), ord=2)), 4)
        1.0
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
    if isinstance(module, SpectralNorm):
        return _unwrap(module)
    for child_name, child in list(module.named_children()):
        if isinstance(child, SpectralNorm):
            setattr(module, child_name, _unwrap(child))
        else:
            remove_spectral_norm(child)
    return module


def _unwrap(layer: SpectralNorm) -> nn.Module:
    with torch.no_grad():
        original = layer._weight()
        normalized = layer._normalize(original.detach())
    inner = remove_spectral_norm(layer.module)
    setattr(inner, layer.name, nn.Parameter(normalized, requires_grad=original.requires_grad))
    return inner


_LEGACY = ("_orig", "_u", "_v")
_PARAMETRIZED = (".original", ".0._u", ".0._v")


def convert_torch_spectral_norm_state_dict(
    state_dict: Mapping[str, Tensor], name: str = "weight"
) -> dict[str, Tensor]:
    """Convert a state dict saved with PyTorch's spectral norm to :class:`SpectralNorm` keys.

    Every layer that carries PyTorch's spectral norm on parameter ``name`` is recognised by its
    keys, in either layout:

    - ``torch.nn.utils.spectral_norm`` (legacy): ``<p>weight_orig``, ``<p>weight_u``,
      ``<p>weight_v``;
    - ``torch.nn.utils.parametrizations.spectral_norm``: ``<p>parametrizations.weight.original``,
      ``<p>parametrizations.weight.0._u``, ``<p>parametrizations.weight.0._v``;

    and becomes ``<p>module.weight``, ``<p>u``, ``<p>v``; the layer's other entries
    (``<p>bias``, ...) become ``<p>module.bias``, ... Keys of other layers are unchanged. Load the
    result into the same architecture with each such layer wrapped by :func:`spectral_norm`
    (the default ``dim`` matches PyTorch's). Tensors are not copied.

    Args:
        state_dict: a mapping from keys to tensors (e.g. ``torch.load(path, weights_only=True)``).
        name: the normalized parameter's name.

    Returns:
        A new dict with the converted keys.

    Raises:
        TypeError: ``state_dict`` is not a mapping with str keys, or ``name`` is not a str.
        KeyError: a layer has the weight entry of either layout but misses ``u`` or ``v``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from gentorch.layers import SpectralNorm, convert_torch_spectral_norm_state_dict
        >>> old = torch.nn.utils.parametrizations.spectral_norm(nn.Linear(4, 3)).state_dict()
        >>> new = convert_torch_spectral_norm_state_dict(old)
        >>> sorted(new)
        ['module.bias', 'module.weight', 'u', 'v']
        >>> SpectralNorm(nn.Linear(4, 3)).load_state_dict(new)
        <All keys matched successfully>
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict: expected a mapping, got {type(state_dict).__name__}")
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    for key in state_dict:
        if not isinstance(key, str):
            raise TypeError(f"state_dict: expected str keys, got the {type(key).__name__} {key!r}")
    renamed: dict[str, str] = {}
    prefixes: list[str] = []
    layouts = (
        tuple(name + s for s in _LEGACY),
        tuple(f"parametrizations.{name}{s}" for s in _PARAMETRIZED),
    )
    for key in state_dict:
        for weight_key, u_key, v_key in layouts:
            if key == weight_key or key.endswith("." + weight_key):
                prefix = key[: len(key) - len(weight_key)]
                for needed in (prefix + u_key, prefix + v_key):
                    if needed not in state_dict:
                        raise KeyError(
                            f"state_dict: {key!r} looks like PyTorch's spectral norm but "
                            f"{needed!r} is missing"
                        )
                renamed[key] = f"{prefix}module.{name}"
                renamed[prefix + u_key] = prefix + "u"
                renamed[prefix + v_key] = prefix + "v"
                prefixes.append(prefix)
    # Longest prefix first, so inserting "module." for an outer layer does not shift an inner one.
    prefixes.sort(key=len, reverse=True)
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key in renamed:
            out[renamed[key]] = value
            continue
        new_key = key
        for prefix in prefixes:
            if key.startswith(prefix):
                new_key = new_key[: len(prefix)] + "module." + new_key[len(prefix) :]
        out[new_key] = value
    return out
