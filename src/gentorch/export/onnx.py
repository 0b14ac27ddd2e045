"""ONNX export with a numerical check against onnxruntime.

Export goes through ``torch.onnx.export`` (the ``torch.export``-based exporter); the check runs
the file in onnxruntime and compares it with the eager module on the same inputs.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import numbers
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gentorch._checks import as_path, check_parent_folders

__all__ = ["export_onnx", "run_onnx", "verify_onnx"]

# onnxruntime's input type names -> torch dtypes (others are not checked here).
_ORT_DTYPES = {
    "tensor(float)": torch.float32,
    "tensor(double)": torch.float64,
    "tensor(float16)": torch.float16,
    "tensor(bfloat16)": torch.bfloat16,
    "tensor(int64)": torch.int64,
    "tensor(int32)": torch.int32,
    "tensor(int16)": torch.int16,
    "tensor(int8)": torch.int8,
    "tensor(uint8)": torch.uint8,
    "tensor(bool)": torch.bool,
}


def _not_about_torchvision(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("torchvision is not installed")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Keep the exporter's output to what concerns the user's model.

    Silenced: its progress lines (stdout); the four "torchvision is not installed. Skipping
    torchvision::nms" warnings it logs while building its operator table (gentorch has no
    torchvision ops); and torch's own ``LeafSpec`` deprecation ``FutureWarning`` raised inside
    the exporter. Anything else it logs or warns still reaches the user.
    """
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    registration.addFilter(_not_about_torchvision)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.filterwarnings(
                "ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning
            )
            yield
    finally:
        registration.removeFilter(_not_about_torchvision)


def _as_inputs(inputs: object, name: str) -> tuple[Tensor, ...]:
    """A non-empty tuple of tensors; a bare tensor is refused (iterating it would split it)."""
    if isinstance(inputs, Tensor):
        raise TypeError(
            f"{name}: expected a sequence of tensors such as (x,), got a single Tensor of shape "
            f"{tuple(inputs.shape)}; wrap it in a tuple"
        )
    if isinstance(inputs, str | bytes) or not isinstance(inputs, Sequence):
        raise TypeError(
            f"{name}: expected a non-empty sequence of tensors, got {type(inputs).__name__}"
        )
    out = tuple(inputs)
    if not out or not all(isinstance(t, Tensor) for t in out):
        got = ", ".join(type(t).__name__ for t in out) or "nothing"
        raise TypeError(f"{name}: expected a non-empty sequence of tensors, got ({got})")
    return out


