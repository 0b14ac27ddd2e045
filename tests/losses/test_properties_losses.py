"""Property-based tests of the losses: KL divergences, free bits, GAN objectives, likelihoods.

Random shapes and values (hypothesis, derandomized for reproducible CI) against the closed
forms the docstrings promise, torch.distributions in float64, and exact algebraic identities.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor
from torch.distributions import Bernoulli, Normal, kl_divergence

from gentorch.losses import (
    bce_discriminator_loss,
    bce_generator_loss,
    bernoulli_log_likelihood,
    gaussian_kl,
    gaussian_kl_between,
    gaussian_kl_free_bits,
    gaussian_log_likelihood,
    gradient_penalty,
    hinge_discriminator_loss,
    hinge_generator_loss,
    wasserstein_discriminator_loss,
    wasserstein_generator_loss,
)
from gentorch.losses.kl import Reduction

_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)
_REDUCTIONS: tuple[Reduction, ...] = ("none", "sum", "mean", "batchmean")

# Shapes (..., L) of 1 to 4 dimensions; sides of 0 appear only where a test asks for them.
_shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5)
_maybe_empty_shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4)


def _array(
    draw: Callable[[st.SearchStrategy[Any]], Any], shape: tuple[int, ...], low: float, high: float
) -> Tensor:
    """A float64 tensor of ``shape``, values in [low, high] (``draw`` of a composite or data)."""
    values = draw(hnp.arrays(np.float64, shape, elements=st.floats(low, high)))
    return torch.from_numpy(values)


@st.composite
def _gaussian(draw: st.DrawFn, shape: tuple[int, ...] | None = None) -> tuple[Tensor, Tensor]:
    """(mu, logvar) in float64 of one random shape; |logvar| <= 10 keeps exp() well scaled."""
    if shape is None:
        shape = draw(_shapes)
    return _array(draw, shape, -10, 10), _array(draw, shape, -10, 10)


def _normal(mu: Tensor, logvar: Tensor) -> Normal:
    return Normal(mu, torch.exp(0.5 * logvar))


# --- gaussian_kl -------------------------------------------------------------------------------


@_SETTINGS
@given(_gaussian())
def test_gaussian_kl_matches_torch_distributions_for_random_shapes(
    q: tuple[Tensor, Tensor],
) -> None:
    mu, logvar = q
    expected = kl_divergence(_normal(mu, logvar), Normal(0.0, 1.0))
    got = gaussian_kl(mu, logvar)
    assert got.shape == mu.shape
    assert got.dtype == torch.float64
    # torch's form var - 1 - log(var) cancels near var = 1: an absolute error of a few ulps of
    # the largest term (exp(10) ~ 2.2e4, mu^2 <= 100), i.e. ~1e-11; ours is more precise there.
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@_SETTINGS
@given(
    shape=_shapes,
    dtype=st.sampled_from([torch.float32, torch.float64]),
    data=st.data(),
)
def test_gaussian_kl_is_nonnegative_in_every_dtype(
    shape: tuple[int, ...], dtype: torch.dtype, data: st.DataObject
) -> None:
    # Includes tiny logvars, where exp(lv) - 1 - lv would cancel to a negative value without
    # expm1: expm1(lv) >= lv holds after (faithful) rounding, so every element is >= 0 exactly.
    tiny_or_wide = st.one_of(st.floats(-1e-6, 1e-6), st.floats(-30, 30))
    lv = torch.from_numpy(data.draw(hnp.arrays(np.float64, shape, elements=tiny_or_wide)))
    mu = torch.from_numpy(data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-5, 5))))
    kl = gaussian_kl(mu.to(dtype), lv.to(dtype))
    assert bool((kl >= 0).all()), kl


@_SETTINGS
@given(shape=_shapes, data=st.data())
def test_gaussian_kl_is_zero_exactly_at_the_prior(
    shape: tuple[int, ...], data: st.DataObject
) -> None:
    # Each element is either exactly 0 or at least 1e-6 away from it: for such gaps the KL
    # (~mu^2 / 2 and ~lv^2 / 4) is >= 2.5e-13, far above float64 underflow.
    value = st.one_of(st.just(0.0), st.floats(1e-6, 5), st.floats(-5, -1e-6))
    mu = torch.from_numpy(data.draw(hnp.arrays(np.float64, shape, elements=value)))
    lv = torch.from_numpy(data.draw(hnp.arrays(np.float64, shape, elements=value)))
    kl = gaussian_kl(mu, lv)
    at_prior = (mu == 0) & (lv == 0)
    assert torch.equal(kl == 0, at_prior)


@_SETTINGS
@given(shape=_maybe_empty_shapes, data=st.data())
def test_gaussian_kl_reductions_are_consistent(shape: tuple[int, ...], data: st.DataObject) -> None:
    mu, logvar = data.draw(_gaussian(shape))
    per_element = gaussian_kl(mu, logvar, reduction="none")
    total = gaussian_kl(mu, logvar, reduction="sum")
    assert total.shape == ()
    # Same elements, possibly another summation order: float64 rounding only.
    torch.testing.assert_close(total, per_element.sum(), rtol=1e-12, atol=1e-12)
    count = math.prod(shape)
    if count == 0:
        assert total.item() == 0.0
        with pytest.raises(ValueError, match=r"reduction='mean' needs at least one element"):
            gaussian_kl(mu, logvar, reduction="mean")
    else:
        mean = gaussian_kl(mu, logvar, reduction="mean")
        torch.testing.assert_close(mean * count, total, rtol=1e-12, atol=1e-12)
    if shape[0] == 0:
        with pytest.raises(ValueError, match=r"reduction='batchmean' needs at least one row"):
            gaussian_kl(mu, logvar, reduction="batchmean")
    else:
        batchmean = gaussian_kl(mu, logvar, reduction="batchmean")
        torch.testing.assert_close(batchmean * shape[0], total, rtol=1e-12, atol=1e-12)


# --- gaussian_kl_between -----------------------------------------------------------------------


@st.composite
def _broadcast_pair(draw: st.DrawFn) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(mu_q, logvar_q, mu_p, logvar_p) of four shapes that broadcast together."""
    shapes = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=4, min_dims=1, max_dims=3, max_side=4)
    )
    return cast(
        tuple[Tensor, Tensor, Tensor, Tensor],
        tuple(_array(draw, s, -8, 8) for s in shapes.input_shapes),
    )


