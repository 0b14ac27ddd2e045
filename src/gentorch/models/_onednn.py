"""Inference-time ``Linear`` layers on oneDNN's fp32 GEMM, which runs 2-3x faster than
``torch.mm`` on AMD CPUs.

PyTorch's CPU ``Linear`` calls MKL's ``sgemm``, and MKL takes its AVX2 code path on AMD
processors: on the AVX-512 Zen 5 these benchmarks run on, a (1667 x 400) @ (400 x 784) product
ran at 174 GFLOP/s through ``torch.mm`` and at 377 GFLOP/s through oneDNN (which picks its
kernels by instruction set, not by vendor), in full fp32 (no bf16/tf32 down-conversion; the
error against float64 is of the same order). Not measured on Intel CPUs, where MKL uses AVX-512
too.

:func:`run_mlp` is ``mlp(x)`` for the ``nn.Sequential`` MLPs of :mod:`gentorch.models.vae`, taking
that path only where it cannot change what the call means: no autograd to record, a CPU float32
input, no autocast, no hooks to call, no ``torch.compile`` / ``torch.jit.trace`` /
``torch.func`` / forward-mode AD around the call, oneDNN enabled (``torch.backends.mkldnn.enabled
= False`` turns the path off), and only plain ``nn.Linear`` modules (a ``ReLU`` after one is
fused into it). Anything else runs the module as usual. The path uses the op that
``torch.compile``'s CPU backend emits for linear layers (``mkldnn::_linear_pointwise``); if a
torch release drops it, everything runs as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd import forward_ad as _forward_ad
from torch.nn.modules import module as _module

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
    # the global state first: under a trace, reading x's size would be recorded as a constant
    return bool(
        not torch.is_grad_enabled()
        and not torch._C._is_tracing()
        and not torch.compiler.is_compiling()
        and not torch._C._are_functorch_transforms_active()
        and getattr(_forward_ad, "_current_level", -1) < 0
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


def run_mlp(mlp: nn.Module, x: Tensor) -> Tensor:
    """``mlp(x)``, its plain ``nn.Linear`` layers on oneDNN where that is safe and faster.

    ``x: (..., D_in) -> (..., D_out)``. The result equals ``mlp(x)`` up to float32 rounding
    (another summation order inside the GEMM).
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
            args: list[Any] = [h, m.weight, m.bias, "relu" if fuse_relu else "none", [], ""]
            h = op(*args)
            i += 2 if fuse_relu else 1
        else:
            h = m(h)
            i += 1
    return h