def _session(path: str | Path) -> Any:
    """An onnxruntime CPU session of the file ``path``, with the failures named."""
    import onnxruntime as ort

    path = as_path(path)
    if path.is_dir():
        raise ValueError(f"path: expected an .onnx file, got the folder {str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"path: no ONNX file at {str(path)!r}")
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        raise ValueError(f"path: {str(path)!r} is not a readable ONNX model ({err})") from None


def _check_inputs(session: Any, inputs: tuple[Tensor, ...]) -> None:
    """Each input's rank, fixed sizes and dtype against what the ONNX model declares."""
    specs = session.get_inputs()
    if len(specs) != len(inputs):
        raise ValueError(f"inputs: the model takes {len(specs)} inputs, got {len(inputs)}")
    for i, (spec, t) in enumerate(zip(specs, inputs, strict=True)):
        dims = list(spec.shape)
        dtype = _ORT_DTYPES.get(spec.type)
        fits = t.dim() == len(dims) and all(
            not isinstance(d, int) or d == s for d, s in zip(dims, t.shape, strict=True)
        )
        if not fits or (dtype is not None and t.dtype != dtype):
            shown = ", ".join(str(d) if isinstance(d, int) else str(d or "?") for d in dims)
            raise ValueError(
                f"inputs[{i}]: the model's input {spec.name!r} expects shape ({shown}) of "
                f"{dtype if dtype is not None else spec.type}, got {tuple(t.shape)} of {t.dtype}"
            )


def export_onnx(
    module: nn.Module,
    example_inputs: Sequence[Tensor],
    path: str | Path,
    *,
    dynamic_batch: bool = True,
    opset_version: int | None = None,
) -> Path:
    """Export ``module`` to an ONNX file and return its path.

    Args:
        module: the module to export; it is put in eval mode for the export and restored after.
        example_inputs: positional inputs of the forward, each ``(B, ...)``.
        path: where to write the ``.onnx`` file (parent folders are created).
        dynamic_batch: mark the first dimension of every input as dynamic.
        opset_version: ONNX opset; ``None`` uses the exporter's default.

    Returns:
        ``path`` as a ``Path``: a self-contained ``.onnx`` file (weights inside it, no
        external data files).

    Raises:
        TypeError: ``module`` is not an ``nn.Module``, ``example_inputs`` is not a non-empty
            sequence of tensors (a bare tensor ``x`` must be passed as ``(x,)``), ``path`` is
            not a path, ``dynamic_batch`` not a bool or ``opset_version`` not an int.
        ValueError: ``path`` is a folder, lies under a file or does not end in ``.onnx``, or
            ``module`` fails on ``example_inputs`` when run eagerly (the module's error is
            chained).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import torch
        >>> from torch import nn
        >>> from gentorch.export import export_onnx, run_onnx
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     p = export_onnx(nn.Linear(4, 2), (torch.randn(3, 4),), Path(tmp, "linear.onnx"))
        ...     print(p.name, run_onnx(p, (torch.randn(5, 4),))[0].shape)  # any batch size
        linear.onnx torch.Size([5, 2])
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
    inputs = _as_inputs(example_inputs, "example_inputs")
    path = as_path(path)
    if path.is_dir():
        raise ValueError(
            f"path: expected an .onnx file to write, got the existing folder {str(path)!r}"
        )
    if path.suffix.lower() != ".onnx":
        raise ValueError(f"path: expected a file name ending in .onnx, got {str(path)!r}")
    check_parent_folders(path)
    if not isinstance(dynamic_batch, bool):
        raise TypeError(f"dynamic_batch: expected True or False, got {dynamic_batch!r}")
    if opset_version is not None and (
        isinstance(opset_version, bool) or not isinstance(opset_version, int)
    ):
        raise TypeError(f"opset_version: expected an int or None, got {opset_version!r}")
    _check_runs(module, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic_shapes = None
    if dynamic_batch:
        batch = torch.export.Dim("batch", min=1)
        dynamic_shapes = tuple({0: batch} if t.dim() > 0 else None for t in inputs)
    was_training = module.training
    module.eval()
    try:
        with _quiet_exporter():
            torch.onnx.export(
                module,
                inputs,
                str(path),
                dynamo=True,
                dynamic_shapes=dynamic_shapes,
                opset_version=opset_version,
                external_data=False,
            )
    finally:
        module.train(was_training)
    return path


def _check_runs(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
    """Run ``module`` eagerly on ``inputs`` once, so that a bad input fails with the module's own
    error instead of deep inside the exporter; RNG states and the module's mode are restored."""
    devices = sorted({t.device.index or 0 for t in inputs if t.device.type == "cuda"})
    was_training = module.training
    module.eval()
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            module(*inputs)
    except Exception as err:
        shapes = ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in inputs)
        raise ValueError(
            f"example_inputs: {type(module).__name__} fails on inputs of shape {shapes}: "
            f"{type(err).__name__}: {err}"
        ) from err
    finally:
        module.train(was_training)


