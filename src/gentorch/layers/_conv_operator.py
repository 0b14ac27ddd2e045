"""The linear operator of a convolution layer (bias excluded), shared by spectral normalization
and the operator-norm functions.

A layer ``conv`` with weight ``W`` acts on a batch ``x: (B, C_in, *spatial)`` as the linear map
``A_W x`` plus a bias; everything here is about ``A_W``. Its adjoint is ``conv_transpose*d``
(zero-padded convolutions) or ``conv*d`` (transposed convolutions) with matching
hyper-parameters, and otherwise (circular, reflect, replicate or string padding) the pullback of
``torch.func.vjp``: for a linear map the pullback at any point *is* the adjoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeGuard

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd

from gentorch.layers._lanczos import top_singular_triplet

_CONV: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T: tuple[type[nn.Module], ...] = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_CONV_T_FN = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def is_conv(module: nn.Module) -> TypeGuard[_ConvNd]:
    """Whether ``module`` is one of ``Conv1d/2d/3d`` or ``ConvTranspose1d/2d/3d``."""
    return isinstance(module, _CONV + _CONV_T)


def is_conv_transpose(module: nn.Module) -> TypeGuard[_ConvNd]:
    """Whether ``module`` is one of ``ConvTranspose1d/2d/3d``."""
    return isinstance(module, _CONV_T)


def spatial_dims(conv: _ConvNd) -> int:
    """Number of spatial dimensions of a convolution layer (1, 2 or 3)."""
    weight = conv.weight
    assert isinstance(weight, Tensor)
    return weight.dim() - 2


def conv_apply(conv: _ConvNd, weight: Tensor, x: Tensor) -> Tensor:
    """Apply the linear part of ``conv`` with ``weight`` in place of its own.

    Args:
        conv: a ``Conv*d`` or ``ConvTranspose*d`` layer (its hyper-parameters are used).
        weight: a tensor shaped like ``conv.weight``.
        x: ``(B, C_in, *spatial)``.

    Returns:
        ``(B, C_out, *spatial_out)``: ``conv(x)`` without the bias.
    """
    if isinstance(conv, _CONV):
        # _conv_forward handles every padding mode (zeros, circular, reflect, replicate).
        out: Tensor = conv._conv_forward(x, weight, None)
        return out
    padding = conv.padding
    if isinstance(padding, str):  # transposed convolutions only take integer padding
        raise ValueError(f"conv: unexpected padding={padding!r} on {type(conv).__name__}")
    fn = _CONV_T_FN[weight.dim() - 2]
    return fn(
        x, weight, None, conv.stride, padding, conv.output_padding, conv.groups, conv.dilation
    )


_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def conv_adjoint(conv: _ConvNd, weight: Tensor, y: Tensor, input_shape: Sequence[int]) -> Tensor:
    """The adjoint ``A^T y`` of ``conv``'s linear operator on inputs of ``input_shape``.

    Zero-padded ``Conv*d`` (integer padding) uses ``conv_transpose*d`` with the output padding that
    restores the input size, ``ConvTranspose*d`` uses ``conv*d``; other cases (circular, reflect,
    replicate padding, string padding) use the pullback of ``torch.func.vjp``, which is the
    adjoint of a linear map.

    Args:
        conv: a convolution layer.
        weight: a tensor shaped like ``conv.weight``.
        y: ``(B, C_out, *spatial_out)``.
        input_shape: ``(C_in, *spatial)`` of one input sample.

    Returns:
        ``(B, *input_shape)``.
    """
    nd = weight.dim() - 2
    spatial = tuple(input_shape[1:])
    stride, dilation = tuple(conv.stride), tuple(conv.dilation)
    groups = int(conv.groups)
    padding = conv.padding
    if isinstance(conv, _CONV) and conv.padding_mode == "zeros" and not isinstance(padding, str):
        # A^T = conv_transpose with output_padding = what the strided conv dropped at the end
        extra = tuple(
            (n + 2 * p - d * (k - 1) - 1) % s
            for n, p, d, k, s in zip(
                spatial, padding, dilation, weight.shape[2:], stride, strict=True
            )
        )
        return _CONV_T_FN[nd](y, weight, None, stride, padding, extra, groups, dilation)
    if isinstance(conv, _CONV_T) and not isinstance(padding, str):
        # A^T of a transposed convolution is the convolution with the same hyper-parameters
        out = _CONV_FN[nd](y, weight, None, stride, padding, dilation, groups)
        if tuple(out.shape[2:]) == spatial:
            return out
    x = torch.zeros((y.shape[0], *input_shape), device=y.device, dtype=y.dtype)
    _, pullback = torch.func.vjp(lambda t: conv_apply(conv, weight.detach(), t), x)[:2]
    grad: Tensor = pullback(y)[0]
    return grad


def adjoint_operator(
    conv: _ConvNd, weight: Tensor, input_shape: Sequence[int]
) -> Callable[[Tensor], Tensor]:
    """``y: (1, C_out, *spatial_out) -> A^T y: (1, *input_shape)`` for a fixed ``weight``.

    Like :func:`conv_adjoint`, but the ``torch.func.vjp`` fallback is traced once and reused
    (the map is linear, so one pullback serves every ``y``).
    """
    x = torch.zeros((1, *input_shape), device=weight.device, dtype=weight.dtype)
    y = conv_apply(conv, weight, x)
    fast = conv_adjoint(conv, weight, y, input_shape) if _has_fast_adjoint(conv) else None
    if fast is not None and fast.shape == x.shape:
        return lambda t: conv_adjoint(conv, weight, t, input_shape)
    w = weight.detach()
    pullback = torch.func.vjp(lambda t: conv_apply(conv, w, t), x)[1]

    def adjoint(t: Tensor) -> Tensor:
        grad: Tensor = pullback(t)[0]
        return grad

    return adjoint


def _has_fast_adjoint(conv: _ConvNd) -> bool:
    if isinstance(conv, _CONV_T):
        return True
    return conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


def check_input_shape(conv: _ConvNd, input_shape: Sequence[int], arg: str) -> tuple[int, ...]:
    """Validate a per-sample input shape ``(C_in, *spatial)`` for ``conv`` and return it.

    Raises:
        TypeError / ValueError naming ``arg`` with what was received and what was expected.
    """
    if isinstance(input_shape, Tensor) or not isinstance(input_shape, Sequence):
        raise TypeError(
            f"{arg}: expected a sequence of ints (C_in, *spatial), got {type(input_shape).__name__}"
        )
    shape = tuple(input_shape)
    if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ValueError(f"{arg}: expected positive ints, got {shape}")
    nd = spatial_dims(conv)
    if len(shape) != nd + 1:
        raise ValueError(
            f"{arg}: {type(conv).__name__} takes one sample shaped (C_in, {nd} spatial sizes) "
            f"without the batch dimension, got {shape}"
        )
    in_channels = int(conv.in_channels)
    if shape[0] != in_channels:
        raise ValueError(f"{arg}: the layer has {in_channels} input channels, got shape {shape}")
    return shape


def output_shape(conv: _ConvNd, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-sample output shape of ``conv`` on a per-sample input shape (by running it once)."""
    weight = conv.weight
    assert isinstance(weight, Tensor)
    with torch.no_grad():
        x = torch.zeros((1, *input_shape), device=weight.device, dtype=weight.dtype)
        try:
            y = conv_apply(conv, weight, x)
        except RuntimeError as err:
            raise ValueError(
                f"input_shape: {type(conv).__name__} cannot be applied to an input of shape "
                f"{input_shape}: {err}"
            ) from None
    if y.numel() == 0:
        # (a float32 grouped transposed convolution returns an empty output here where float64
        # and the ungrouped layer raise)
        raise ValueError(
            f"input_shape: {type(conv).__name__} gives an empty output, of shape "
            f"{tuple(y.shape[1:])}, on an input of shape {input_shape}"
        )
    return tuple(y.shape[1:])