@_SETTINGS
@given(_broadcast_pair())
def test_gaussian_kl_between_matches_torch_distributions_with_broadcasting(
    args: tuple[Tensor, Tensor, Tensor, Tensor],
) -> None:
    mu_q, lv_q, mu_p, lv_p = args
    expected = kl_divergence(_normal(mu_q, lv_q), _normal(mu_p, lv_p))
    got = gaussian_kl_between(mu_q, lv_q, mu_p, lv_p)
    assert got.shape == torch.broadcast_shapes(mu_q.shape, lv_q.shape, mu_p.shape, lv_p.shape)
    # Terms up to (16^2) * e^8 ~ 7.6e5 and e^16 ~ 8.9e6: a few ulps of those is ~1e-9 absolute.
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-8)
    assert bool((got >= 0).all())
    for reduction in ("sum", "mean", "batchmean"):
        reduced = gaussian_kl_between(mu_q, lv_q, mu_p, lv_p, reduction=reduction)
        ref = {"sum": got.sum(), "mean": got.mean(), "batchmean": got.sum() / got.shape[0]}
        torch.testing.assert_close(reduced, ref[reduction], rtol=1e-12, atol=1e-12)


@_SETTINGS
@given(_gaussian())
def test_gaussian_kl_between_a_distribution_and_itself_is_zero(q: tuple[Tensor, Tensor]) -> None:
    mu, logvar = q
    # d = 0 exactly, expm1(0) = 0 and (mu - mu)^2 = 0: exactly zero, not merely small.
    assert torch.count_nonzero(gaussian_kl_between(mu, logvar, mu, logvar)) == 0


