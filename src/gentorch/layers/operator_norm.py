"""The true norm of a convolution, and an upper bound on a network's Lipschitz constant.

Spectral normalization of a convolution usually divides the kernel by the largest singular value
of the reshaped ``(C_out, C_in*k*k)`` matrix, which is not the norm of the convolution as a linear
map on images: it can be well above 1 after normalization. :func:`conv_operator_norm` computes the
operator's own norm, by power iteration on the convolution and its adjoint, or exactly for
circular padding by the FFT method of Sedghi, Gupta & Long (2019).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd

from gentorch._checks import check_positive_int
from gentorch.layers._conv_operator import (
    check_input_shape,
    fft_norm,
    is_conv,
    is_conv_transpose,
    operator_norm_fft,
    operator_norm_lanczos,
    operator_norm_power,
    output_shape,
)
from gentorch.layers._lanczos import measure_dtype
from gentorch.layers.spectral_norm import SpectralNorm

__all__ = ["LipschitzBound", "conv_operator_norm", "lipschitz_bound"]

_METHODS = ("power", "lanczos", "fft")


def _conv_and_weight(conv: nn.Module, arg: str) -> tuple[_ConvNd, Tensor]:
    """The convolution layer and the weight it runs with (normalized for a ``SpectralNorm``)."""
    if isinstance(conv, SpectralNorm) and is_conv(conv.module):
        with torch.no_grad():
            return conv.module, conv.normalized_weight().detach()
    if not isinstance(conv, nn.Module) or not is_conv(conv):
        raise TypeError(
            f"{arg}: expected a Conv1d/2d/3d or ConvTranspose1d/2d/3d layer (or a SpectralNorm "
            f"wrapping one), got {type(conv).__name__}"
        )
    weight = conv.weight
    assert isinstance(weight, Tensor)
    return conv, weight.detach()


def conv_operator_norm(
    conv: nn.Module,
    input_shape: Sequence[int],
    method: str = "power",
    *,
    max_iterations: int = 5000,
    rtol: float = 1e-7,
) -> Tensor:
    """Largest singular value of a convolution layer as a linear map on inputs of one shape.

    The bias is ignored (it does not change the Lipschitz constant). ``method="power"`` runs power
    iteration on the operator ``A`` and its adjoint ``A^T`` (from ``torch.func.vjp``), so every
    stride, padding, padding mode, dilation, group count and transposed convolution is covered; it
    starts from a fixed-seed vector (deterministic) and stops when the estimate changes by less
    than ``rtol`` over 10 iterations or after ``max_iterations``; the estimate approaches the norm
    from below, slowly when the top singular values are close (as for zero-padded convolutions
    on large inputs). ``method="lanczos"`` uses the same products in a Golub-Kahan-Lanczos
    bidiagonalization with full reorthogonalization (memory: one vector per step), which
    converges in tens of steps where power iteration needs thousands.
    ``method="fft"`` (Sedghi, Gupta & Long 2019) is exact and fast but applies only
    to ``Conv*d`` with ``padding_mode="circular"``, stride 1 and an output of the input's size:
    the norm is the largest singular value over the per-frequency ``C_out x C_in`` matrices of the
    kernel's DFT. A :class:`SpectralNorm` wrapping a convolution is measured with its normalized
    weight (current ``u``, ``v``; no update).

    Args:
        conv: a ``Conv1d/2d/3d`` or ``ConvTranspose1d/2d/3d`` layer, or a ``SpectralNorm`` of one.
        input_shape: one input sample's shape without the batch dimension, ``(C_in, *spatial)``.
        method: ``"power"``, ``"lanczos"`` or ``"fft"``.
        max_iterations: cap on iterations (``"power"``, ``"lanczos"``).
        rtol: stopping tolerance, relative change of the estimate (``"power"``: over 10
            iterations, ``"lanczos"``: over 5 steps).

    Returns:
        A detached 0-dim tensor on the weight's device, in at least float32.

    Raises:
        TypeError: ``conv`` is not a convolution (or a ``SpectralNorm`` of one),
            ``input_shape`` is not a sequence, ``max_iterations`` is not an int or ``rtol`` not
            a float.
        ValueError: ``input_shape`` does not fit the layer, ``method`` is unknown,
            ``max_iterations < 1``, or ``rtol`` negative or not finite; for ``"fft"``, a layer
            the method does not apply to.

    Example:
        A matrix-mode spectral norm makes the reshaped kernel's norm 1, not the operator's:

        >>> import torch
        >>> from torch import nn
        >>> from gentorch.layers import conv_operator_norm, spectral_norm
        >>> _ = torch.manual_seed(0)
        >>> conv = spectral_norm(nn.Conv2d(16, 16, 3, padding=1))
        >>> round(float(conv_operator_norm(conv, (16, 8, 8), method="lanczos")), 2)
        1.51

        For a circular, stride-1 convolution the exact FFT method applies too:

        >>> circ = nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular")
        >>> exact = conv_operator_norm(circ, (8, 8, 8), method="fft")
        >>> bool(torch.isclose(exact, conv_operator_norm(circ, (8, 8, 8), method="lanczos")))
        True
    """
    layer, weight = _conv_and_weight(conv, "conv")
    shape = check_input_shape(layer, input_shape, "input_shape")
    output_shape(layer, shape)  # raises ValueError naming input_shape if the layer cannot run
    if method not in _METHODS:
        raise ValueError(f"method: expected one of {_METHODS}, got {method!r}")
    check_positive_int("max_iterations", max_iterations)
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)):
        raise TypeError(f"rtol: expected a float, got {type(rtol).__name__}")
    if not 0 <= rtol < math.inf:
        raise ValueError(f"rtol: expected a finite float >= 0, got {rtol}")
    # computed in float64 where the device has it, returned in at least float32
    out_dtype = torch.promote_types(weight.dtype, torch.float32)
    weight = weight.to(measure_dtype(weight.device))
    with torch.no_grad(), torch.autocast(weight.device.type, enabled=False):
        if method == "fft":
            result = operator_norm_fft(layer, weight, shape, strict=True)
            assert result is not None
        elif method == "lanczos":
            result = operator_norm_lanczos(
                layer, weight, shape, max_iterations=max_iterations, rtol=rtol
            )
        else:
            result = operator_norm_power(
                layer, weight, shape, max_iterations=max_iterations, rtol=rtol
            )
    return result.to(out_dtype)


@dataclass(frozen=True)
class LipschitzBound:
    """Result of :func:`lipschitz_bound`: the bound and its per-layer factors.

    A frozen dataclass, returned by :func:`lipschitz_bound` rather than built by hand; its
    fields are the constructor's arguments.

    Args:
        bound: upper bound on the network's L2 Lipschitz constant (product of the per-layer
            constants); ``math.inf`` when some layer could not be bounded.
        partial_bound: product over the layers that could be bounded (equal to ``bound`` when
            every layer was).
        layer_bounds: per layer (dotted name as in ``named_modules``), its constant.
        unbounded: per layer that could not be bounded, the reason.

    Shapes:
        Not a layer: no tensor input or output. ``bound`` and ``partial_bound`` are Python
        floats, ``layer_bounds`` maps names to floats and ``unbounded`` names to strings; the
        input shape they hold for is the ``input_shape`` given to :func:`lipschitz_bound`.

    Example:
        >>> from torch import nn
        >>> from gentorch.layers import lipschitz_bound
        >>> result = lipschitz_bound(nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8)), (4,))
        >>> result.bound, result.unbounded
        (inf, {'1': 'no Lipschitz constant known for LayerNorm'})
        >>> result.partial_bound == result.layer_bounds["0"]
        True
    """

    bound: float
    partial_bound: float
    layer_bounds: dict[str, float] = field(default_factory=dict)
    unbounded: dict[str, str] = field(default_factory=dict)


# Largest |f'(x)| of element-wise activations, rounded up (computed on a fine grid, the ones
# without a closed form at 1e-5 resolution).
_ACTIVATION_CONSTANTS: dict[type[nn.Module], float] = {
    nn.Identity: 1.0,
    nn.ReLU: 1.0,
    nn.ReLU6: 1.0,
    nn.Tanh: 1.0,
    nn.Hardtanh: 1.0,
    nn.Softsign: 1.0,
    nn.Softplus: 1.0,
    nn.CELU: 1.0,
    nn.Tanhshrink: 1.0,
    nn.Sigmoid: 0.25,
    nn.Hardsigmoid: 1.0 / 6.0,
    nn.Hardswish: 1.5,
    nn.GELU: 1.1290,
    nn.SiLU: 1.0999,
    nn.Mish: 1.0886,
    nn.SELU: 1.7581,
    # Reshapes and eval-mode dropout move entries around without changing the norm.
    nn.Flatten: 1.0,
    nn.Unflatten: 1.0,
    nn.Dropout: 1.0,
    nn.Dropout1d: 1.0,
    nn.Dropout2d: 1.0,
    nn.Dropout3d: 1.0,
}


def lipschitz_bound(model: nn.Module, input_shape: Sequence[int]) -> LipschitzBound:
    """Upper bound on the L2 Lipschitz constant of a ``Sequential``-style network in eval mode.

    The network is taken as the composition of its layers in order (``nn.Sequential`` containers
    are flattened), so ``||f(x) - f(y)|| <= bound * ||x - y||`` with ``bound`` the product of
    per-layer constants:

    - ``Linear``: the exact largest singular value of the weight;
    - ``Conv*d``: the exact operator norm (FFT) for circular, stride-1, size-preserving layers,
      otherwise a rigorous upper bound: the smaller of the norm of the stride-1 circular
      convolution on the padded grid (the layer is a sub-matrix of it) and
      ``sqrt(windows per input) * ||reshaped kernel||``, times ``sqrt(copies per input)`` of a
      non-zero padding; ``ConvTranspose*d``: the second of these;
    - a ``SpectralNorm``: the wrapped layer with its normalized weight (so a matrix-mode SN conv
      is *not* counted as 1);
    - activations: their largest slope (ReLU 1, LeakyReLU/PReLU ``max(1, |a|)``, ELU
      ``max(1, alpha)``, Sigmoid 1/4, Tanh 1, GELU 1.129, ...); eval-mode BatchNorm
      ``max |gamma| / sqrt(var + eps)``; MaxPool ``sqrt(windows per input)``; AvgPool (no
      padding, floor mode) ``sqrt(windows per input / window size)``; reshapes and Dropout 1.

    Any other layer (custom modules, normalizations without a global constant such as LayerNorm,
    embeddings, ...) is reported in ``unbounded`` and makes ``bound`` infinite.

    Args:
        model: the network; its ``Sequential`` containers are walked in order.
        input_shape: one input sample's shape without the batch dimension, e.g. ``(3, 32, 32)``.

    Returns:
        A :class:`LipschitzBound`; ``bound`` is a float (``math.inf`` if some layer is unbounded).

    Raises:
        TypeError: ``model`` is not a module, or ``input_shape`` is not a sequence.
        ValueError: ``input_shape`` holds non-positive entries, or some layer fails on it.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from gentorch.layers import lipschitz_bound
        >>> _ = torch.manual_seed(0)
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
        ...                     nn.Linear(8 * 8 * 8, 1))
        >>> result = lipschitz_bound(net, (3, 8, 8))
        >>> {name: round(c, 2) for name, c in result.layer_bounds.items()}
        {'0': 1.49, '1': 1.0, '2': 1.0, '3': 0.59}
        >>> round(result.bound, 2)  # 1.49 * 0.59
        0.88
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    if isinstance(input_shape, Tensor) or not isinstance(input_shape, Sequence):
        raise TypeError(
            f"input_shape: expected a sequence of ints, got {type(input_shape).__name__}"
        )
    shape = tuple(input_shape)
    if not shape or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        raise ValueError(f"input_shape: expected positive ints (no batch dimension), got {shape}")
    flags = {m: m.training for m in model.modules()}
    model.eval()
    layer_bounds: dict[str, float] = {}
    unbounded: dict[str, str] = {}
    try:
        reference = next(iter(model.parameters()), None)
        device = reference.device if reference is not None else torch.device("cpu")
        dtype = reference.dtype if reference is not None else torch.float32
        x = torch.zeros((1, *shape), device=device, dtype=dtype)
        with torch.no_grad():
            for name, layer in _layers(model, ""):
                # run the layer first: an input it cannot take is reported as such
                try:
                    y = layer(x)
                except Exception as err:
                    raise ValueError(
                        f"input_shape: layer {name!r} ({type(layer).__name__}) fails on an input "
                        f"of shape {tuple(x.shape)}: {err}"
                    ) from err
                constant, reason = _layer_constant(layer, tuple(x.shape[1:]))
                if constant is None:
                    unbounded[name or type(layer).__name__] = reason
                else:
                    layer_bounds[name or type(layer).__name__] = constant
                x = y
    finally:
        for m, flag in flags.items():
            m.training = flag
    partial = math.prod(layer_bounds.values())
    return LipschitzBound(
        bound=math.inf if unbounded else partial,
        partial_bound=partial,
        layer_bounds=layer_bounds,
        unbounded=unbounded,
    )