def operator_norm_power(
    conv: _ConvNd,
    weight: Tensor,
    input_shape: tuple[int, ...],
    *,
    max_iterations: int,
    rtol: float,
    check_every: int = 10,
) -> Tensor:
    """Largest singular value of ``conv``'s operator by power iteration (a lower estimate that
    converges to it), as a detached 0-dim tensor.

    Starts from a fixed-seed random input, so the result is deterministic; stops when the estimate
    changes by less than ``rtol`` (relative) over ``check_every`` iterations, or after
    ``max_iterations``.
    """
    weight = weight.detach()
    generator = torch.Generator(device=weight.device).manual_seed(0)
    with torch.no_grad():
        v = torch.randn((1, *input_shape), generator=generator, device=weight.device)
        v = (v / torch.linalg.vector_norm(v)).to(weight.dtype)
        adjoint = adjoint_operator(conv, weight, input_shape)
        sigma: Tensor = torch.zeros((), device=weight.device, dtype=weight.dtype)
        previous = math.nan
        for step in range(1, max_iterations + 1):
            # u <- A v / ||A v||,  sigma <- ||A^T u|| = u^T A v',  v' <- A^T u / sigma
            Av = conv_apply(conv, weight, v)
            u = Av / torch.linalg.vector_norm(Av).clamp_min(1e-30)
            Atu = adjoint(u)
            sigma = torch.linalg.vector_norm(Atu).reshape(())
            if float(sigma) == 0.0:
                return sigma
            v = Atu / sigma
            if step % check_every == 0:
                current = float(sigma)
                if abs(current - previous) <= rtol * current:
                    break
                previous = current
    return sigma


