"""SpectralNorm with the rest of PyTorch: state dicts (ours and PyTorch's), copying, pickling,
EMA, GAN-style autograd, torch.compile, autocast and ONNX export."""

from __future__ import annotations

import copy
import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrizations
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gentorch.layers import (
    SpectralNorm,
    convert_torch_spectral_norm_state_dict,
    remove_spectral_norm,
    spectral_norm,
)


def _disc(sn: bool = True) -> nn.Sequential:
    wrap = spectral_norm if sn else (lambda m: m)
    return nn.Sequential(
        wrap(nn.Conv2d(3, 8, 3, padding=1)),
        nn.LeakyReLU(0.1),
        wrap(nn.Conv2d(8, 8, 4, stride=2, padding=1)),
        nn.LeakyReLU(0.1),
        nn.Flatten(),
        wrap(nn.Linear(8 * 4 * 4, 1)),
    )


def _sn_layers(model: nn.Module) -> list[SpectralNorm]:
    return [m for m in model.modules() if isinstance(m, SpectralNorm)]


def test_state_dict_round_trip_through_bytes() -> None:
    model = _disc()
    model(torch.randn(2, 3, 8, 8))  # move u, v away from their construction values
    keys = set(model.state_dict())
    assert {"0.module.weight", "0.module.bias", "0.u", "0.v", "5.u", "5.v"} <= keys
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    other = _disc()
    other.load_state_dict(torch.load(buffer, weights_only=True))
    for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    model.eval()
    other.eval()
    x = torch.randn(4, 3, 8, 8)
    assert torch.equal(model(x), other(x))


@pytest.mark.parametrize("layout", ["legacy", "parametrization"])
def test_load_pytorch_spectral_norm_state_dict(layout: str) -> None:
    # same architecture, three spectral norms (conv, transposed conv, linear)
    def make(wrap: Callable[[nn.Module], nn.Module]) -> nn.Sequential:
        return nn.Sequential(
            wrap(nn.Conv2d(3, 4, 3)),
            nn.ReLU(),
            wrap(nn.ConvTranspose2d(4, 2, 3)),
            nn.Flatten(),
            wrap(nn.Linear(2 * 6 * 6, 3)),
        )

    torch_sn = (
        torch.nn.utils.spectral_norm if layout == "legacy" else parametrizations.spectral_norm
    )
    theirs = make(torch_sn)
    for _ in range(3):  # a few training steps so u, v are theirs, not a construction artefact
        theirs(torch.randn(2, 3, 6, 6))
    theirs.eval()
    state = theirs.state_dict()
    converted = convert_torch_spectral_norm_state_dict(state)
    ours = make(spectral_norm)
    ours.load_state_dict(converted)  # strict: every key matched
    ours.eval()
    x = torch.randn(5, 3, 6, 6)
    # PyTorch's eval output uses sigma = u^T W v with its stored u, v: so do we.
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-6)
    # and both equal the explicit math W / (u^T W v)
    original = "weight_orig" if layout == "legacy" else "parametrizations.weight.original"
    explicit = make(lambda m: m)
    for i, dim in ((0, 0), (2, 1), (4, 0)):
        W = state[f"{i}.{original}"]
        u, v = converted[f"{i}.u"], converted[f"{i}.v"]
        sigma = u @ W.movedim(dim, 0).reshape(W.shape[dim], -1) @ v
        cast(Tensor, explicit[i].weight).data.copy_(W / sigma)
        cast(Tensor, explicit[i].bias).data.copy_(state[f"{i}.bias"])
    torch.testing.assert_close(ours(x), explicit(x), rtol=1e-5, atol=1e-6)


def test_converter_keys_and_errors() -> None:
    top = parametrizations.spectral_norm(nn.Linear(4, 3)).state_dict()
    assert set(convert_torch_spectral_norm_state_dict(top)) == {
        "module.weight",
        "module.bias",
        "u",
        "v",
    }
    nested = nn.Sequential(
        nn.Linear(2, 2), nn.Sequential(torch.nn.utils.spectral_norm(nn.Linear(2, 2)))
    )
    out = convert_torch_spectral_norm_state_dict(nested.state_dict())
    assert set(out) == {
        "0.weight",
        "0.bias",
        "1.0.module.weight",
        "1.0.module.bias",
        "1.0.u",
        "1.0.v",
    }
    broken = {"weight_orig": torch.zeros(2, 2), "weight_u": torch.zeros(2)}
    with pytest.raises(KeyError, match="weight_v"):
        convert_torch_spectral_norm_state_dict(broken)


def test_deepcopy_after_training_forward_and_pickling() -> None:
    model = _disc()
    x = torch.randn(2, 3, 8, 8)
    model(x).sum().backward()  # PyTorch's legacy SN cannot be deep-copied at this point
    clone = copy.deepcopy(model)
    restored = pickle.loads(pickle.dumps(model))
    for other in (clone, restored):
        for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        other.eval()
    model.eval()
    assert torch.equal(clone(x), model(x))
    assert torch.equal(restored(x), model(x))
    # the copy is independent: training it moves its u, not the original's (a new weight, since
    # u is already a fixed point of the power iteration for the warmed-up one)
    u = cast(SpectralNorm, model[0]).u.clone()
    with torch.no_grad():
        cast(nn.Conv2d, cast(SpectralNorm, clone[0]).module).weight.add_(torch.randn(8, 3, 3, 3))
    clone.train()(x)
    assert torch.equal(cast(SpectralNorm, model[0]).u, u)
    assert not torch.equal(cast(SpectralNorm, clone[0]).u, u)


