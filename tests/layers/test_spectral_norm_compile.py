"""SpectralNorm under torch.compile(fullgraph=True): no graph break, u and v still updated."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gentorch.layers import SpectralNorm, spectral_norm


def _disc() -> nn.Sequential:
    return nn.Sequential(
        spectral_norm(nn.Conv2d(3, 8, 3, padding=1)),
        nn.LeakyReLU(0.1),
        spectral_norm(nn.Conv2d(8, 8, 4, stride=2, padding=1)),
        nn.Flatten(),
        spectral_norm(nn.Linear(8 * 4 * 4, 1)),
    )


def _sn_layers(model: nn.Module) -> list[SpectralNorm]:
    return [m for m in model.modules() if isinstance(m, SpectralNorm)]


def _start_away_from_fixed_point(*models: nn.Module) -> None:
    with torch.no_grad():  # so that one update visibly moves u
        for model in models:
            for layer in _sn_layers(model):
                layer.u.copy_(F.normalize(torch.ones_like(layer.u), dim=0))


def test_no_graph_breaks() -> None:
    torch._dynamo.reset()
    explain = torch._dynamo.explain(_disc())(torch.randn(2, 3, 8, 8))
    assert explain.graph_break_count == 0, explain.break_reasons
    assert explain.graph_count == 1


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_compiled_training_step_matches_eager(backend: str) -> None:
    # aot_eager traces forward and backward with the in-place buffer updates functionalized, as
    # inductor does, without the C++ compile; inductor runs on a single layer to stay fast.
    torch._dynamo.reset()
    model = _disc() if backend == "aot_eager" else spectral_norm(nn.Linear(6, 3))
    x = torch.randn(2, 3, 8, 8) if backend == "aot_eager" else torch.randn(2, 6)
    reference = copy.deepcopy(model)
    _start_away_from_fixed_point(model, reference)
    u0 = [layer.u.clone() for layer in _sn_layers(model)]
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    out = compiled(x)
    out.sum().backward()
    expected = reference(x)
    expected.sum().backward()
    for ours, ref, before in zip(_sn_layers(model), _sn_layers(reference), u0, strict=True):
        if ours.u.numel() > 1:  # (a 1-d u is always +-1)
            assert not torch.equal(ours.u, before)  # the update happened under compile
        torch.testing.assert_close(ours.u, ref.u)
        torch.testing.assert_close(ours.v, ref.v)
        torch.testing.assert_close(ours.module.weight.grad, ref.module.weight.grad)
    torch.testing.assert_close(out, expected)
    # eval: no update, same output as eager
    model.eval()
    reference.eval()
    u1 = [layer.u.clone() for layer in _sn_layers(model)]
    torch.testing.assert_close(compiled(x), reference(x))
    for layer, before in zip(_sn_layers(model), u1, strict=True):
        assert torch.equal(layer.u, before)


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(3, 4, 3, stride=2, padding=1),
        nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular"),  # adjoint through torch.func.vjp
        nn.ConvTranspose2d(3, 4, 4, stride=2, padding=1),
    ],
)
def test_operator_mode_has_no_graph_breaks(conv: nn.Module) -> None:
    torch._dynamo.reset()
    layer = SpectralNorm(conv, mode="operator", input_shape=(3, 8, 8))
    explain = torch._dynamo.explain(layer)(torch.randn(2, 3, 8, 8))
    assert explain.graph_break_count == 0, explain.break_reasons
