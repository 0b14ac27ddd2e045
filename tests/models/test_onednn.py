"""The oneDNN inference path of the VAEs' MLPs: same results as ``nn.Sequential``, and taken
only where it cannot change what a call means."""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd import forward_ad

from gentorch.models import VAE, ConditionalVAE, _onednn

pytestmark = pytest.mark.skipif(
    _onednn._LINEAR_POINTWISE is None or not torch.backends.mkldnn.is_available(),
    reason="this torch build has no oneDNN linear op",
)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Records the input shape of every oneDNN call (and still makes it)."""
    real = _onednn._LINEAR_POINTWISE
    assert real is not None
    seen: list[tuple[int, ...]] = []

    def counting(x: Tensor, *args: Any) -> Tensor:
        seen.append(tuple(x.shape))
        return real(x, *args)

    monkeypatch.setattr(_onednn, "_LINEAR_POINTWISE", counting)
    return seen


@contextlib.contextmanager
def _onednn_disabled() -> Iterator[None]:
    """``torch.backends.mkldnn.enabled = False`` for the block (``mkldnn.flags()`` would do the
    same, with a warning about Intel GPUs)."""
    torch.backends.mkldnn.enabled = False  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = True  # type: ignore[assignment]


def _mlp(*layers: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(*layers)


def _float64_copy(mlp: nn.Module) -> nn.Module:
    """The same network in float64: the reference both float32 paths are measured against."""
    return copy.deepcopy(mlp).double()


# --------------------------------------------------------------------------- same results
@pytest.mark.parametrize("shape", [(2048, 20), (1667, 3, 20), (7, 300, 20)])
def test_decoder_matches_the_module_in_float32(
    shape: tuple[int, ...], calls: list[tuple[int, ...]]
) -> None:
    mlp = _mlp(nn.Linear(20, 400), nn.ReLU(), nn.Linear(400, 784))
    x = torch.randn(shape)
    with torch.no_grad():
        ours, plain = _onednn.run_mlp(mlp, x), mlp(x)
        exact = _float64_copy(mlp)(x.double())
    assert len(calls) == 2  # the ReLU is fused into the first call
    assert ours.shape == plain.shape == (*shape[:-1], 784)
    # float32 GEMMs with K = 400 and |terms| ~ 0.1: both paths are within ~1e-6 of float64,
    # and a bound of 2e-5 catches any wrong term (a missing ReLU or bias is ~0.1)
    assert (ours.double() - exact).abs().max() < 2e-5
    assert (plain.double() - exact).abs().max() < 2e-5


def test_relu_is_exact_and_other_activations_run_as_modules(
    calls: list[tuple[int, ...]],
) -> None:
    mlp = _mlp(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.Tanh(), nn.Linear(128, 32))
    x = torch.randn(512, 64)
    with torch.no_grad():
        ours = _onednn.run_mlp(mlp, x)
        hidden = _onednn.run_mlp(mlp[:2], x)
        exact = _float64_copy(mlp)(x.double())
    assert len(calls) == 3 + 1
    assert bool((hidden >= 0).all())
    assert bool((hidden == 0).any())
    assert (ours.double() - exact).abs().max() < 1e-5


def test_linear_without_bias(calls: list[tuple[int, ...]]) -> None:
    torch.manual_seed(0)
    layer = nn.Linear(100, 200, bias=False)
    mlp = nn.Sequential(layer)
    x = torch.randn(256, 100)
    with torch.no_grad():
        ours = _onednn.run_mlp(mlp, x)
    assert calls == [(256, 100)]
    torch.testing.assert_close(ours, F.linear(x, layer.weight), rtol=1e-5, atol=1e-5)


def test_non_contiguous_input(calls: list[tuple[int, ...]]) -> None:
    mlp = _mlp(nn.Linear(50, 300), nn.ReLU(), nn.Linear(300, 40))
    x = torch.randn(50, 512).T  # (512, 50), column-major
    with torch.no_grad():
        ours, plain = _onednn.run_mlp(mlp, x), mlp(x)
    assert len(calls) == 2
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-5)


def test_vae_likelihood_terms_agree_with_float64(calls: list[tuple[int, ...]]) -> None:
    """What the IWAE benchmark times: ``log p(x | z)`` of a 784-400-20 VAE for 1000 draws of
    ``z`` (and the encoder on 256 points), oneDNN float32 against the same model in float64
    (which takes the plain path) at the same ``z``."""
    torch.manual_seed(0)
    model = VAE(784, [400], 20).eval()
    x = (torch.rand(256, 784) < 0.3).float()
    z = torch.randn(1000, 2, 20)
    exact_model = copy.deepcopy(model).double()
    with torch.no_grad():
        mu, logvar = model.encode(x)
        mu64, logvar64 = exact_model.encode(x.double())
        log_px_z = model._log_likelihood(model.decode(z), x[:2])
        log_px_z64 = exact_model._log_likelihood(exact_model.decode(z.double()), x[:2].double())
    assert [shape[0] for shape in calls] == [256, 256, 1000, 1000]
    assert (mu.double() - mu64).abs().max() < 1e-5
    assert (logvar.double() - logvar64).abs().max() < 1e-5
    # |log p(x|z)| ~ 550 nats; float32 resolution there is 6e-5, and a 784-term float32 sum
    # accumulates ~sqrt(784) roundings of ~3e-5 each: 1e-2 nats is 10x that, and a single
    # wrong logit (a missing bias or ReLU term, ~0.1) moves the sum by more
    assert log_px_z.dtype == torch.float32
    assert (log_px_z.double() - log_px_z64).abs().max() < 1e-2


def test_conditional_vae_decoder(calls: list[tuple[int, ...]]) -> None:
    torch.manual_seed(0)
    model = ConditionalVAE(784, [256], 8, num_classes=10).eval()
    z, y = torch.randn(500, 4, 8), torch.randint(0, 10, (4,))
    with torch.no_grad():
        ours = model.decode(z, y)
    assert calls  # the decoder ran on oneDNN
    with _onednn_disabled(), torch.no_grad():
        plain = model.decode(z, y)
    torch.testing.assert_close(ours, plain, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- when it is not taken
def _big() -> tuple[nn.Sequential, Tensor]:
    return _mlp(nn.Linear(20, 400), nn.ReLU(), nn.Linear(400, 784)), torch.randn(256, 20)


# --------------------------------------------------------------------------- with autograd
def _grads(mlp: nn.Module, x: Tensor, run: Callable[[nn.Module, Tensor], Tensor]) -> list[Tensor]:
    """Gradients of a fixed scalar of ``run(mlp, x)`` w.r.t. ``x`` and every parameter."""
    mlp.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_(True)
    out = run(mlp, x)
    weights = torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)
    (out.square() * weights).sum().backward()
    assert x.grad is not None
    return [x.grad, *(p.grad for p in mlp.parameters() if p.grad is not None)]


@pytest.mark.parametrize("shape", [(300, 50), (40, 8, 50)])
def test_gradients_match_float64(shape: tuple[int, ...], calls: list[tuple[int, ...]]) -> None:
    mlp = _mlp(nn.Linear(50, 400), nn.ReLU(), nn.Linear(400, 200), nn.Tanh(), nn.Linear(200, 30))
    x = torch.randn(shape)
    ours = _grads(mlp, x, _onednn.run_mlp)
    exact = _grads(_float64_copy(mlp), x.double(), lambda m, t: m(t))
    # forward: 3 layers; backward: an input and a weight gradient for each
    assert len(calls) == 3 + 6
    assert len(ours) == len(exact) == 1 + 6
    for got, want in zip(ours, exact, strict=True):
        # float32 GEMMs: relative error ~1e-6 of the largest entry; a wrong formula (a
        # transposed factor, a missing ReLU mask) is off by O(1) of it
        scale = want.abs().max()
        assert (got.double() - want).abs().max() <= 1e-5 * scale


def test_data_needs_no_input_gradient(calls: list[tuple[int, ...]]) -> None:
    mlp, x = _big()
    out = _onednn.run_mlp(mlp, x)
    assert out.requires_grad
    out.sum().backward()
    # 2 forward calls; backward: the weight gradient of both layers, the input gradient of the
    # second only (x does not require one)
    assert len(calls) == 2 + 3
    plain = copy.deepcopy(mlp)
    plain.zero_grad(set_to_none=True)
    plain(x).sum().backward()
    for ours, theirs in zip(mlp.parameters(), plain.parameters(), strict=True):
        assert ours.grad is not None
        assert theirs.grad is not None
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_float64(relu: bool, bias: bool) -> None:
    """The autograd function's formulas, first and second order, in float64 (which runs them
    with torch's GEMM: the formulas are the same code)."""
    torch.manual_seed(0)
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True) if bias else None

    def f(x: Tensor, weight: Tensor, *rest: Tensor) -> Tensor:
        out: Tensor = _onednn._LinearFunction.apply(x, weight, rest[0] if rest else None, relu)
        return out

    inputs = (x, weight, b) if b is not None else (x, weight)
    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)


