"""ONNX export with a numerical check against onnxruntime.

Export goes through ``torch.onnx.export`` (the ``torch.export``-based exporter); the check runs
the file in onnxruntime and compares it with the eager module on the same inputs.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["export_onnx", "run_onnx", "verify_onnx"]


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
        TypeError: ``module`` is not an ``nn.Module`` or ``example_inputs`` is not a non-empty
            sequence of tensors.

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
    inputs = tuple(example_inputs)
    if not inputs or not all(isinstance(t, Tensor) for t in inputs):
        raise TypeError("example_inputs: expected a non-empty sequence of tensors")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic_shapes = None
    if dynamic_batch:
        batch = torch.export.Dim("batch", min=1)
        dynamic_shapes = tuple({0: batch} if t.dim() > 0 else None for t in inputs)
    was_training = module.training
    module.eval()
    try:
        # The exporter prints progress lines; keep library calls quiet.
        with contextlib.redirect_stdout(io.StringIO()):
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
        ValueError: the number of ``inputs`` differs from the model's number of inputs.

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
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    if len(names) != len(inputs):
        raise ValueError(f"inputs: the model takes {len(names)} inputs, got {len(inputs)}")
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
        AssertionError: an output's shape differs, or its values differ by more than
            ``atol + rtol * |expected|`` (the message names the output's index).

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
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            expected = module(*inputs)
    finally:
        module.train(was_training)
    expected_list = [expected] if isinstance(expected, Tensor) else list(expected)
    got = run_onnx(path, inputs)
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
