"""The sampling layers under torch.compile(fullgraph=True)."""

from __future__ import annotations

import pytest
import torch

from gentorch.layers import (
    GumbelSoftmax,
    RelaxedBernoulli,
    Reparameterize,
    ReparameterizeFullCov,
    ReparameterizeLaplace,
    ReparameterizeLogistic,
)

pytestmark = pytest.mark.slow


def test_compile_fullgraph_inductor_training_eval_and_check_finite() -> None:
    layer = Reparameterize(check_finite=True, track_diagnostics=True)
    compiled = torch.compile(layer, fullgraph=True)  # default backend: inductor
    x = torch.randn(4, 6, requires_grad=True)
    z = compiled(x)
    assert z.shape == (4, 3)
    z.sum().backward()
    # dz/dmu = 1 and dz/dlogvar = 0.5 * sigma * eps = 0.5 * (z - mu)
    mu = x.detach()[:, :3]
    assert x.grad is not None
    torch.testing.assert_close(x.grad[:, :3], torch.ones(4, 3))
    torch.testing.assert_close(x.grad[:, 3:], 0.5 * (z.detach() - mu))
    # The finiteness check is an in-graph assertion under compile: same graph, NaN input.
    bad = x.detach().clone()
    bad[0, 4] = float("nan")
    with pytest.raises(RuntimeError, match="expected finite values"):
        compiled(bad)
    layer.eval()
    assert torch.equal(compiled(x.detach()), mu)
    # diagnostics are recorded from the compiled forward too
    assert layer.diagnostics()["n_rows"] == 4


@pytest.mark.parametrize(
    ("layer", "width"),
    [
        (Reparameterize(), 6),  # the defaults (no diagnostics record)
        (ReparameterizeLaplace(), 6),
        (ReparameterizeLogistic(), 6),
        (ReparameterizeFullCov(), 9),
        (GumbelSoftmax(0.5, hard=True), 4),
        (RelaxedBernoulli(0.5, hard=True), 4),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, torch.nn.Module) else str(v),
)
def test_other_families_trace_without_graph_break(layer: torch.nn.Module, width: int) -> None:
    # fullgraph=True raises on any graph break; the "eager" backend keeps this test fast
    # (inductor itself is exercised once above).
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    x = torch.randn(5, width, requires_grad=True)
    y = compiled(x, n_samples=2)
    y.sum().backward()
    assert y.shape[:2] == (2, 5)
    assert x.grad is not None