def run_onnx(path: str | Path, inputs: Sequence[Tensor]) -> list[Tensor]:
    """Run an ONNX file in onnxruntime (CPU) and return its outputs as tensors.

    Needs the ``onnxruntime`` package (``pip install gentorch[export]``).

    Args:
        path: the ``.onnx`` file, e.g. from :func:`export_onnx`.
        inputs: the model's inputs in order, one tensor per ONNX input (each ``(B, ...)``;
            detached and copied to the CPU as numpy arrays).

    Returns:
        The model's outputs in order, as CPU tensors.

    Raises:
        TypeError: ``inputs`` is not a sequence of tensors (a bare tensor ``x`` must be passed
            as ``(x,)``) or ``path`` is not a path.
        FileNotFoundError: no file at ``path``.
        ValueError: ``path`` is a folder or not an ONNX model, or ``inputs`` differ from the
            model's inputs in number, rank, a fixed size or dtype (each is named).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import torch
        >>> from torch import nn
        >>> from gentorch.export import export_onnx, run_onnx
        >>> layer, x = nn.Linear(4, 2), torch.randn(5, 4)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     p = export_onnx(layer, (x,), Path(tmp, "linear.onnx"))
        ...     (y,) = run_onnx(p, (x,))
        >>> y.shape, torch.allclose(y, layer(x), atol=1e-6)
        (torch.Size([5, 2]), True)
    """
    tensors = _as_inputs(inputs, "inputs")
    session = _session(path)
    return _run(session, tensors)


def _run(session: Any, inputs: tuple[Tensor, ...]) -> list[Tensor]:
    _check_inputs(session, inputs)
    names = [i.name for i in session.get_inputs()]
    feed = {n: t.detach().cpu().numpy() for n, t in zip(names, inputs, strict=True)}
    return [torch.from_numpy(o) for o in session.run(None, feed)]


def verify_onnx(
    module: nn.Module,
    path: str | Path,
    inputs: Sequence[Tensor],
    *,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> float:
    """Compare onnxruntime's outputs of ``path`` with ``module``'s eager outputs in eval mode.

    The module runs under ``torch.no_grad()`` in eval mode (its mode is restored after); the
    file runs in onnxruntime on the CPU (:func:`run_onnx`). Outputs are compared in order with
    ``torch.testing.assert_close``.

    Args:
        module: the eager module the file was exported from.
        path: the ``.onnx`` file.
        inputs: the inputs to run both on, each ``(B, ...)``; a batch size other than the
            export's checks a dynamic batch dimension.
        rtol: relative tolerance.
        atol: absolute tolerance.

    Returns:
        The largest absolute difference over all outputs' elements.

    Raises:
        AssertionError: the number of outputs or an output's shape differs, or its values
            differ by more than ``atol + rtol * |expected|`` (the message names the output's
            index).
        TypeError: ``module`` is not an ``nn.Module`` or ``inputs`` not a sequence of tensors.
        ValueError: a negative or non-finite ``rtol`` / ``atol``, or ``inputs`` that do not fit
            the file's inputs (as :func:`run_onnx`).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import torch
        >>> from torch import nn
        >>> from gentorch.export import export_onnx, verify_onnx
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     p = export_onnx(net, (torch.randn(3, 4),), Path(tmp, "net.onnx"))
        ...     worst = verify_onnx(net, p, (torch.randn(7, 4),))
        >>> worst < 1e-5
        True
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
    tensors = _as_inputs(inputs, "inputs")
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if (
            isinstance(tol, bool)
            or not isinstance(tol, numbers.Real)
            or not math.isfinite(tol)
            or tol < 0
        ):
            raise ValueError(f"{name}: expected a finite tolerance >= 0, got {tol!r}")
    session = _session(path)
    _check_inputs(session, tensors)  # before running the module on inputs the file refuses
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            expected = module(*tensors)
    finally:
        module.train(was_training)
    expected_list = [expected] if isinstance(expected, Tensor) else list(expected)
    got = _run(session, tensors)
    if len(got) != len(expected_list):
        raise AssertionError(
            f"outputs: the file gives {len(got)}, the module {len(expected_list)}; it was not "
            f"exported from this module"
        )
    worst = 0.0
    for i, (e, g) in enumerate(zip(expected_list, got, strict=True)):
        e = e.detach().cpu().to(g.dtype)
        if e.shape != g.shape:
            raise AssertionError(f"output {i}: shape {tuple(g.shape)} != expected {tuple(e.shape)}")
        diff = (e - g).abs()
        worst = max(worst, float(diff.max()) if diff.numel() else 0.0)
        try:
            torch.testing.assert_close(g, e, rtol=rtol, atol=atol)
        except AssertionError as err:
            raise AssertionError(f"output {i}: {err}") from None
    return worst