@_SETTINGS
@given(_gaussian())
def test_gaussian_kl_between_a_standard_prior_equals_gaussian_kl(
    q: tuple[Tensor, Tensor],
) -> None:
    mu, logvar = q
    zeros = torch.zeros(mu.shape[-1], dtype=mu.dtype)  # a (L,) prior broadcast over (..., L)
    # d = logvar - 0 and exp(-0) = 1: the same three terms, added in another order (so equal up
    # to an ulp or two of the largest, <= e^10 + 100).
    torch.testing.assert_close(
        gaussian_kl_between(mu, logvar, zeros, zeros),
        gaussian_kl(mu, logvar),
        rtol=1e-14,
        atol=1e-11,
    )


@_SETTINGS
@given(
    q=_gaussian((3, 4)),
    p=_gaussian((3, 4)),
    shift=st.floats(-5, 5),
    log_scale=st.floats(-2, 2),
)
def test_gaussian_kl_between_is_invariant_under_a_common_affine_map(
    q: tuple[Tensor, Tensor], p: tuple[Tensor, Tensor], shift: float, log_scale: float
) -> None:
    # z -> a z + b maps N(m, v) to N(a m + b, a^2 v); the KL between two laws is invariant.
    (mu_q, lv_q), (mu_p, lv_p) = q, p
    a = math.exp(log_scale)
    before = gaussian_kl_between(mu_q, lv_q, mu_p, lv_p)
    after = gaussian_kl_between(
        a * mu_q + shift, lv_q + 2 * log_scale, a * mu_p + shift, lv_p + 2 * log_scale
    )
    # Rounding of the shifted arguments (|values| <= ~90) is relative 1e-16, amplified by terms
    # up to e^20 * 20^2: relative 1e-9 with an absolute floor for KLs near 0.
    torch.testing.assert_close(after, before, rtol=1e-9, atol=1e-9)


# --- gaussian_kl_free_bits ---------------------------------------------------------------------


@_SETTINGS
@given(q=_gaussian(), free_bits=st.floats(0, 30))
def test_free_bits_per_dimension_floor_and_reductions(
    q: tuple[Tensor, Tensor], free_bits: float
) -> None:
    mu, logvar = q
    L = mu.shape[-1]
    n_rows = mu.numel() // L
    # Reference: torch.distributions' KL averaged over every row, floored at free_bits.
    kl_dim = kl_divergence(_normal(mu, logvar), Normal(0.0, 1.0)).reshape(-1, L).mean(0)
    floored = kl_dim.clamp(min=free_bits)
    got = gaussian_kl_free_bits(mu, logvar, free_bits, reduction="none")
    assert got.shape == (L,)
    torch.testing.assert_close(got, floored, rtol=1e-10, atol=1e-10)  # as in the KL test above
    assert bool((got >= free_bits).all())
    expected = {
        "batchmean": floored.sum() * n_rows / mu.shape[0],
        "sum": floored.sum() * n_rows,
        "mean": floored.sum() / L,
    }
    for reduction, value in expected.items():
        reduced = gaussian_kl_free_bits(mu, logvar, free_bits, reduction=reduction)  # type: ignore[arg-type]
        assert reduced.shape == ()
        torch.testing.assert_close(reduced, value, rtol=1e-10, atol=1e-9)


@_SETTINGS
@given(q=_gaussian(), reduction=st.sampled_from(["sum", "mean", "batchmean"]))
def test_free_bits_zero_equals_gaussian_kl_for_random_shapes(
    q: tuple[Tensor, Tensor], reduction: Reduction
) -> None:
    mu, logvar = q
    # Same KL values summed in another grouping (per column first): float64 rounding only.
    torch.testing.assert_close(
        gaussian_kl_free_bits(mu, logvar, 0.0, reduction=reduction),
        gaussian_kl(mu, logvar, reduction=reduction),
        rtol=1e-12,
        atol=1e-12,
    )


