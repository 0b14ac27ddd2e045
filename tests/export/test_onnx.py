import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from gentorch.export import export_onnx, run_onnx, verify_onnx


def test_roundtrip_matches_eager_with_dynamic_batch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    path = export_onnx(model, (torch.randn(3, 4),), tmp_path / "m.onnx")
    x = torch.randn(7, 4)
    assert verify_onnx(model, path, (x,)) < 1e-5
    (out,) = run_onnx(path, (x,))
    assert out.shape == (7, 2)


def test_verify_detects_a_different_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    path = export_onnx(model, (torch.randn(3, 4),), tmp_path / "m.onnx")
    with torch.no_grad():
        model.bias.add_(1.0)
    with pytest.raises(AssertionError, match="output 0"):
        verify_onnx(model, path, (torch.randn(3, 4),))


def test_bad_arguments_are_named() -> None:
    with pytest.raises(TypeError, match="module"):
        export_onnx("not a module", (torch.randn(1),), "/tmp/x.onnx")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="example_inputs"):
        export_onnx(nn.Linear(1, 1), (), "/tmp/x.onnx")


def test_export_keeps_the_exporters_unrelated_notes_quiet(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    recwarn: pytest.WarningsRecorder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # before: every export logged four "torchvision is not installed. Skipping torchvision::nms"
    # warnings, torch's LeafSpec FutureWarning and (on stdout) the exporter's progress lines
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    filters = list(registration.filters)
    with caplog.at_level(logging.WARNING):
        export_onnx(nn.Linear(2, 2), (torch.randn(1, 2),), tmp_path / "m.onnx")
    assert [r.getMessage() for r in caplog.records if "torchvision" in r.getMessage()] == []
    assert [str(w.message) for w in recwarn if "LeafSpec" in str(w.message)] == []
    assert capsys.readouterr().out == ""
    assert registration.filters == filters  # the filter is there only during the export
