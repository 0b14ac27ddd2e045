"""Spectral normalization under torch.func: per-example gradients, functional weights, errors."""

from __future__ import annotations

import pytest
import torch
from torch import func, nn

from gentorch.layers import spectral_norm

F64 = torch.float64


def _disc(conv: bool) -> nn.Module:
    torch.manual_seed(0)
    if conv:
        layers = [spectral_norm(nn.Conv2d(1, 4, 3, padding=1)), nn.Flatten(), nn.Linear(64, 1)]
    else:
        layers = [spectral_norm(nn.Linear(6, 8)), nn.Tanh(), spectral_norm(nn.Linear(8, 1))]
    model = nn.Sequential(*layers).double()
    model(torch.randn(2, 1, 4, 4, dtype=F64) if conv else torch.randn(2, 6, dtype=F64))
    return model.eval()  # u, v read, not updated, inside a transform


@pytest.mark.parametrize("conv", [False, True])
def test_per_example_input_gradients_match_a_loop(conv: bool) -> None:
    # e.g. a per-example gradient penalty ||d D(x) / dx|| (WGAN-GP) computed with vmap(grad)
    model = _disc(conv)
    xs = torch.randn(5, 1, 4, 4, dtype=F64) if conv else torch.randn(5, 6, dtype=F64)

    def score(x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = model(x.unsqueeze(0)).squeeze()
        return out

    batched = func.vmap(func.grad(score))(xs)
    for i in range(xs.shape[0]):
        x = xs[i].clone().requires_grad_()
        score(x).backward()
        torch.testing.assert_close(batched[i], x.grad)


def test_func_grad_with_respect_to_the_weights_equals_autograd() -> None:
    model = _disc(conv=False)
    x = torch.randn(7, 6, dtype=F64)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        out: torch.Tensor = func.functional_call(model, p, (x,)).square().sum()
        return out

    grads = func.grad(loss)(params)
    model(x).square().sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None
        torch.testing.assert_close(grads[name], param.grad)


def test_training_mode_inside_a_transform_says_what_to_do() -> None:
    model = _disc(conv=False).train()
    x = torch.randn(6, dtype=F64)
    with pytest.raises(RuntimeError, match=r"SpectralNorm: in training mode .* call \.eval\(\)"):
        func.grad(lambda t: model(t.unsqueeze(0)).sum())(x)