@_SETTINGS
@given(q=_gaussian(), low=st.floats(0, 20), high=st.floats(0, 20))
def test_free_bits_is_nondecreasing_in_the_floor(
    q: tuple[Tensor, Tensor], low: float, high: float
) -> None:
    mu, logvar = q
    low, high = min(low, high), max(low, high)
    for reduction in _REDUCTIONS:
        a = gaussian_kl_free_bits(mu, logvar, low, reduction=reduction)
        b = gaussian_kl_free_bits(mu, logvar, high, reduction=reduction)
        # max(low, KL_j) <= max(high, KL_j) per dimension, then the same monotone reduction:
        # exact in floating point (rounding is monotone).
        assert bool((a <= b).all()), (reduction, a, b)


@_SETTINGS
@given(q=_gaussian(), column=st.integers(0, 4))
def test_free_bits_gradient_is_that_of_kl_above_the_floor_and_zero_at_or_below(
    q: tuple[Tensor, Tensor], column: int
) -> None:
    mu0, lv0 = q
    L = mu0.shape[-1]
    n_rows = mu0.numel() // L
    kl_dim = gaussian_kl_free_bits(mu0, lv0, 0.0, reduction="none")
    # The floor is set to one dimension's KL exactly: equality must give a zero gradient too.
    free_bits = float(kl_dim[column % L])
    mu, lv = mu0.clone().requires_grad_(True), lv0.clone().requires_grad_(True)
    gaussian_kl_free_bits(mu, lv, free_bits, reduction="none").sum().backward()
    assert mu.grad is not None
    assert lv.grad is not None
    active = (kl_dim > free_bits).to(mu0.dtype)  # (L,), broadcast over the rows
    assert active[column % L] == 0
    # d/dmu of mean_rows 0.5 (mu^2 + e^lv - 1 - lv) = mu / N; d/dlv = 0.5 (e^lv - 1) / N.
    torch.testing.assert_close(mu.grad, active * mu0 / n_rows, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(
        lv.grad, active * 0.5 * torch.expm1(lv0) / n_rows, rtol=1e-12, atol=1e-14
    )
    assert torch.count_nonzero(mu.grad[..., column % L]) == 0
    assert torch.count_nonzero(lv.grad[..., column % L]) == 0


@_SETTINGS
@given(
    free_bits=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-5, 5),
        st.booleans(),
        st.none(),
        st.text(max_size=3),
    )
)
def test_free_bits_accepts_exactly_finite_nonnegative_numbers(free_bits: object) -> None:
    # float64 holds every finite Python float (for float32, see the xfail test below).
    mu, logvar = torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64)
    valid = (
        not isinstance(free_bits, bool)
        and isinstance(free_bits, int | float)
        and math.isfinite(free_bits)
        and free_bits >= 0
    )
    if valid:
        out = gaussian_kl_free_bits(mu, logvar, free_bits, reduction="none")  # type: ignore[arg-type]
        # At the prior every KL_j is 0, so each dimension costs the floor exactly.
        expected = torch.full((3,), float(cast(float, free_bits)), dtype=torch.float64)
        assert torch.equal(out, expected)
    else:
        with pytest.raises(ValueError, match=r"^free_bits: expected a finite float >= 0"):
            gaussian_kl_free_bits(mu, logvar, free_bits)  # type: ignore[arg-type]


