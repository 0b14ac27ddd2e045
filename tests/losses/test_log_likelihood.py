"""Bernoulli and Gaussian log-likelihoods against torch.distributions and closed forms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal

from gentorch.losses import bernoulli_log_likelihood, gaussian_log_likelihood


def test_bernoulli_matches_torch_distributions_on_binary_data() -> None:
    logits = torch.randn(8, 20, dtype=torch.float64) * 3
    x = (torch.rand(8, 20, dtype=torch.float64) < 0.4).double()
    expected = Bernoulli(logits=logits).log_prob(x).sum(-1)
    got = bernoulli_log_likelihood(logits, x)
    assert got.shape == (8,)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_bernoulli_on_intensities_is_minus_summed_bce() -> None:
    # Grey-level targets: the book's "784 * BCE" (mean over pixels times 784) per example.
    logits = torch.randn(5, 784, dtype=torch.float64)
    x = torch.rand(5, 784, dtype=torch.float64)
    book = torch.stack(
        [784 * F.binary_cross_entropy(torch.sigmoid(logits[i]), x[i]) for i in range(5)]
    )
    torch.testing.assert_close(bernoulli_log_likelihood(logits, x), -book, rtol=1e-10, atol=1e-9)


def test_bernoulli_is_exact_for_extreme_logits() -> None:
    # sigmoid(+-200) saturates in float32; x*l - softplus(l) in float64 is the reference.
    logits = torch.tensor([[200.0, -200.0, 30.0, -30.0]])
    x = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    expected = (x.double() * logits.double() - F.softplus(logits.double())).sum(-1)
    got = bernoulli_log_likelihood(logits, x)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bernoulli_evaluation_path_equals_the_autograd_path(dtype: torch.dtype) -> None:
    # Without autograd the sum runs as softplus - x * l; with it, through the autograd function
    # with the same forward.
    g = torch.Generator().manual_seed(0)
    logits = torch.cat(
        [
            torch.randn(64, 50, generator=g) * 8,
            torch.tensor([[-90.0, -30, -20.5, 20.5, 30, 90]] * 64),
        ],
        dim=1,
    ).to(dtype)
    x = torch.rand(64, 56, generator=g, dtype=dtype)
    with torch.no_grad():
        fast = bernoulli_log_likelihood(logits, x)
    fused = bernoulli_log_likelihood(logits.clone().requires_grad_(), x).detach()
    exact = (x.double() * logits.double() - F.softplus(logits.double(), threshold=1e9)).sum(-1)
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(fast.double(), exact, rtol=tol, atol=0)
    torch.testing.assert_close(fused.double(), exact, rtol=tol, atol=0)


def test_bernoulli_broadcasts_samples_against_data() -> None:
    logits = torch.randn(7, 3, 10)  # K samples of a batch of 3
    x = torch.rand(3, 10)
    got = bernoulli_log_likelihood(logits, x)
    assert got.shape == (7, 3)
    for k in range(7):
        torch.testing.assert_close(got[k], bernoulli_log_likelihood(logits[k], x))


def test_bernoulli_gradcheck() -> None:
    logits = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    x = torch.rand(3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(bernoulli_log_likelihood, (logits, x))


@pytest.mark.parametrize("wrt", ["logits", "x", "both"])
def test_bernoulli_gradcheck_broadcast_and_second_order(wrt: str) -> None:
    """The custom backward, first and second order, with (K, B, D) logits against (B, D) data
    and large logits on both sides of softplus's threshold."""
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(4, 3, 6, generator=g, dtype=torch.float64) * 10).requires_grad_(
        wrt in ("logits", "both")
    )
    x = torch.rand(3, 6, generator=g, dtype=torch.float64).requires_grad_(wrt in ("x", "both"))
    assert torch.autograd.gradcheck(bernoulli_log_likelihood, (logits, x))
    assert torch.autograd.gradgradcheck(bernoulli_log_likelihood, (logits, x))