def _layers(module: nn.Module, prefix: str) -> Iterator[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _layers(child, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix, module


def _tuple(value: int | Sequence[int], n: int) -> tuple[int, ...]:
    return (value,) * n if isinstance(value, int) else tuple(value)


def _windows_per_input(
    kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> int:
    """Most (window, tap) pairs that read one input position: per dimension at most ``k`` taps,
    and at most ``ceil(((k - 1) d + 1) / s)`` windows overlap a position."""
    count = 1
    for k, s, d in zip(kernel, stride, dilation, strict=True):
        count *= min(k, math.ceil(((k - 1) * d + 1) / s))
    return count


def _grouped_matrix_norm(weight: Tensor, groups: int) -> float:
    """Largest singular value over the groups of ``weight: (O, I/g, *k)`` as ``(O/g, I/g*k)``."""
    blocks = weight.reshape(groups, weight.shape[0] // groups, -1)
    return float(torch.linalg.matrix_norm(blocks, ord=2).max())


def _pad_copies(conv: _ConvNd, input_shape: tuple[int, ...]) -> float:
    """``sqrt`` of the most copies of one input entry made by a non-zero padding mode."""
    if conv.padding_mode == "zeros":
        return 1.0
    pad = conv._reversed_padding_repeated_twice
    x = torch.zeros((1, *input_shape), device=conv.weight.device)
    # Copies per entry = P^T 1 for the 0/1 padding matrix P; ||P|| = sqrt(max copies).
    mode = conv.padding_mode
    adjoint = torch.func.vjp(lambda t: F.pad(t, pad, mode=mode), x)[1]
    copies: Tensor = adjoint(torch.ones_like(F.pad(x, pad, mode=mode)))[0]
    return math.sqrt(float(copies.max()))


def _conv_bound(conv: _ConvNd, weight: Tensor, input_shape: tuple[int, ...]) -> float:
    weight = weight.to(torch.promote_types(weight.dtype, torch.float32))
    exact = operator_norm_fft(conv, weight, input_shape, strict=False)
    if exact is not None:
        return float(exact)
    nd = weight.dim() - 2
    kernel = tuple(weight.shape[2:])
    groups = int(conv.groups)
    windows = _windows_per_input(kernel, _tuple(conv.stride, nd), _tuple(conv.dilation, nd))
    # ||A x||^2 = sum_i ||W patch_i(x)||^2 <= ||W||^2 * windows * ||x||^2
    bound = math.sqrt(windows) * _grouped_matrix_norm(weight, groups)
    if not is_conv_transpose(conv):
        pad = conv._reversed_padding_repeated_twice
        grid = [
            n + pad[2 * (nd - 1 - j)] + pad[2 * (nd - 1 - j) + 1]
            for j, n in enumerate(input_shape[1:])
        ]
        # the layer is a sub-matrix of the stride-1 circular convolution on the padded grid
        circular = float(fft_norm(weight, groups, _tuple(conv.dilation, nd), grid))
        bound = min(bound, circular)
        bound *= _pad_copies(conv, input_shape)
    return bound


def _layer_constant(layer: nn.Module, input_shape: tuple[int, ...]) -> tuple[float | None, str]:
    """``(constant, "")`` for a layer it can bound, ``(None, reason)`` otherwise."""
    kind = type(layer)
    if kind in _ACTIVATION_CONSTANTS:
        return _ACTIVATION_CONSTANTS[kind], ""
    if isinstance(layer, SpectralNorm):
        inner = layer.module
        weight = layer.normalized_weight().detach()
    else:
        inner = layer
        weight = getattr(layer, "weight", None)  # type: ignore[assignment]
    if isinstance(inner, nn.Linear) and isinstance(weight, Tensor):
        w = weight.to(torch.promote_types(weight.dtype, torch.float32))
        return float(torch.linalg.matrix_norm(w, ord=2)), ""
    if is_conv(inner) and isinstance(weight, Tensor):
        return _conv_bound(inner, weight, input_shape), ""
    if isinstance(layer, nn.LeakyReLU):
        return max(1.0, abs(layer.negative_slope)), ""
    if isinstance(layer, nn.PReLU):
        return max(1.0, float(layer.weight.abs().max())), ""
    if isinstance(layer, nn.ELU):
        return max(1.0, abs(layer.alpha)), ""
    if isinstance(layer, nn.modules.batchnorm._BatchNorm):
        if layer.running_var is None:
            return None, "BatchNorm without running statistics depends on the batch"
        # y = gamma (x - mean) / sqrt(var + eps) + beta, per channel
        scale = 1.0 / torch.sqrt(layer.running_var.float() + layer.eps)
        if layer.weight is not None:
            scale = scale * layer.weight.detach().float().abs()
        return float(scale.max()), ""
    if isinstance(layer, nn.modules.pooling._MaxPoolNd):
        nd = len(input_shape) - 1
        windows = _windows_per_input(
            _tuple(layer.kernel_size, nd),
            _tuple(layer.stride, nd),
            _tuple(layer.dilation, nd),
        )
        # each output is the max of its window: |max a - max b| <= ||a - b||
        return math.sqrt(windows), ""
    if isinstance(layer, nn.modules.pooling._AvgPoolNd):
        nd = len(input_shape) - 1
        padding = _tuple(getattr(layer, "padding", 0), nd)
        if (
            any(padding)
            or getattr(layer, "ceil_mode", False)
            or getattr(layer, "divisor_override", None)
        ):
            return None, "AvgPool bound needs padding=0, ceil_mode=False, no divisor_override"
        kernel = _tuple(getattr(layer, "kernel_size", 1), nd)
        windows = _windows_per_input(kernel, _tuple(getattr(layer, "stride", 1), nd), (1,) * nd)
        # |mean(a)| <= ||a|| / sqrt(K), summed over overlapping windows
        return math.sqrt(windows / math.prod(kernel)), ""
    return None, f"no Lipschitz constant known for {kind.__name__}"