def test_free_bits_beyond_the_input_dtype_range_is_a_named_error() -> None:
    # 1e39 passes the finite-and-non-negative check, but no float32 holds it. Before: float32
    # inputs raised "RuntimeError: value cannot be converted to type float without overflow"
    # and float16 ones silently returned inf.
    for dtype, value in ((torch.float32, 1e39), (torch.float16, 1e5), (torch.bfloat16, 1e39)):
        mu = torch.zeros(1, 1, dtype=dtype)
        with pytest.raises(ValueError, match=rf"^free_bits: expected at most the largest {dtype}"):
            gaussian_kl_free_bits(mu, mu, value)
    # the largest float32 itself is allowed
    out = gaussian_kl_free_bits(torch.zeros(1, 1), torch.zeros(1, 1), 3.4028234663852886e38)
    assert torch.isfinite(out)


@_SETTINGS
@given(shape=_maybe_empty_shapes.filter(lambda s: math.prod(s) == 0))
def test_free_bits_refuses_inputs_without_rows_or_dimensions(shape: tuple[int, ...]) -> None:
    mu = torch.zeros(shape)
    with pytest.raises(ValueError, match="expected at least one row and one latent dimension"):
        gaussian_kl_free_bits(mu, mu, 0.5)


# --- GAN losses --------------------------------------------------------------------------------