def test_bernoulli_gradients_equal_bce_with_logits_in_float32() -> None:
    """Against torch's own BCE-with-logits (its gradient is sigmoid(l) - x, summed over the
    broadcast samples for x)."""
    g = torch.Generator().manual_seed(1)
    logits = (torch.randn(5, 32, 100, generator=g) * 6).requires_grad_()
    x = torch.rand(32, 100, generator=g).requires_grad_()
    weights = torch.randn(5, 32, generator=g)
    (bernoulli_log_likelihood(logits, x) * weights).sum().backward()
    ours_logits, ours_x = logits.grad, x.grad
    logits.grad = x.grad = None
    bce = F.binary_cross_entropy_with_logits(logits, x.expand(5, 32, 100), reduction="none")
    (-bce.sum(-1) * weights).sum().backward()
    assert ours_logits is not None
    assert ours_x is not None
    torch.testing.assert_close(ours_logits, logits.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours_x, x.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["float", "scalar", "per_feature", "per_example"])
def test_gaussian_matches_torch_distributions_normal(kind: str) -> None:
    B, D = 6, 9
    mean = torch.randn(B, D, dtype=torch.float64)
    x = torch.randn(B, D, dtype=torch.float64)
    logvar: torch.Tensor | float
    if kind == "float":
        logvar = -1.3
        lv = torch.full((B, D), logvar, dtype=torch.float64)
    elif kind == "scalar":
        logvar = torch.tensor(0.7, dtype=torch.float64)
        lv = logvar.expand(B, D)
    elif kind == "per_feature":
        logvar = torch.randn(D, dtype=torch.float64)
        lv = logvar.expand(B, D)
    else:
        logvar = torch.randn(B, D, dtype=torch.float64)
        lv = logvar
    expected = Normal(mean, torch.exp(0.5 * lv)).log_prob(x).sum(-1)
    got = gaussian_log_likelihood(mean, x, logvar)
    assert got.shape == (B,)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-10)


def test_gaussian_default_is_unit_variance_mse() -> None:
    mean, x = torch.randn(4, 5), torch.randn(4, 5)
    # -1/2 ||x - m||^2 - D/2 log(2 pi)
    expected = -0.5 * (x - mean).square().sum(-1) - 2.5 * math.log(2 * math.pi)
    torch.testing.assert_close(gaussian_log_likelihood(mean, x), expected)


def test_gaussian_broadcasts_samples_against_data() -> None:
    mean = torch.randn(4, 3, 5, dtype=torch.float64)
    x = torch.randn(3, 5, dtype=torch.float64)
    got = gaussian_log_likelihood(mean, x, 0.5)
    expected = Normal(mean, math.exp(0.25)).log_prob(x).sum(-1)
    assert got.shape == (4, 3)
    torch.testing.assert_close(got, expected)


def test_gaussian_gradcheck() -> None:
    mean = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    x = torch.randn(3, 4, dtype=torch.float64)
    logvar = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gaussian_log_likelihood, (mean, x, logvar))


def test_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"logits and x: .* \(2, 5\) and \(2, 6\)"):
        bernoulli_log_likelihood(torch.zeros(2, 5), torch.zeros(2, 6))
    with pytest.raises(
        TypeError, match=r"x: expected a floating-point tensor, got dtype torch\.uint8"
    ):
        bernoulli_log_likelihood(torch.zeros(2, 5), torch.zeros(2, 5, dtype=torch.uint8))
    with pytest.raises(ValueError, match="logvar: expected a shape broadcastable to"):
        gaussian_log_likelihood(torch.zeros(2, 5), torch.zeros(2, 5), torch.zeros(3))
    with pytest.raises(ValueError, match="logvar: expected a finite number, got inf"):
        gaussian_log_likelihood(torch.zeros(2, 5), torch.zeros(2, 5), math.inf)
    with pytest.raises(TypeError, match="logvar: expected a Tensor or a float"):
        gaussian_log_likelihood(torch.zeros(2, 5), torch.zeros(2, 5), "1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mean: expected shape"):
        gaussian_log_likelihood(torch.tensor(0.0), torch.zeros(2, 5))
