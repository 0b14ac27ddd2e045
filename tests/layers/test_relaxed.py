"""Gumbel-Softmax / Concrete and Relaxed Bernoulli: laws of the samples, gradients, hard mode.

Fixed seeds make every p-value deterministic; thresholds (1e-3) reject only a wrong law, and
each statistical test also checks that a slightly wrong law *is* rejected, so it can fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats
from torch.autograd import gradcheck, gradgradcheck

from gentorch.layers import GumbelSoftmax, RelaxedBernoulli

P_MIN = 1e-3

RelaxedCls = type[GumbelSoftmax] | type[RelaxedBernoulli]


def _gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gumbel_argmax_is_an_exact_categorical_sample_chi_square() -> None:
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4])
    n = 20_000
    y = GumbelSoftmax(temperature=0.7)(probs.log(), n_samples=n, generator=_gen(3))
    counts = torch.bincount(y.argmax(-1), minlength=4).numpy()
    assert stats.chisquare(counts, (n * probs).numpy()).pvalue > P_MIN
    wrong = torch.tensor([0.12, 0.2, 0.3, 0.38])
    assert stats.chisquare(counts, (n * wrong).numpy()).pvalue < P_MIN


def _binary_concrete_cdf(y: np.ndarray, logit: float, tau: float) -> np.ndarray:
    # y = sigmoid((logit + l) / tau), l ~ Logistic(0, 1): P(Y <= y) = sigmoid(tau logit(y) - logit)
    cdf: np.ndarray = special.expit(tau * special.logit(y) - logit)
    return cdf


def test_two_class_concrete_matches_its_exact_cdf_ks() -> None:
    # With two classes, y_0 = sigmoid((l_0 - l_1 + g_0 - g_1) / tau) and g_0 - g_1 ~ Logistic.
    logits = torch.tensor([0.8, -0.4], dtype=torch.float64)
    tau = 0.6
    y0 = GumbelSoftmax(tau)(logits, n_samples=5000, generator=_gen(5))[:, 0].numpy()
    delta = float(logits[0] - logits[1])
    assert stats.kstest(y0, lambda v: _binary_concrete_cdf(v, delta, tau)).pvalue > P_MIN
    assert stats.kstest(y0, lambda v: _binary_concrete_cdf(v, delta, 1.3 * tau)).pvalue < P_MIN


def test_relaxed_bernoulli_matches_its_exact_cdf_ks() -> None:
    logit, tau = -0.5, 0.4
    y = (
        RelaxedBernoulli(tau)(
            torch.tensor([logit], dtype=torch.float64), n_samples=5000, generator=_gen(6)
        )
        .flatten()
        .numpy()
    )
    assert stats.kstest(y, lambda v: _binary_concrete_cdf(v, logit, tau)).pvalue > P_MIN
    assert stats.kstest(y, lambda v: _binary_concrete_cdf(v, logit + 0.3, tau)).pvalue < P_MIN


def _exact_grad_of_expected_sigmoid(delta: float, tau: float) -> float:
    # d/d delta E[sigmoid((delta + l) / tau)] = E[sigmoid'((delta + l) / tau)] / tau,
    # integrated against the logistic density by quadrature.
    def integrand(l: float) -> float:
        s = special.expit((delta + l) / tau)
        density: float = s * (1 - s) / tau * stats.logistic.pdf(l)
        return density

    value: float
    err: float
    value, err = integrate.quad(integrand, -np.inf, np.inf)
    assert err < 1e-8
    return value


def test_relaxed_bernoulli_pathwise_gradient_matches_quadrature() -> None:
    logit, tau = 0.3, 0.8
    logits = torch.tensor([logit], dtype=torch.float64, requires_grad=True)
    RelaxedBernoulli(tau)(logits, n_samples=200_000, generator=_gen(7)).mean().backward()
    # per-sample gradient is bounded by 1 / (4 tau) = 0.31, so the MC std is < 7e-4;
    # atol 3e-3 is > 4 standard deviations.
    assert logits.grad is not None
    assert logits.grad.item() == pytest.approx(
        _exact_grad_of_expected_sigmoid(logit, tau), abs=3e-3
    )


def test_gumbel_softmax_pathwise_gradient_matches_quadrature() -> None:
    # Two classes: E[y_0] depends on delta = l_0 - l_1 only, so dE[y_0]/dl_0 = -dE[y_0]/dl_1.
    logits = torch.tensor([0.4, -0.2], dtype=torch.float64, requires_grad=True)
    tau = 0.8
    GumbelSoftmax(tau)(logits, n_samples=200_000, generator=_gen(8))[:, 0].mean().backward()
    exact = _exact_grad_of_expected_sigmoid(0.6, tau)
    torch.testing.assert_close(
        logits.grad, torch.tensor([exact, -exact], dtype=torch.float64), atol=3e-3, rtol=0
    )


@pytest.mark.parametrize("layer_cls", [GumbelSoftmax, RelaxedBernoulli])
def test_hard_mode_returns_exact_discrete_values_with_the_relaxed_gradient(
    layer_cls: RelaxedCls,
) -> None:
    logits = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    soft = layer_cls(0.5)(logits, generator=_gen())
    hard = layer_cls(0.5, hard=True)(logits, generator=_gen())
    assert set(hard.detach().unique().tolist()) <= {0.0, 1.0}
    if layer_cls is GumbelSoftmax:
        assert torch.equal(hard.detach().sum(-1), torch.ones(6, dtype=torch.float64))
        assert torch.equal(hard.detach().argmax(-1), soft.detach().argmax(-1))
    else:
        assert torch.equal(hard.detach(), (soft.detach() > 0.5).double())
    w = torch.randn(6, 5, dtype=torch.float64)
    (g_soft,) = torch.autograd.grad((soft * w).sum(), logits)
    (g_hard,) = torch.autograd.grad((hard * w).sum(), logits)
    torch.testing.assert_close(g_hard, g_soft)


@pytest.mark.parametrize("layer_cls", [GumbelSoftmax, RelaxedBernoulli])
def test_gradcheck_gradgradcheck_shapes_and_simplex(layer_cls: RelaxedCls) -> None:
    layer = layer_cls(0.7)
    logits = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: layer(t, n_samples=2, generator=_gen()), (logits,))
    assert gradgradcheck(lambda t: layer(t, generator=_gen()), (logits,))
    y = layer(logits.detach(), n_samples=5, generator=_gen(2))
    assert y.shape == (5, 3, 4)
    # Open interval in float64: y rounds to 0 or 1 only beyond |(logits + noise) / tau| ~ 37,
    # a noise draw of probability ~1e-10 per element (and the generator is fixed); float32
    # rounds to exactly 1.0 beyond ~16.6 (probability ~1e-5 per element), so [0, 1] there.
    assert ((y > 0) & (y < 1)).all()
    y32 = layer(logits.detach().float(), n_samples=5)
    assert y32.dtype == torch.float32
    assert ((y32 >= 0) & (y32 <= 1)).all()
    if layer_cls is GumbelSoftmax:
        torch.testing.assert_close(y.sum(-1), torch.ones(5, 3, dtype=torch.float64))
        torch.testing.assert_close(y32.sum(-1), torch.ones(5, 3))


def test_eval_modes() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    g = GumbelSoftmax().eval()
    torch.testing.assert_close(g(logits), torch.softmax(logits, -1))
    g.eval_mode = "mode"
    assert torch.equal(g(logits), torch.tensor([[1.0, 0.0, 0.0]]))
    b = RelaxedBernoulli(eval_mode="mode").eval()
    assert torch.equal(b(logits), torch.tensor([[1.0, 0.0, 1.0]]))
    b.eval_mode = "mean"
    torch.testing.assert_close(b(logits, n_samples=2), torch.sigmoid(logits).expand(2, 1, 3))
    s = RelaxedBernoulli(eval_mode="sample").eval()
    assert not torch.equal(s(logits), torch.sigmoid(logits))


def test_extreme_logits_and_low_temperature_stay_finite() -> None:
    logits = torch.tensor([[1e4, -1e4, 0.0]], dtype=torch.float16)
    for layer in (GumbelSoftmax(0.01), RelaxedBernoulli(0.01)):
        y = layer(logits, n_samples=500, generator=_gen())
        assert torch.isfinite(y).all()
        assert y.dtype == torch.float16


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match=r"temperature.*0\.0"):
        GumbelSoftmax(temperature=0.0)
    with pytest.raises(ValueError, match=r"temperature.*nan"):
        RelaxedBernoulli(temperature=math.nan)
    with pytest.raises(ValueError, match=r"eval_mode.*'max'"):
        GumbelSoftmax(eval_mode="max")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"logits.*int64"):
        GumbelSoftmax()(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"n_samples.*-1"):
        RelaxedBernoulli()(torch.zeros(2), n_samples=-1)
