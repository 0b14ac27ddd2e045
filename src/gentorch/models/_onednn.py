"""``Linear`` layers on oneDNN's fp32 GEMM, which runs 2-3x faster than ``torch.mm`` on AMD CPUs.

PyTorch's CPU ``Linear`` calls MKL's ``sgemm``, and MKL takes its AVX2 code path on AMD
processors: on the AVX-512 Zen 5 these benchmarks run on, a (1667 x 400) @ (400 x 784) product
ran at 174 GFLOP/s through ``torch.mm`` and at 377 GFLOP/s through oneDNN (which picks its
kernels by instruction set, not by vendor), in full fp32 (no bf16/tf32 down-conversion; the
error against float64 is of the same order). Not measured on Intel CPUs, where MKL uses AVX-512
too.

:func:`run_mlp` is ``mlp(x)`` for the ``nn.Sequential`` MLPs of :mod:`gentorch.models.vae`. Its
plain ``nn.Linear`` layers (a ``ReLU`` after one fused into it) run on oneDNN only where that
cannot change what the call means: a CPU float32 input, no autocast, no hooks to call, no
``torch.compile`` / ``torch.jit.trace`` / ``torch.func`` / forward-mode AD around the call, and
oneDNN enabled (``torch.backends.mkldnn.enabled = False`` turns the path off). Anything else runs
the module as usual. With autograd on, the layers are an autograd function whose backward runs
its two GEMMs on oneDNN as well, and falls back to differentiable torch ops under
``create_graph=True`` (so double backward works). The path uses the op that ``torch.compile``'s
CPU backend emits for linear layers (``mkldnn::_linear_pointwise``); if a torch release drops
it, everything runs as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules import module as _module

from gentorch._autograd_modes import transforms_or_forward_ad_active

__all__ = ["run_mlp"]


def _find_op() -> Callable[..., Tensor] | None:
    try:
        op: Callable[..., Tensor] = torch.ops.mkldnn._linear_pointwise
        return op
    except (AttributeError, RuntimeError):
        return None


_LINEAR_POINTWISE = _find_op()

# oneDNN pays ~25 us per call (primitive lookup, weight reorder) that MKL does not: measured on a
# 2-core Zen 5, it loses below ~64 rows at small widths and wins 1.2-2.3x from 128 rows, or from
# ~4M multiply-adds at any row count.
_MIN_ROWS = 128
_MIN_MACS = 1 << 22


def _global_hooks() -> bool:
    return bool(
        _module._global_forward_hooks
        or _module._global_forward_pre_hooks
        or _module._global_backward_hooks
        or _module._global_backward_pre_hooks
    )


def _has_hooks(m: nn.Module) -> bool:
    return bool(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
    )


def _eligible(mlp: nn.Module, x: Tensor) -> bool:
    """Whether ``mlp(x)`` may skip ``nn.Module.__call__`` and ``F.linear`` (see the module doc)."""
    # the global state first (dynamo traces only is_compiling(); under a TorchScript trace,
    # reading x's size would be recorded as a constant)
    return bool(
        not torch.compiler.is_compiling()
        and not torch._C._is_tracing()
        and not transforms_or_forward_ad_active()
        and not torch.is_autocast_enabled("cpu")
        and torch.backends.mkldnn.enabled
        and torch.backends.mkldnn.is_available()
        and not _global_hooks()
        and not _has_hooks(mlp)
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.layout == torch.strided
        and x.dim() >= 1
        and x.numel() > 0
    )


def _plain_linear(m: nn.Module, x: Tensor) -> bool:
    """An ``nn.Linear`` itself (not a subclass or a parametrized one), no hooks, and float32 CPU
    weights and input of its width."""
    if type(m) is not nn.Linear or _has_hooks(m):
        return False
    weight, bias = m.weight, m.bias
    return (
        x.dtype == torch.float32
        and x.device.type == "cpu"
        and weight.dtype == torch.float32
        and weight.device.type == "cpu"
        and weight.layout == torch.strided
        and (bias is None or (bias.dtype == torch.float32 and bias.device.type == "cpu"))
        and x.shape[-1] == m.in_features
    )


def _worth_it(rows: int, m: nn.Linear) -> bool:
    return rows >= _MIN_ROWS or rows * m.in_features * m.out_features >= _MIN_MACS


def _gemm(a: Tensor, b_rows: Tensor) -> Tensor:
    """``a @ b_rows.T``: ``a: (M, K)``, ``b_rows: (N, K)`` -> ``(M, N)``, on oneDNN for float32
    without autograd; with autograd (a double backward) or another dtype, a differentiable
    torch op."""
    op = _LINEAR_POINTWISE
    if op is not None and a.dtype == torch.float32 and not torch.is_grad_enabled():
        return op(a, b_rows, None, "none", [], "")
    return F.linear(a, b_rows)


class _LinearFunction(torch.autograd.Function):
    """``y = x @ weight.T + bias``, then ``relu(y)`` if ``relu``: ``x: (..., K) -> (..., N)``.

    The formulas are dtype-generic (gradcheck runs them in float64); float32 GEMMs go to oneDNN.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, relu: bool) -> Tensor:
        op = _LINEAR_POINTWISE
        if op is not None and x.dtype == torch.float32:
            y = op(x, weight, bias, "relu" if relu else "none", [], "")
        else:
            y = F.linear(x, weight, bias)
            y = y.relu_() if relu else y
        # relu(y) is kept for its mask (as nn.ReLU keeps its output); the pre-activation is not
        ctx.save_for_backward(x, weight, y if relu else None)
        ctx.relu = relu
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(
        ctx: Any, grad_y: Tensor
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None, None]:
        x, weight, y = ctx.saved_tensors
        if ctx.relu:
            # d relu(u) / du = [u > 0] = [relu(u) > 0]
            grad_y = grad_y * (y > 0)
        g = grad_y.reshape(-1, grad_y.shape[-1])  # (M, N)
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            # dL/dx = g @ W = g @ (W.T).T
            grad_x = _gemm(g, weight.T).reshape(x.shape)
        if ctx.needs_input_grad[1]:
            # dL/dW = g.T @ x
            grad_weight = _gemm(g.T, x.reshape(-1, x.shape[-1]).T)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = g.sum(0)
        return grad_x, grad_weight, grad_bias, None


def run_mlp(mlp: nn.Module, x: Tensor) -> Tensor:
    """``mlp(x)``, its plain ``nn.Linear`` layers on oneDNN where that is safe and faster.

    ``x: (..., D_in) -> (..., D_out)``. The result and its gradients equal those of ``mlp(x)``
    up to float32 rounding (another summation order inside the GEMMs).
    """
    op = _LINEAR_POINTWISE
    if op is None or not isinstance(mlp, nn.Sequential) or not _eligible(mlp, x):
        out: Tensor = mlp(x)
        return out
    rows = x.numel() // x.shape[-1]
    layers = list(mlp)
    h = x
    i = 0
    while i < len(layers):
        m = layers[i]
        if _plain_linear(m, h) and _worth_it(rows, m):  # type: ignore[arg-type]
            fuse_relu = i + 1 < len(layers) and type(layers[i + 1]) is nn.ReLU
            fuse_relu = fuse_relu and not _has_hooks(layers[i + 1])
            if torch.is_grad_enabled():
                h = _LinearFunction.apply(h, m.weight, m.bias, fuse_relu)
            else:
                args: list[Any] = [h, m.weight, m.bias, "relu" if fuse_relu else "none", [], ""]
                h = op(*args)
            i += 2 if fuse_relu else 1
        else:
            h = m(h)
            i += 1
    return h
