"""Closed-form Gaussian KLs against torch.distributions and brute force."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Normal, kl_divergence

from gentorch.losses import gaussian_kl, gaussian_kl_between, gaussian_kl_free_bits
from gentorch.losses.kl import Reduction


def _normal(mu: torch.Tensor, logvar: torch.Tensor) -> Normal:
    return Normal(mu, torch.exp(0.5 * logvar))


def test_gaussian_kl_matches_torch_distributions_elementwise() -> None:
    mu, logvar = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    expected = kl_divergence(_normal(mu, logvar), Normal(0.0, 1.0))
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)


def test_gaussian_kl_reductions() -> None:
    mu, logvar = torch.randn(4, 3, 2), torch.randn(4, 3, 2)
    kl = gaussian_kl(mu, logvar)
    assert kl.shape == (4, 3, 2)
    torch.testing.assert_close(gaussian_kl(mu, logvar, reduction="sum"), kl.sum())
    torch.testing.assert_close(gaussian_kl(mu, logvar, reduction="mean"), kl.mean())
    torch.testing.assert_close(gaussian_kl(mu, logvar, reduction="batchmean"), kl.sum() / 4)


def test_gaussian_kl_is_zero_at_the_prior_and_precise_near_it() -> None:
    assert gaussian_kl(torch.zeros(3, 2), torch.zeros(3, 2), reduction="sum").item() == 0.0
    # Near the prior KL ~ lv^2 / 4; exp(lv) - 1 - lv in float32 would lose every digit at 1e-4.
    lv = torch.full((1,), 1e-4)
    torch.testing.assert_close(
        gaussian_kl(torch.zeros(1), lv), torch.tensor([0.25e-8]), rtol=1e-3, atol=0
    )


def test_gaussian_kl_gradient_matches_closed_form() -> None:
    mu = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    gaussian_kl(mu, logvar, reduction="sum").backward()
    # dKL/dmu = mu, dKL/dlogvar = 0.5 * (exp(logvar) - 1)
    torch.testing.assert_close(mu.grad, mu.detach())
    torch.testing.assert_close(logvar.grad, 0.5 * torch.expm1(logvar.detach()))


def test_gaussian_kl_between_matches_torch_distributions_with_broadcast_prior() -> None:
    mu_q, lv_q = torch.randn(7, 4, dtype=torch.float64), torch.randn(7, 4, dtype=torch.float64)
    mu_p, lv_p = torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    expected = kl_divergence(_normal(mu_q, lv_q), _normal(mu_p, lv_p))
    got = gaussian_kl_between(mu_q, lv_q, mu_p, lv_p)
    assert got.shape == (7, 4)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(
        gaussian_kl_between(mu_q, lv_q, mu_p, lv_p, reduction="batchmean"), expected.sum() / 7
    )


def test_gaussian_kl_between_with_standard_prior_equals_gaussian_kl() -> None:
    mu, logvar = torch.randn(3, 5), torch.randn(3, 5)
    zeros = torch.zeros(5)
    torch.testing.assert_close(
        gaussian_kl_between(mu, logvar, zeros, zeros), gaussian_kl(mu, logvar)
    )


def test_free_bits_floors_each_dimension_and_zeroes_its_gradient() -> None:
    # Dimension 0 carries a lot of KL, dimension 1 is at the prior (KL = 0 < free_bits).
    mu = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [2.0, 0.0]], requires_grad=True)
    logvar = torch.zeros(3, 2, requires_grad=True)
    per_dim = gaussian_kl_free_bits(mu, logvar, 0.5, reduction="none")
    torch.testing.assert_close(per_dim, torch.tensor([2.0, 0.5]))  # 0.5 * mu^2 = 2
    gaussian_kl_free_bits(mu, logvar, 0.5).backward()  # batchmean: sum_j max(0.5, KL_j)
    # d/dmu_i0 of mean_i 0.5 mu_i0^2 = mu_i0 / 3; nothing for the floored dimension
    assert mu.grad is not None
    assert logvar.grad is not None
    torch.testing.assert_close(mu.grad[:, 0], mu.detach()[:, 0] / 3)
    assert torch.count_nonzero(mu.grad[:, 1]) == 0
    assert torch.count_nonzero(logvar.grad[:, 1]) == 0


@pytest.mark.parametrize("reduction", ["sum", "mean", "batchmean"])
def test_free_bits_zero_equals_gaussian_kl(reduction: Reduction) -> None:
    mu, logvar = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    torch.testing.assert_close(
        gaussian_kl_free_bits(mu, logvar, 0.0, reduction=reduction),
        gaussian_kl(mu, logvar, reduction=reduction),
    )


def test_free_bits_value_is_the_floor_when_every_dimension_is_below_it() -> None:
    mu, logvar = torch.zeros(10, 4), torch.zeros(10, 4)
    assert gaussian_kl_free_bits(mu, logvar, 0.25).item() == pytest.approx(1.0)
    assert gaussian_kl_free_bits(mu, logvar, 0.25, reduction="sum").item() == pytest.approx(10.0)


def test_bad_arguments_are_named() -> None:
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"mu and logvar.*\(2, 3\).*\(2, 4\)"):
        gaussian_kl(x, torch.zeros(2, 4))
    with pytest.raises(TypeError, match=r"logvar.*int64"):
        gaussian_kl(x, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"reduction.*'avg'"):
        gaussian_kl(x, x, reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not broadcast"):
        gaussian_kl_between(x, x, torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match=r"free_bits.*-1"):
        gaussian_kl_free_bits(x, x, -1.0)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    mu_q=st.floats(-20, 20),
    lv_q=st.floats(-20, 20),
    mu_p=st.floats(-20, 20),
    lv_p=st.floats(-20, 20),
)
def test_kl_between_is_nonnegative_zero_at_equality_positive_otherwise(
    mu_q: float, lv_q: float, mu_p: float, lv_p: float
) -> None:
    def t(v: float) -> torch.Tensor:
        return torch.tensor([v], dtype=torch.float64)

    kl = gaussian_kl_between(t(mu_q), t(lv_q), t(mu_p), t(lv_p)).item()
    assert kl >= 0.0
    assert gaussian_kl_between(t(mu_q), t(lv_q), t(mu_q), t(lv_q)).item() == 0.0
    # Distinct laws give a positive KL: ~d^2/4 for a log-variance gap d (expm1 keeps this from
    # cancelling to 0 for small d), ~dmu^2 exp(-lv_p)/2 for a mean gap; both stay far above the
    # float64 underflow for gaps > 1e-6 (smaller gaps may underflow to exactly 0).
    if abs(mu_q - mu_p) > 1e-6 or abs(lv_q - lv_p) > 1e-6:
        assert kl > 0.0