def test_double_backward_in_float32(calls: list[tuple[int, ...]]) -> None:
    """A gradient penalty (create_graph=True) through the oneDNN forward: the backward then
    uses differentiable torch ops, and the second-order gradients match the module's."""
    mlp = _mlp(nn.Linear(20, 300), nn.ReLU(), nn.Linear(300, 10))
    x = torch.randn(256, 20)

    def penalty_grads(
        run: Callable[[nn.Module, Tensor], Tensor], module: nn.Module
    ) -> list[Tensor]:
        module.zero_grad(set_to_none=True)
        xs = x.detach().double() if module is not mlp else x.detach()
        xs.requires_grad_(True)
        (grad_x,) = torch.autograd.grad(run(module, xs).square().sum(), xs, create_graph=True)
        grad_x.square().sum().backward()
        return [p.grad for p in module.parameters() if p.grad is not None]

    ours = penalty_grads(_onednn.run_mlp, mlp)
    assert calls  # the forward ran on oneDNN
    exact = penalty_grads(lambda m, t: m(t), _float64_copy(mlp))
    assert len(ours) == len(exact) == 4
    for got, want in zip(ours, exact, strict=True):
        assert (got.double() - want).abs().max() <= 1e-4 * want.abs().max()


def test_vae_training_gradients_match_the_plain_path(calls: list[tuple[int, ...]]) -> None:
    torch.manual_seed(0)
    model = VAE(784, [400], 20)
    x = (torch.rand(256, 784) < 0.3).float()

    def loss_grads() -> list[Tensor]:
        model.zero_grad(set_to_none=True)
        model.loss(x, generator=torch.Generator().manual_seed(0))["loss"].backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    ours = loss_grads()
    assert calls
    with _onednn_disabled():
        plain = loss_grads()
    assert len(ours) == len(plain) == 8
    for got, want in zip(ours, plain, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4 * float(want.abs().max()))