def test_averaged_model_ema() -> None:
    model = _disc()
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        model(torch.randn(4, 3, 8, 8)).mean().backward()
        opt.step()
        ema.update_parameters(model)
    ema.eval()
    x = torch.randn(3, 3, 8, 8)
    assert torch.isfinite(ema(x)).all()
    for layer in _sn_layers(ema.module):
        # The averaged u, v are not unit vectors; sigma divides by their norms, so the EMA model
        # computes W_avg / (u_avg^T W_avg v_avg / |u_avg| |v_avg|) exactly...
        W = layer._matrix(cast(Tensor, layer.module.weight).detach())
        u, v = layer.u, layer.v
        torch.testing.assert_close(layer.sigma, (u @ W @ v) / (u.norm() * v.norm()))
        # ...but averaged vectors are not the averaged weight's singular vectors: warm_up()
        # re-estimates them (the documented step after averaging).
        layer.warm_up()
        assert layer.diagnostics()["relative_error"] < 1e-4
    # the parameters really are the EMA of the model's (decay 0.9 over 5 updates)
    ema_first = cast(SpectralNorm, cast(nn.Sequential, ema.module)[0])
    first = cast(SpectralNorm, model[0])
    assert not torch.equal(cast(Tensor, ema_first.module.weight), cast(Tensor, first.module.weight))


def test_two_forwards_then_one_backward() -> None:
    # D(real) - D(fake): the first graph must survive the in-place u, v update of the second.
    # Reference: the same two forwards, each backpropagated before the next one runs.
    model = _disc()
    reference = copy.deepcopy(model)
    real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    loss = model(real).mean() - model(fake).mean()
    loss.backward()
    reference(real).mean().backward()
    (-reference(fake).mean()).backward()
    for layer, ref in zip(_sn_layers(model), _sn_layers(reference), strict=True):
        torch.testing.assert_close(layer.u, ref.u)  # two updates each
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert p.grad is not None
        assert q.grad is not None
        torch.testing.assert_close(p.grad, q.grad)


def test_gradient_penalty_double_backward() -> None:
    model = _disc().double()
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
    penalty = (g.flatten(1).norm(dim=1) - 1).square().mean()
    penalty.backward()
    weight = cast(SpectralNorm, model[0]).module.weight
    assert isinstance(weight, Tensor)
    assert weight.grad is not None
    assert torch.isfinite(weight.grad).all()
    assert float(weight.grad.abs().sum()) > 0
    # second derivatives are right: gradgradcheck the penalty path on a small layer in eval
    layer = spectral_norm(nn.Linear(3, 2).double()).eval()

    def f(w: Tensor, inp: Tensor) -> Tensor:
        out: Tensor = torch.func.functional_call(layer, {"module.weight": w}, (inp,))
        return out.tanh()

    assert isinstance(layer.module, nn.Linear)
    w = layer.module.weight.detach().clone().requires_grad_()
    inp = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(f, (w, inp))


def test_bf16_autocast_keeps_u_v_float32() -> None:
    model = _disc()
    x = torch.randn(2, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
    assert y.dtype == torch.bfloat16
    for layer in _sn_layers(model):
        assert layer.u.dtype == torch.float32
        assert layer.v.dtype == torch.float32
        assert layer.sigma.dtype == torch.float32
    y.float().sum().backward()
    # the power iteration ran in float32: one autocast step equals one float32 step
    ref = copy.deepcopy(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(x)
    ref(x)
    for ours, theirs in zip(_sn_layers(model), _sn_layers(ref), strict=True):
        torch.testing.assert_close(ours.u, theirs.u)
    # a bf16 model: u, v follow .to() but the iteration still runs in float32
    half = spectral_norm(nn.Linear(4, 3)).to(torch.bfloat16)
    out = half(torch.randn(2, 4, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(out).all()


def test_remove_spectral_norm_exports_to_onnx(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from gentorch.export.onnx import export_onnx, verify_onnx

    model = _disc().eval()
    x = torch.randn(2, 3, 8, 8)
    expected = model(x)
    plain = remove_spectral_norm(model)
    path = export_onnx(plain, (x,), tmp_path / "disc.onnx")
    verify_onnx(plain, path, (torch.randn(3, 3, 8, 8),))
    torch.testing.assert_close(plain(x), expected)


def test_torch_export_in_eval_mode() -> None:
    # torch.export (the successor of TorchScript) captures the wrapper itself for inference.
    model = _disc().eval()
    x = torch.randn(2, 3, 8, 8)
    program = torch.export.export(model, (x,))
    other = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(program.module()(other), model(other))