@st.composite
def _logits(draw: st.DrawFn, low: float = -50, high: float = 50) -> Tensor:
    """Non-empty float64 discriminator outputs of a random shape."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6))
    return _array(draw, shape, low, high)


@_SETTINGS
@given(real=_logits(), fake=_logits())
def test_hinge_discriminator_loss_is_nonnegative_and_zero_exactly_outside_the_margin(
    real: Tensor, fake: Tensor
) -> None:
    loss = hinge_discriminator_loss(real, fake)
    assert loss.shape == ()
    assert loss.item() >= 0.0
    satisfied = bool((real >= 1).all()) and bool((fake <= -1).all())
    assert (loss.item() == 0.0) == satisfied
    # -V_D = -(E[min(0, -1 + D(x))] + E[min(0, -1 - D(G(z)))]), the docstring's definition.
    v_d = torch.clamp(real - 1, max=0).mean() + torch.clamp(-1 - fake, max=0).mean()
    torch.testing.assert_close(loss, -v_d, rtol=1e-12, atol=1e-12)


@_SETTINGS
@given(real=_logits(), fake=_logits(), data=st.data())
def test_hinge_discriminator_loss_is_monotone_in_each_argument(
    real: Tensor, fake: Tensor, data: st.DataObject
) -> None:
    up_real = real + _array(data.draw, tuple(real.shape), 0, 10)
    up_fake = fake + _array(data.draw, tuple(fake.shape), 0, 10)
    base = hinge_discriminator_loss(real, fake)
    # Raising real scores never costs the discriminator, raising fake scores never helps it:
    # relu(1 - r) and relu(1 + f) are monotone and so is rounded addition, hence exact.
    assert hinge_discriminator_loss(up_real, fake) <= base
    assert hinge_discriminator_loss(real, up_fake) >= base


@_SETTINGS
@given(real=_logits(), fake=_logits())
def test_discriminator_losses_are_symmetric_under_swapping_and_negating(
    real: Tensor, fake: Tensor
) -> None:
    # Labelling fake as real and flipping the score's sign describes the same game:
    # loss(r, f) == loss(-f, -r). 1 - (-x) == 1 + x and -(-x) == x exactly, so bit for bit.
    for loss in (hinge_discriminator_loss, bce_discriminator_loss, wasserstein_discriminator_loss):
        assert torch.equal(loss(real, fake), loss(-fake, -real)), loss.__name__


@_SETTINGS
@given(real=_logits(-20, 20), fake=_logits(-20, 20))
def test_bce_losses_equal_their_log_sigmoid_definitions(real: Tensor, fake: Tensor) -> None:
    sig = torch.sigmoid
    # The docstrings' naive forms. At |logit| <= 20, 1 - sigmoid(20) ~ 2e-9 is computed with an
    # absolute error ~1e-16, i.e. a relative (and log) error ~5e-8: hence atol=1e-6.
    d_naive = -torch.log(sig(real)).mean() - torch.log(1 - sig(fake)).mean()
    g_naive = -torch.log(sig(fake)).mean()
    torch.testing.assert_close(bce_discriminator_loss(real, fake), d_naive, rtol=1e-7, atol=1e-6)
    torch.testing.assert_close(bce_generator_loss(fake), g_naive, rtol=1e-7, atol=1e-6)


@_SETTINGS
@given(real=_logits(), fake=_logits())
def test_bce_discriminator_loss_splits_into_generator_losses(real: Tensor, fake: Tensor) -> None:
    # -log(1 - sigmoid(f)) = -log sigmoid(-f): the discriminator's loss is the non-saturating
    # generator loss of the real scores plus that of the negated fake scores, bit for bit.
    expected = bce_generator_loss(real) + bce_generator_loss(-fake)
    assert torch.equal(bce_discriminator_loss(real, fake), expected)
    # softplus > 0: with |logit| <= 50 each term is >= softplus(-50) ~ 2e-22, no underflow.
    assert bce_discriminator_loss(real, fake).item() > 0.0
    assert bce_generator_loss(fake).item() > 0.0


@_SETTINGS
@given(
    fake=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=8),
        elements=st.floats(-(2.0**100), 2.0**100, width=32),
    )
)
def test_bce_losses_stay_finite_for_confident_float32_logits(fake: np.ndarray) -> None:
    logits = torch.from_numpy(fake)
    # softplus(x) for huge x is x itself: a naive log(sigmoid) would give log(0) = -inf. The
    # mean of at most 16 values below 2^100 ~ 1.3e30 stays far below float32's 3.4e38.
    for loss in (bce_generator_loss(logits), bce_discriminator_loss(logits, logits)):
        assert torch.isfinite(loss)
        assert loss.item() >= 0.0


@_SETTINGS
@given(fake=_logits(), data=st.data())
def test_bce_generator_loss_is_nonincreasing_in_the_fake_scores(
    fake: Tensor, data: st.DataObject
) -> None:
    up = fake + _array(data.draw, tuple(fake.shape), 0, 10)
    # softplus(-x) decreases with x; allow a few ulps in case the vectorized log1p/exp are not
    # exactly monotone (values <= ~60, so 1e-13 is tens of ulps).
    assert bce_generator_loss(up).item() <= bce_generator_loss(fake).item() + 1e-13


@_SETTINGS
@given(real=_logits(), fake=_logits(), shift=st.floats(-100, 100))
def test_wasserstein_losses_are_antisymmetric_and_shift_invariant(
    real: Tensor, fake: Tensor, shift: float
) -> None:
    d = wasserstein_discriminator_loss(real, fake)
    # a - b == -(b - a) exactly in IEEE arithmetic.
    assert torch.equal(d, -wasserstein_discriminator_loss(fake, real))
    # A constant added to every critic output cancels; rounding of values <= 150: ~1e-13.
    torch.testing.assert_close(
        wasserstein_discriminator_loss(real + shift, fake + shift), d, rtol=1e-12, atol=1e-12
    )
    # WGAN's and the hinge loss's generator objectives are both -E[D(G(z))].
    assert torch.equal(wasserstein_generator_loss(fake), hinge_generator_loss(fake))
    assert torch.equal(hinge_generator_loss(fake), -fake.mean())


@_SETTINGS
@given(
    shape=hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=4),
    data=st.data(),
    seed=st.integers(0, 2**31 - 1),
)
def test_gradient_penalty_of_a_linear_critic_is_its_closed_form(
    shape: tuple[int, ...], data: st.DataObject, seed: int
) -> None:
    # D(x) = <W, x> per sample has grad_x D = W at every interpolate, whatever eps, real and
    # fake are: the penalty is (||W|| - 1)^2 for every input shape (B, ...).
    weight = _array(data.draw, shape[1:], -2, 2)
    real, fake = _array(data.draw, shape, -5, 5), _array(data.draw, shape, -5, 5)

    def critic(x: Tensor) -> Tensor:
        return (x * weight).flatten(1).sum(1)

    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(seed))
    expected = (torch.linalg.vector_norm(weight) - 1.0) ** 2
    assert gp.item() >= 0.0
    # The same norm of the same values in float64, up to summation order.
    torch.testing.assert_close(gp, expected, rtol=1e-12, atol=1e-12)


@_SETTINGS
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 5))
def test_gradient_penalty_is_nonnegative_and_reproducible_from_its_generator(
    seed: int, batch: int
) -> None:
    g = torch.Generator().manual_seed(seed)
    critic = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)
    ).double()
    for p in critic.parameters():
        torch.nn.init.normal_(p, generator=g)
    real = torch.randn(batch, 3, generator=g, dtype=torch.float64)
    fake = torch.randn(batch, 3, generator=g, dtype=torch.float64)
    a = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(seed))
    b = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(seed))
    assert a.item() >= 0.0
    assert torch.equal(a, b)


# --- likelihoods -------------------------------------------------------------------------------


@st.composite
def _broadcast_features(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes (..., D) with the same D >= 1 whose leading dimensions broadcast."""
    features = draw(st.integers(1, 5))
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2))
    a, b = shapes.input_shapes
    return (*a, features), (*b, features)