def test_taken_in_inference_mode(calls: list[tuple[int, ...]]) -> None:
    mlp, x = _big()
    with torch.inference_mode():
        _onednn.run_mlp(mlp, x)
    assert len(calls) == 2


@pytest.mark.parametrize(
    "context",
    [
        pytest.param(_onednn_disabled, id="mkldnn-disabled"),
        pytest.param(lambda: torch.autocast("cpu", dtype=torch.bfloat16), id="autocast"),
        pytest.param(forward_ad.dual_level, id="forward-ad"),
    ],
)
def test_not_taken_under(context: Callable[[], Any], calls: list[tuple[int, ...]]) -> None:
    mlp, x = _big()
    with torch.no_grad(), context():
        out = _onednn.run_mlp(mlp, x)
    assert calls == []
    with torch.no_grad(), context():
        assert torch.equal(out, mlp(x))


def test_not_taken_while_tracing(calls: list[tuple[int, ...]]) -> None:
    """A trace (the TorchScript ONNX exporter's, too) must record ``aten::linear``."""

    class Wrapper(nn.Module):
        def __init__(self, mlp: nn.Sequential) -> None:
            super().__init__()
            self.mlp = mlp

        def forward(self, inputs: Tensor) -> Tensor:
            return _onednn.run_mlp(self.mlp, inputs)

    mlp, x = _big()
    with torch.no_grad():
        traced = torch.jit.trace(Wrapper(mlp), x, check_trace=False)  # no eager re-run
    assert calls == []
    graph = str(traced.inlined_graph)
    assert "aten::linear" in graph
    assert "mkldnn" not in graph


