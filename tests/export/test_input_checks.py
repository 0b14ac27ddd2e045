"""Bad input to gentorch.export: a clear error naming the argument and what it received."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gentorch.export import export_onnx, run_onnx, verify_onnx


@pytest.fixture(scope="module")
def linear_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path]:
    torch.manual_seed(0)
    layer = nn.Linear(4, 2)
    return layer, export_onnx(
        layer, (torch.randn(3, 4),), tmp_path_factory.mktemp("onnx") / "l.onnx"
    )


def test_a_bare_tensor_is_not_a_sequence_of_inputs(
    tmp_path: Path, linear_onnx: tuple[nn.Module, Path]
) -> None:
    layer, path = linear_onnx
    x = torch.randn(5, 4)
    match = r"expected a sequence of tensors such as \(x,\), got a single Tensor of shape \(5, 4\)"
    with pytest.raises(TypeError, match="example_inputs: " + match):
        export_onnx(layer, x, tmp_path / "a.onnx")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="inputs: " + match):
        run_onnx(path, x)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="inputs: " + match):
        verify_onnx(layer, path, x)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"inputs: expected a non-empty sequence of tensors, got \(ndarray\)"
    ):
        run_onnx(path, (np.zeros((5, 4), np.float32),))  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_export_runs_the_module_first_on_the_example_inputs(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"example_inputs: Linear fails on inputs of shape \(3, 5\)"
    ):
        export_onnx(nn.Linear(4, 2), (torch.randn(3, 5),), tmp_path / "a.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_path_and_settings(tmp_path: Path) -> None:
    layer, x = nn.Linear(4, 2), (torch.randn(3, 4),)
    (tmp_path / "f").write_text("keep")
    with pytest.raises(
        ValueError, match=r"path: expected an .onnx file to write, got the existing folder"
    ):
        export_onnx(layer, x, tmp_path)
    with pytest.raises(
        ValueError, match=r"path: expected a file name ending in .onnx, got .*model.pt"
    ):
        export_onnx(layer, x, tmp_path / "model.pt")
    with pytest.raises(ValueError, match=r"path: cannot write .*f' is a file, not a folder"):
        export_onnx(layer, x, tmp_path / "f" / "a.onnx")
    with pytest.raises(TypeError, match=r"opset_version: expected an int or None, got '17'"):
        export_onnx(layer, x, tmp_path / "a.onnx", opset_version="17")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"dynamic_batch: expected True or False, got 'no'"):
        export_onnx(layer, x, tmp_path / "a.onnx", dynamic_batch="no")  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_run_checks_inputs_against_the_model(linear_onnx: tuple[nn.Module, Path]) -> None:
    _, path = linear_onnx
    with pytest.raises(
        ValueError,
        match=r"inputs\[0\]: .* expects shape \(batch, 4\) of torch.float32, got \(5, 3\)",
    ):
        run_onnx(path, (torch.randn(5, 3),))
    with pytest.raises(ValueError, match=r"inputs\[0\]: .* got \(5, 4\) of torch.float64"):
        run_onnx(path, (torch.randn(5, 4, dtype=torch.float64),))
    with pytest.raises(ValueError, match=r"inputs\[0\]: .* got \(4,\) of torch.float32"):
        run_onnx(path, (torch.randn(4),))


def test_run_path_problems(tmp_path: Path) -> None:
    x = (torch.randn(5, 4),)
    with pytest.raises(FileNotFoundError, match=r"path: no ONNX file at .*nope.onnx"):
        run_onnx(tmp_path / "nope.onnx", x)
    with pytest.raises(ValueError, match=r"path: expected an .onnx file, got the folder"):
        run_onnx(tmp_path, x)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"path: .*junk.onnx' is not a readable ONNX model"):
        run_onnx(tmp_path / "junk.onnx", x)


def test_verify_arguments(linear_onnx: tuple[nn.Module, Path]) -> None:
    layer, path = linear_onnx
    x = (torch.randn(5, 4),)
    with pytest.raises(TypeError, match=r"module: expected an nn.Module, got int"):
        verify_onnx(5, path, x)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"rtol: expected a finite tolerance >= 0, got -1"):
        verify_onnx(layer, path, x, rtol=-1)
    with pytest.raises(ValueError, match=r"inputs\[0\]: .* got \(5, 3\)"):
        verify_onnx(layer, path, (torch.randn(5, 3),))

    class Two(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x[:, :2], x[:, 2:]

    with pytest.raises(AssertionError, match=r"outputs: the file gives 1, the module 2"):
        verify_onnx(Two(), path, x)