@_SETTINGS
@given(shapes=_broadcast_features(), data=st.data(), grad=st.booleans())
def test_bernoulli_log_likelihood_matches_torch_distributions_on_binary_data(
    shapes: tuple[tuple[int, ...], tuple[int, ...]], data: st.DataObject, grad: bool
) -> None:
    logit_shape, x_shape = shapes
    logits = _array(data.draw, logit_shape, -60, 60)
    x = torch.from_numpy(
        data.draw(hnp.arrays(np.float64, x_shape, elements=st.sampled_from([0.0, 1.0])))
    )
    l_b, x_b = torch.broadcast_tensors(logits, x)
    expected = Bernoulli(logits=l_b).log_prob(x_b).sum(-1)
    got = bernoulli_log_likelihood(logits.clone().requires_grad_(grad), x).detach()
    assert got.shape == expected.shape
    assert bool((got <= 0).all())  # a probability of binary data is at most 1
    # Both paths (with and without autograd) are exact up to rounding: above softplus's
    # threshold 40 the dropped log1p(e^-40) ~ 4e-18 is below float64's resolution at 40.
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@_SETTINGS
@given(
    shapes=_broadcast_features(),
    data=st.data(),
    logvar_kind=st.sampled_from(["float", "scalar", "features"]),
)
def test_gaussian_log_likelihood_matches_torch_distributions(
    shapes: tuple[tuple[int, ...], tuple[int, ...]], data: st.DataObject, logvar_kind: str
) -> None:
    mean_shape, x_shape = shapes
    mean, x = _array(data.draw, mean_shape, -5, 5), _array(data.draw, x_shape, -5, 5)
    features = mean_shape[-1]
    logvar: Tensor | float
    if logvar_kind == "float":
        logvar = data.draw(st.floats(-4, 4))
        lv_tensor = torch.tensor(logvar, dtype=torch.float64)
    else:
        lv_tensor = _array(data.draw, () if logvar_kind == "scalar" else (features,), -4, 4)
        logvar = lv_tensor
    m_b, x_b = torch.broadcast_tensors(mean, x)
    expected = Normal(m_b, torch.exp(0.5 * lv_tensor)).log_prob(x_b).sum(-1)
    got = gaussian_log_likelihood(mean, x, logvar)
    assert got.shape == expected.shape
    # Terms up to 10^2 * e^4 ~ 5.5e3 summed over <= 5 features: a few ulps ~1e-12.
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-10)