def operator_norm_lanczos(
    conv: _ConvNd,
    weight: Tensor,
    input_shape: tuple[int, ...],
    *,
    max_iterations: int,
    rtol: float,
) -> Tensor:
    """Largest singular value of ``conv``'s operator by Golub-Kahan-Lanczos bidiagonalization
    (see :func:`top_singular_triplet`), as a detached 0-dim tensor. Deterministic (fixed-seed
    start)."""
    weight = weight.detach()
    out_shape = output_shape(conv, input_shape)
    generator = torch.Generator(device=weight.device).manual_seed(0)
    v0 = torch.randn(math.prod(input_shape), generator=generator, device=weight.device)

    def apply(x: Tensor) -> Tensor:
        return conv_apply(conv, weight, x.reshape(1, *input_shape)).flatten()

    operator_adjoint = adjoint_operator(conv, weight, input_shape)

    def adjoint(y: Tensor) -> Tensor:
        return operator_adjoint(y.reshape(1, *out_shape)).flatten()

    sigma, _, _ = top_singular_triplet(
        apply,
        adjoint,
        v0.to(weight.dtype),
        math.prod(out_shape),
        max_iterations=max_iterations,
        rtol=rtol,
    )
    return sigma


def _kernel_on_grid(weight: Tensor, dilation: Sequence[int], grid: Sequence[int]) -> Tensor:
    """Place the (dilated) taps of ``weight: (O, I, *k)`` on a periodic grid ``(O, I, *grid)``.

    Tap ``a`` lands at ``a * dilation mod grid`` (taps that wrap around add up, as a circular
    convolution does).
    """
    out = weight
    for j, (d, n) in enumerate(zip(dilation, grid, strict=True)):
        axis = 2 + j
        index = (torch.arange(weight.shape[axis], device=weight.device) * d) % n
        shape = list(out.shape)
        shape[axis] = n
        out = torch.zeros(shape, device=weight.device, dtype=weight.dtype).index_add_(
            axis, index, out
        )
    return out


def fft_norm(weight: Tensor, groups: int, dilation: Sequence[int], grid: Sequence[int]) -> Tensor:
    """Largest singular value of the stride-1 circular convolution with ``weight`` on ``grid``.

    Sedghi, Gupta & Long (2019): the operator is block-diagonalised by the DFT; its singular values
    are those of the ``C_out x C_in`` matrices ``K_hat(f) = sum_a K[:, :, a] w^(f . a)``, one per
    frequency ``f`` of the grid (block-diagonal over groups).

    Args:
        weight: ``(C_out, C_in / groups, *k)``.
        groups: the layer's group count.
        dilation: per spatial dimension.
        grid: spatial size of the (periodic) input.
    """
    spatial = tuple(range(2, weight.dim()))
    # K_hat: (C_out, C_in/g, *grid) -> (*grid, g, C_out/g, C_in/g)
    K_hat = torch.fft.fftn(_kernel_on_grid(weight, dilation, grid), dim=spatial)
    K_hat = K_hat.permute(*spatial, 0, 1)
    c_out, c_in = weight.shape[0], weight.shape[1]
    K_hat = K_hat.reshape(*grid, groups, c_out // groups, c_in)
    norm: Tensor = torch.linalg.matrix_norm(K_hat, ord=2).max()
    return norm


def operator_norm_fft(
    conv: _ConvNd, weight: Tensor, input_shape: tuple[int, ...], *, strict: bool
) -> Tensor | None:
    """Exact operator norm of a circular, stride-1, size-preserving ``Conv*d`` by the FFT method.

    Returns ``None`` (``strict=False``) or raises ``ValueError`` naming the reason (``strict=True``)
    when the layer is not such a convolution.
    """
    reason = None
    if is_conv_transpose(conv) or not is_conv(conv):
        reason = f"the FFT method applies to Conv1d/2d/3d, got {type(conv).__name__}"
    elif conv.padding_mode != "circular":
        reason = (
            f"the FFT method is exact for padding_mode='circular' only, the layer has "
            f"padding_mode={conv.padding_mode!r}; use method='power'"
        )
    elif any(s != 1 for s in conv.stride):
        reason = f"the FFT method needs stride 1, the layer has stride={conv.stride}"
    elif output_shape(conv, input_shape)[1:] != input_shape[1:]:
        reason = (
            f"the FFT method needs an output of the input's size (padding = dilation*(k-1)/2); "
            f"input {input_shape[1:]} gives {output_shape(conv, input_shape)[1:]}"
        )
    if reason is not None:
        if strict:
            raise ValueError(f"method: {reason}")
        return None
    groups = int(conv.groups)
    return fft_norm(weight.detach(), groups, conv.dilation, input_shape[1:])
