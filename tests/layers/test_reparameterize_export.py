"""Reparameterize through torch.export and ONNX, checked against onnxruntime."""

from __future__ import annotations

import math
from pathlib import Path

import onnxruntime as ort
import pytest
import torch
from scipy import stats

from gentorch.export import export_onnx, run_onnx, verify_onnx
from gentorch.layers import Reparameterize

pytestmark = pytest.mark.slow


def test_torch_export_mean_and_sample_mode() -> None:
    x = torch.randn(3, 4)
    mean_layer = Reparameterize().eval()
    ep = torch.export.export(mean_layer, (x,))
    assert "normal" not in ep.graph_module.code
    assert "randn" not in ep.graph_module.code
    assert torch.equal(ep.module()(x), x[:, :2])
    sample_layer = Reparameterize(eval_mode="sample").eval()
    ep = torch.export.export(sample_layer, (x,))
    assert "aten.normal" in ep.graph_module.code  # the noise is drawn in the graph
    assert ep.module()(x).shape == (3, 2)


def test_onnx_mean_mode_matches_eager_with_dynamic_batch(tmp_path: Path) -> None:
    layer = Reparameterize().eval()
    path = export_onnx(layer, (torch.randn(3, 8),), tmp_path / "mean.onnx")
    assert verify_onnx(layer, path, (torch.randn(11, 8),)) == 0.0


def test_onnx_sample_mode_draws_the_right_gaussian(tmp_path: Path) -> None:
    # Sample mode exports as an ONNX random-normal op; onnxruntime's noise differs from torch's,
    # so the check is on the law of the samples: N(2, 3^2) for every row.
    layer = Reparameterize(eval_mode="sample").eval()
    path = export_onnx(layer, (torch.randn(3, 2),), tmp_path / "sample.onnx")
    n = 4000
    x = torch.cat([torch.full((n, 1), 2.0), torch.full((n, 1), 2 * math.log(3.0))], dim=1)
    ort.set_seed(0)  # onnxruntime's own generator (RandomNormalLike carries no seed)
    (z,) = run_onnx(path, (x,))
    assert z.shape == (n, 1)
    # Fixed seed, deterministic p-value; 1e-3 rejects any wrong mean or scale (p ~ 0 at n = 4000).
    law = stats.norm(loc=2.0, scale=3.0)
    assert stats.kstest(z.flatten().numpy(), law.cdf).pvalue > 1e-3
    assert stats.kstest(z.flatten().numpy(), stats.norm(loc=2.0, scale=3.6).cdf).pvalue < 1e-3