def test_forward_ad_tangents_still_flow(calls: list[tuple[int, ...]]) -> None:
    mlp, x = _big()
    tangent = torch.randn_like(x)
    with torch.no_grad(), forward_ad.dual_level():
        out = _onednn.run_mlp(mlp, forward_ad.make_dual(x, tangent))
        jvp = forward_ad.unpack_dual(out).tangent
    assert calls == []
    assert jvp is not None
    assert jvp.shape == (256, 784)


def test_not_taken_under_vmap(calls: list[tuple[int, ...]]) -> None:
    mlp, x = _big()
    with torch.no_grad():
        out = torch.func.vmap(lambda row: _onednn.run_mlp(mlp, row))(x)
        expected = mlp(x)
    assert calls == []
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_not_taken_for_other_dtypes(dtype: torch.dtype, calls: list[tuple[int, ...]]) -> None:
    mlp, x = _big()
    mlp = mlp.to(dtype)
    with torch.no_grad():
        out = _onednn.run_mlp(mlp, x.to(dtype))
    assert calls == []
    assert out.dtype == dtype


def test_hooks_are_called(calls: list[tuple[int, ...]]) -> None:
    mlp, x = _big()
    seen: list[tuple[int, ...]] = []
    handle = mlp[2].register_forward_hook(lambda m, args, out: seen.append(tuple(out.shape)))
    with torch.no_grad():
        _onednn.run_mlp(mlp, x)
    # the hooked layer runs as a module; the one before it still on oneDNN, its ReLU fused
    assert seen == [(256, 784)]
    assert calls == [(256, 20)]
    handle.remove()
    on_mlp = mlp.register_forward_pre_hook(lambda m, args: seen.append((-1,)))
    with torch.no_grad():
        _onednn.run_mlp(mlp, x)
    assert seen[-1] == (-1,)
    assert len(calls) == 1
    on_mlp.remove()
    global_hook = nn.modules.module.register_module_forward_hook(lambda m, a, o: None)
    try:
        with torch.no_grad():
            _onednn.run_mlp(mlp, x)
        assert len(calls) == 1
    finally:
        global_hook.remove()


def test_linear_subclasses_and_other_modules_run_as_modules(
    calls: list[tuple[int, ...]],
) -> None:
    class Scaled(nn.Linear):
        def forward(self, x: Tensor) -> Tensor:
            return 2 * super().forward(x)

    mlp = _mlp(Scaled(20, 400), nn.ReLU(), nn.Linear(400, 784))
    x = torch.randn(256, 20)
    with torch.no_grad():
        ours = _onednn.run_mlp(mlp, x)
        expected = mlp(x)
    assert calls == [(256, 400)]  # only the plain Linear
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    not_sequential = nn.Linear(20, 400)
    with torch.no_grad():
        _onednn.run_mlp(not_sequential, x)
    assert len(calls) == 1


def test_small_calls_stay_on_the_default_path(calls: list[tuple[int, ...]]) -> None:
    """Below ~128 rows and ~4M multiply-adds oneDNN's fixed cost per call loses."""
    mlp = _mlp(nn.Linear(20, 400), nn.ReLU(), nn.Linear(400, 784))
    with torch.no_grad():
        _onednn.run_mlp(mlp, torch.randn(8, 20))  # 64k and 2.5M multiply-adds
    assert calls == []
    with torch.no_grad():
        _onednn.run_mlp(mlp, torch.randn(16, 20))  # the second layer: 5M
    assert calls == [(16, 400)]
    assert math.prod((16, 400, 784)) >= _onednn._MIN_MACS > math.prod((8, 400, 784))


def test_errors_are_the_modules_own() -> None:
    mlp, _ = _big()
    with torch.no_grad(), pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        _onednn.run_mlp(mlp, torch.randn(256, 21))
    empty = torch.empty(0, 20)
    with torch.no_grad():
        assert _onednn.run_mlp(mlp, empty).shape == (0, 784)
