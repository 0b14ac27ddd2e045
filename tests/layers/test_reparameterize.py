"""Reparameterize / reparameterize: values, gradients, shapes, clamp, errors, diagnostics."""

from __future__ import annotations

import doctest
import importlib
import math
import weakref
from typing import Any

import numpy as np
import pytest
import torch
from scipy import stats
from torch.autograd import gradcheck, gradgradcheck

from gentorch.layers import (
    LOGVAR_RANGE,
    GumbelSoftmax,
    LearnableNormal,
    RelaxedBernoulli,
    Reparameterize,
    ReparameterizeFullCov,
    ReparameterizeLaplace,
    ReparameterizeLogistic,
    reparameterize,
)
from gentorch.losses import gaussian_kl

# the module (the package's name `reparameterize` is the function)
reparam_module = importlib.import_module("gentorch.layers.reparameterize")


def _gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _eps(shape: tuple[int, ...], seed: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The noise reparameterize draws with generator _gen(seed)."""
    return torch.randn(shape, generator=_gen(seed), dtype=dtype)


def _pair(*shape: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    mu = torch.randn(*shape, dtype=dtype, requires_grad=True)
    logvar = torch.randn(*shape, dtype=dtype, requires_grad=True)
    return mu, logvar


# --- values and exact gradients -------------------------------------------------------------


@pytest.mark.parametrize("n_samples", [None, 3])
def test_value_is_mu_plus_sigma_eps_with_the_generators_noise(n_samples: int | None) -> None:
    mu, logvar = _pair(4, 5)
    z = reparameterize(mu, logvar, n_samples=n_samples, generator=_gen())
    shape = (4, 5) if n_samples is None else (3, 4, 5)
    eps = _eps(shape, dtype=torch.float64)
    assert z.shape == shape
    torch.testing.assert_close(z, mu + torch.exp(0.5 * logvar) * eps)


@pytest.mark.parametrize("n_samples", [None, 3])
def test_value_is_bit_for_bit_the_plain_formula_with_the_same_noise(
    n_samples: int | None,
) -> None:
    # The layer draws 0.5 * eps and adds 2 * h (h = 0.5 * sigma * eps): scalings by powers of
    # two are exact, so float32 z equals the plain formula's exactly, not just closely.
    mu = torch.randn(64, 7) * 3
    logvar = torch.randn(64, 7) * 4
    z = reparameterize(mu, logvar, n_samples=n_samples, generator=_gen())
    shape = (64, 7) if n_samples is None else (3, 64, 7)
    eps = _eps(shape, dtype=torch.float32)
    assert torch.equal(z, mu + torch.exp(0.5 * logvar.clamp(*LOGVAR_RANGE)) * eps)


@pytest.mark.parametrize("n_samples", [None, 3])
def test_backward_is_g_and_half_g_eps_sigma_summed_over_samples(n_samples: int | None) -> None:
    mu, logvar = _pair(4, 5)
    z = reparameterize(mu, logvar, n_samples=n_samples, generator=_gen())
    g = torch.randn_like(z)
    z.backward(g)
    eps = _eps(tuple(z.shape), dtype=torch.float64)
    sigma = torch.exp(0.5 * logvar.detach())
    lead = () if n_samples is None else (0,)
    torch.testing.assert_close(mu.grad, g.sum(lead) if lead else g)
    expected = 0.5 * g * eps * sigma
    torch.testing.assert_close(logvar.grad, expected.sum(lead) if lead else expected)


@pytest.mark.parametrize("n_samples", [None, 2])
def test_gradcheck_and_gradgradcheck_float64(n_samples: int | None) -> None:
    mu, logvar = _pair(3, 4)

    def f(m: torch.Tensor, lv: torch.Tensor) -> torch.Tensor:
        return reparameterize(m, lv, n_samples=n_samples, generator=_gen())

    assert gradcheck(f, (mu, logvar))
    assert gradgradcheck(f, (mu, logvar))


def test_gradcheck_through_the_module_with_the_concatenated_layout() -> None:
    layer = Reparameterize()
    x = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: layer(t, generator=_gen()), (x,))
    assert gradgradcheck(lambda t: layer(t, generator=_gen()), (x,))


def test_gradient_penalty_matches_the_plain_formula() -> None:
    # A double-backward use: || d(sum z^3)/d(mu, logvar) ||^2 differentiated again.
    mu, logvar = _pair(4, 3)
    eps = _eps((4, 3), dtype=torch.float64)

    def penalty(z: torch.Tensor) -> torch.Tensor:
        gm, gl = torch.autograd.grad(z.pow(3).sum(), (mu, logvar), create_graph=True)
        return gm.square().sum() + gl.square().sum()

    ours = torch.autograd.grad(penalty(reparameterize(mu, logvar, generator=_gen())), (mu, logvar))
    plain = torch.autograd.grad(penalty(mu + torch.exp(0.5 * logvar) * eps), (mu, logvar))
    for a, b in zip(ours, plain, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("n_samples", [None, 3])
def test_direct_apply_matches_function_apply(
    monkeypatch: pytest.MonkeyPatch, n_samples: int | None
) -> None:
    # Eager calls use the C entry point of Function.apply; without the private helper it
    # relies on, the public Function.apply runs: both give the same values and gradients.
    results = []
    for public in (False, True):
        if public:
            monkeypatch.setattr(reparam_module, "_unwrap_if_dead", None)
        mu = _eps((3, 4), seed=10, dtype=torch.float64).requires_grad_()
        logvar = _eps((3, 4), seed=11, dtype=torch.float64).requires_grad_()
        z = reparameterize(mu, logvar, n_samples=n_samples, generator=_gen())
        z.pow(2).sum().backward()
        results.append((z.detach(), mu.grad, logvar.grad))
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


def test_saves_one_tensor_of_the_shape_of_z_for_backward() -> None:
    mu, logvar = _pair(6, 4, dtype=torch.float32)
    for k, shape in ((None, (6, 4)), (5, (5, 6, 4))):
        saved: list[torch.Size] = []

        def pack(t: torch.Tensor, saved: list[torch.Size] = saved) -> torch.Tensor:
            saved.append(t.shape)
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            z = reparameterize(mu, logvar, n_samples=k)
        assert saved == [torch.Size(shape)]
        z.sum().backward()


def test_pathwise_gradient_of_expected_square_matches_closed_form() -> None:
    # E[z^2] = mu^2 + exp(logvar): d/dmu = 2 mu, d/dlogvar = exp(logvar).
    mu = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([0.2, -0.7], dtype=torch.float64, requires_grad=True)
    k = 200_000
    reparameterize(mu, logvar, n_samples=k, generator=_gen(3)).square().mean(0).sum().backward()
    # Monte Carlo std of d/dmu is 2*sigma/sqrt(K) <= 0.005 and of d/dlogvar is
    # sigma^2*sqrt(2)/sqrt(K) <= 0.004; 0.02 is more than 4 standard deviations.
    torch.testing.assert_close(mu.grad, 2 * mu.detach(), atol=0.02, rtol=0)
    torch.testing.assert_close(logvar.grad, torch.exp(logvar.detach()), atol=0.02, rtol=0)


def test_samples_follow_the_gaussian_ks() -> None:
    mu, logvar = torch.tensor([1.5]), torch.tensor([math.log(4.0)])
    z = reparameterize(mu, logvar, n_samples=5000, generator=_gen(7)).flatten()
    # With a fixed seed the p-value is deterministic; 1e-3 rejects only a clearly wrong law
    # (a uniform eps, or sigma = exp(logvar), gives p < 1e-20 at this sample size).
    assert stats.kstest(z.numpy(), stats.norm(loc=1.5, scale=2.0).cdf).pvalue > 1e-3


# --- the logvar clamp ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_extreme_logvar_never_overflows(dtype: torch.dtype) -> None:
    mu = torch.zeros(2, 3, dtype=dtype)
    logvar = torch.tensor([[1e4, 88.0, 11.0], [-1e4, -200.0, -30.0]], dtype=dtype)
    z = reparameterize(mu, logvar, generator=_gen())
    assert z.dtype == dtype
    assert torch.isfinite(z).all()
    _lo, hi = LOGVAR_RANGE
    assert math.exp(hi) < 65504  # float16 max


def test_gradient_at_the_clamp_is_straight_through() -> None:
    mu = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([50.0, 11.0, -80.0], dtype=torch.float64, requires_grad=True)
    z = reparameterize(mu, logvar, generator=_gen())
    z.sum().backward()
    eps = _eps((3,), dtype=torch.float64)
    sigma = torch.exp(0.5 * logvar.detach().clamp(*LOGVAR_RANGE))
    torch.testing.assert_close(z.detach(), sigma * eps)
    # Not zero outside [lo, hi]: 0.5 * g * eps * sigma(clamped) everywhere.
    torch.testing.assert_close(logvar.grad, 0.5 * eps * sigma)
    assert logvar.grad is not None
    assert (logvar.grad != 0).all()


def test_custom_logvar_range() -> None:
    mu, logvar = torch.zeros(2), torch.tensor([5.0, -5.0])
    z = reparameterize(mu, logvar, generator=_gen(), logvar_range=(-1.0, 1.0))
    torch.testing.assert_close(z, torch.exp(torch.tensor([0.5, -0.5])) * _eps((2,)))


# --- the module ----------------------------------------------------------------------------


def test_module_has_no_parameters_and_accepts_both_layouts() -> None:
    layer = Reparameterize()
    assert list(layer.parameters()) == []
    mu, logvar = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    a = layer(torch.cat([mu, logvar], dim=-1), generator=_gen())
    b = layer((mu, logvar), generator=_gen())
    assert a.shape == (2, 3, 4)
    torch.testing.assert_close(a, b)


def test_training_samples_eval_follows_eval_mode() -> None:
    mu, logvar = torch.randn(5, 2), torch.zeros(5, 2)
    layer = Reparameterize()
    assert not torch.equal(layer((mu, logvar)), mu)
    layer.eval()
    assert torch.equal(layer((mu, logvar)), mu)
    out = layer((mu, logvar), n_samples=4)
    assert out.shape == (4, 5, 2)
    assert torch.equal(out, mu.expand(4, 5, 2))
    sampler = Reparameterize(eval_mode="sample").eval()
    torch.testing.assert_close(sampler((mu, logvar), generator=_gen()), mu + _eps((5, 2)))


def test_n_samples_default_and_override() -> None:
    layer = Reparameterize(n_samples=3)
    x = torch.randn(4, 6)
    assert layer(x).shape == (3, 4, 3)
    assert layer(x, n_samples=2).shape == (2, 4, 3)


def test_generator_makes_sampling_reproducible_and_noise_keeps_dtype() -> None:
    layer = Reparameterize()
    x = torch.randn(8, 4, dtype=torch.float64)
    assert torch.equal(layer(x, generator=_gen(5)), layer(x, generator=_gen(5)))
    assert not torch.equal(layer(x, generator=_gen(5)), layer(x, generator=_gen(6)))
    assert layer(x).dtype == torch.float64


@pytest.mark.parametrize(
    ("layer", "width"),
    [
        (Reparameterize(), 6),
        (ReparameterizeLaplace(), 6),
        (ReparameterizeLogistic(), 6),
        (ReparameterizeFullCov(), 9),
        (GumbelSoftmax(0.5, hard=True), 4),
        (RelaxedBernoulli(0.5, hard=True), 4),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, torch.nn.Module) else str(v),
)
def test_noise_and_gradients_stay_on_the_inputs_device(layer: torch.nn.Module, width: int) -> None:
    # "meta" tensors have no data: a hidden host round trip (.cpu(), .item(), a CPU-made noise
    # tensor mixed in) raises, so passing here shows everything is created on x's device.
    x = torch.randn(5, width, device="meta", requires_grad=True)
    for k in (None, 2):
        y = layer(x, n_samples=k)
        assert y.device.type == "meta"
        y.sum().backward()
        assert x.grad is not None
        assert x.grad.device.type == "meta"
    rv = LearnableNormal((3,)).to("meta")
    assert rv(n_samples=2).device.type == "meta"


def test_bad_input_raises_named_errors() -> None:
    layer = Reparameterize(check_finite=True)
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 2 \* L\).*\(4, 5\)"):
        layer(torch.zeros(4, 5))
    with pytest.raises(ValueError, match=r"mu and logvar.*\(4, 2\).*\(4, 3\)"):
        layer((torch.zeros(4, 2), torch.zeros(4, 3)))
    with pytest.raises(TypeError, match=r"x: expected a floating-point tensor.*int64"):
        layer(torch.zeros(4, 6, dtype=torch.long))
    with pytest.raises(TypeError, match=r"mu: expected a floating-point tensor.*int32"):
        reparameterize(torch.zeros(2, dtype=torch.int32), torch.zeros(2))
    bad = torch.zeros(4, 6)
    bad[1, 4] = float("nan")
    bad[2, 0] = float("inf")
    with pytest.raises(ValueError, match="logvar: expected finite values, got 1 NaN and 0 Inf"):
        layer(torch.cat([torch.zeros(4, 3), bad[:, 3:]], dim=-1))
    with pytest.raises(ValueError, match="mu: expected finite values, got 0 NaN and 1 Inf"):
        layer(bad)
    with pytest.raises(
        ValueError, match=r"n_samples: expected a positive integer \(or None\), got 0"
    ):
        layer(torch.zeros(2, 2), n_samples=0)
    with pytest.raises(TypeError, match=r"n_samples: expected a positive integer .*got bool True"):
        Reparameterize(n_samples=True)
    with pytest.raises(ValueError, match=r"eval_mode.*'median'"):
        Reparameterize(eval_mode="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="logvar_range"):
        Reparameterize(logvar_range=(3.0, -3.0))
    with pytest.raises(TypeError, match="pair"):
        layer((torch.zeros(2), torch.zeros(2), torch.zeros(2)))
    with pytest.raises(
        ValueError, match=r"mu and logvar.*torch\.float32 on cpu and torch\.float64"
    ):
        layer((torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.float64)))
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 2 \* L\).*got \(\)"):
        layer(torch.tensor(1.0))
    with pytest.raises(TypeError, match=r"logvar: expected a Tensor, got list"):
        reparameterize(torch.zeros(2), [0.0, 0.0])  # type: ignore[arg-type]


def test_nan_passes_silently_without_check_finite() -> None:
    z = Reparameterize()(torch.full((1, 2), float("nan")))
    assert torch.isnan(z).all()


# --- diagnostics ---------------------------------------------------------------------------


def test_diagnostics_match_gaussian_kl_and_count_active_units() -> None:
    torch.manual_seed(0)
    B = 256
    # Dimension 0 carries information (Var_x(mu) = 1); dimension 1 is collapsed
    # (Var_x(mu) ~ 1e-6); dimension 2 is weakly used (Var_x(mu) = 0.04 > 0.01).
    mu = torch.stack([torch.randn(B), 1e-3 * torch.randn(B), 0.2 * torch.randn(B)], dim=1)
    logvar = torch.randn(B, 3) * 0.3
    layer = Reparameterize(track_diagnostics=True)
    layer((mu.clone().requires_grad_(), logvar))
    d = layer.diagnostics()
    expected_kl = gaussian_kl(mu.detach(), logvar).mean(0)
    torch.testing.assert_close(d["kl_per_dim"], expected_kl)
    assert d["kl_total"] == pytest.approx(float(expected_kl.sum()), rel=1e-5)
    assert d["mean_abs_mu"] == pytest.approx(float(mu.abs().mean()), rel=1e-5)
    assert d["mean_sigma"] == pytest.approx(float(torch.exp(0.5 * logvar).mean()), rel=1e-5)
    assert d["active_units"] == 2
    assert d["n_rows"] == B


def test_diagnostics_against_brute_force_over_all_leading_dimensions() -> None:
    # (2, 64, 4) input: averages run over the 128 rows; logvar partly beyond the clamp.
    g = _gen(11)
    scales = torch.tensor([1.0, 0.05, 0.2, 0.08])  # Var_x(mu) ~ 1, 0.0025, 0.04, 0.0064
    mu = torch.randn(2, 64, 4, generator=g) * scales
    logvar = torch.randn(2, 64, 4, generator=g)
    logvar[0, 0, 0] = 40.0  # clamped to 11 in the diagnostics, as in the forward
    layer = Reparameterize(n_samples=3, track_diagnostics=True)
    assert layer(torch.cat([mu, logvar], dim=-1)).shape == (3, 2, 64, 4)
    d = layer.diagnostics()
    m = mu.reshape(-1, 4).double().numpy()
    lv = logvar.reshape(-1, 4).double().clamp(*LOGVAR_RANGE).numpy()
    kl = np.zeros(4)
    for row_mu, row_lv in zip(m, lv, strict=True):  # KL(N(m, e^lv) || N(0, 1)) row by row
        kl += [
            0.5 * (mj * mj + math.exp(lj) - 1.0 - lj) for mj, lj in zip(row_mu, row_lv, strict=True)
        ]
    kl /= len(m)
    assert isinstance(d["kl_per_dim"], torch.Tensor)
    torch.testing.assert_close(d["kl_per_dim"].double(), torch.from_numpy(kl), rtol=1e-5, atol=0)
    assert d["kl_total"] == pytest.approx(kl.sum(), rel=1e-5)
    assert d["mean_abs_mu"] == pytest.approx(np.abs(m).mean(), rel=1e-5)
    assert d["mean_sigma"] == pytest.approx(np.exp(lv / 2).mean(), rel=1e-5)
    var = m.var(axis=0)  # Var_x(E_q[z]) with the 1/N convention
    assert d["active_units"] == int((var > 0.01).sum())
    assert d["n_rows"] == 128
    assert d["active_units"] == 2  # the data were built with two units above 0.01


class _Marker:
    """An object held only by the autograd graph of _Tagged (through its ctx)."""


class _Tagged(torch.autograd.Function):
    """Identity whose graph node keeps ``marker`` alive for as long as the graph exists."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, marker: _Marker) -> torch.Tensor:
        ctx.marker = marker
        return x.clone()

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        return g, None


@pytest.mark.parametrize("layout", ["concat", "pair"])
def test_nothing_cached_keeps_the_autograd_graph_alive(layout: str) -> None:
    layer = Reparameterize(track_diagnostics=True)
    marker = _Marker()
    ref = weakref.ref(marker)
    x = _Tagged.apply(torch.randn(4, 6, requires_grad=True), marker)
    del marker
    z = layer(x if layout == "concat" else (x[:, :3], x[:, 3:]))
    z.sum().backward()
    assert ref() is not None  # x and z still hold the graph
    held = [x]  # control: an undetached reference does keep the graph (the check can fail)
    del x, z
    assert ref() is not None
    held.clear()
    assert ref() is None  # the layer's cached mu/logvar are detached: the graph is gone
    assert layer.diagnostics()["n_rows"] == 4
    assert all(t.grad_fn is None and not t.requires_grad for t in layer._last)


def test_reset_state_clears_diagnostics() -> None:
    layer = Reparameterize(track_diagnostics=True)
    layer((torch.randn(4, 2, requires_grad=True) * 2, torch.zeros(4, 2)))
    assert layer.diagnostics()["n_rows"] == 4
    layer.reset_state()
    with pytest.raises(RuntimeError, match="no forward pass recorded"):
        layer.diagnostics()
    layer(torch.zeros(3, 2))
    assert layer.diagnostics()["n_rows"] == 3
    untracked = Reparameterize(track_diagnostics=False)  # nothing recorded, nothing held
    untracked(torch.zeros(3, 2))
    assert untracked._last == []
    with pytest.raises(RuntimeError, match=r"track_diagnostics=False.*track_diagnostics=True"):
        untracked.diagnostics()
    untracked.track_diagnostics = True  # switched on later: records from the next forward
    untracked(torch.zeros(5, 2))
    assert untracked.diagnostics()["n_rows"] == 5


@pytest.mark.parametrize(
    "module",
    [
        "gentorch.layers.reparameterize",
        "gentorch.layers.distributions",
        "gentorch.layers.relaxed",
        "gentorch.losses.kl",
    ],
)
def test_docstring_examples_run_and_print_what_they_show(module: str) -> None:
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, extraglobs={"torch": torch}, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_the_default_layer_records_nothing_and_says_how_to_turn_the_record_on() -> None:
    # the record is opt-in instrumentation: a default layer holds no tensor between calls
    layer = Reparameterize()
    assert layer.track_diagnostics is False
    layer((torch.randn(4, 2, requires_grad=True), torch.zeros(4, 2)))
    assert layer._last == []
    assert "track_diagnostics=False" in repr(layer)
    with pytest.raises(RuntimeError, match=r"Reparameterize\(track_diagnostics=True\)"):
        layer.diagnostics()
