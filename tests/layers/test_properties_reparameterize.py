"""Property-based tests (hypothesis) of the sampling layers over random shapes and settings.

Every test draws its shapes, options and integer seeds with hypothesis and builds its tensors
with ``torch.Generator``s seeded from those integers, so the examples are reproducible;
``derandomize=True`` makes the examples themselves the same on every run (no database).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st
from torch import Tensor

from gentorch.layers import (
    LOG_SCALE_RANGE,
    LOGVAR_RANGE,
    GumbelSoftmax,
    RelaxedBernoulli,
    Reparameterize,
    ReparameterizeFullCov,
    ReparameterizeLaplace,
    ReparameterizeLogistic,
    reparameterize,
)
from gentorch.losses import gaussian_kl

FLOAT64_EPS = torch.finfo(torch.float64).eps

# --- strategies -----------------------------------------------------------------------------

# leading dimensions (..., ) of 0 to 3 axes, each of 1 to 4 entries
leading_shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)
latent_dims = st.integers(1, 5)
sample_counts = st.none() | st.integers(1, 4)
seeds = st.integers(0, 2**32 - 1)
float_dtypes = st.sampled_from([torch.float32, torch.float64])


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(shape: tuple[int, ...], seed: int, dtype: torch.dtype, scale: float = 1.0) -> Tensor:
    """Standard normal values (drawn in float64, then scaled and cast): ``scale * N(0, 1)``."""
    return (torch.randn(shape, generator=_gen(seed), dtype=torch.float64) * scale).to(dtype)


def _out_shape(shape: tuple[int, ...], k: int | None) -> tuple[int, ...]:
    return shape if k is None else (k, *shape)


def _expand(t: Tensor, k: int | None) -> Tensor:
    return t if k is None else t.expand(k, *t.shape)


def _layout(t: Tensor, kind: str) -> Tensor:
    """A tensor of ``t``'s shape in a memory layout that keeps the order of the dimensions:
    ``t``'s values in a strided view into a larger buffer, the first row of ``t`` broadcast
    along the leading axis (a stride-0 view), or ``t`` itself."""
    if kind == "strided":
        buffer = torch.zeros((*t.shape[:-1], 2 * t.shape[-1]), dtype=t.dtype)
        buffer[..., ::2] = t
        return buffer[..., ::2]
    if kind == "broadcast" and t.dim() > 1:
        return t[:1].expand(t.shape) if t.shape[0] > 1 else t.expand(t.shape)
    return t


# --- the Gaussian: reparameterize / Reparameterize ------------------------------------------


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(
    lead=leading_shapes,
    L=latent_dims,
    k=sample_counts,
    dtype=float_dtypes,
    seed=seeds,
    logvar_scale=st.sampled_from([1.0, 4.0, 25.0]),
)
def test_reparameterize_is_the_plain_formula_bit_for_bit(
    lead: tuple[int, ...],
    L: int,
    k: int | None,
    dtype: torch.dtype,
    seed: int,
    logvar_scale: float,
) -> None:
    shape = (*lead, L)
    mu = _randn(shape, seed, dtype, 3.0)
    # scale 25: many entries beyond the clamp range (-30, 11)
    logvar = _randn(shape, seed + 1, dtype, logvar_scale)
    z = reparameterize(mu, logvar, n_samples=k, generator=_gen(seed + 2))
    assert z.shape == _out_shape(shape, k)
    assert z.dtype == dtype
    # The module docstring: the noise is drawn as 0.5 * eps and z = mu + 2 * h; scalings by
    # powers of two are exact, so z is *exactly* mu + sigma * eps with eps = randn(z.shape)
    # from an identically seeded generator (no tolerance).
    eps = torch.randn(_out_shape(shape, k), generator=_gen(seed + 2), dtype=dtype)
    expected = mu + torch.exp(0.5 * logvar.clamp(*LOGVAR_RANGE)) * eps
    assert torch.equal(z, expected)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    lead=leading_shapes,
    L=latent_dims,
    k=sample_counts,
    dtype=float_dtypes,
    seed=seeds,
    layouts=st.tuples(*[st.sampled_from(["contiguous", "strided", "broadcast"])] * 2),
)
def test_concatenated_pair_and_function_layouts_draw_the_same_sample(
    lead: tuple[int, ...],
    L: int,
    k: int | None,
    dtype: torch.dtype,
    seed: int,
    layouts: tuple[str, str],
) -> None:
    shape = (*lead, L)
    # mu and logvar in the drawn layouts, and contiguous copies of the same values
    mu = _layout(_randn(shape, seed, dtype), layouts[0])
    logvar = _layout(_randn(shape, seed + 1, dtype), layouts[1])
    mu_c, logvar_c = mu.contiguous(), logvar.contiguous()
    reference = reparameterize(mu_c, logvar_c, n_samples=k, generator=_gen(seed + 2))
    layer = Reparameterize(n_samples=k)  # training mode: samples
    concat = layer(torch.cat([mu_c, logvar_c], dim=-1), generator=_gen(seed + 2))
    pair = layer((mu, logvar), generator=_gen(seed + 2))
    # same values, same generator state, same noise order: identical samples
    assert torch.equal(concat, reference)
    assert torch.equal(pair, reference)
    # the per-call n_samples overrides the layer's
    override = Reparameterize(n_samples=7)((mu, logvar), n_samples=k or 1, generator=_gen(seed + 2))
    assert torch.equal(override, reference if k is not None else reference.unsqueeze(0))


# The noise is drawn with h = torch.empty_like(mu).normal_(...) (reparameterize.py): for a
# dense but permuted mu (e.g. channels-last or a transposed view), empty_like keeps mu's
# strides, so the noise lands in memory order instead of logical order, and the same values
# of mu give another sample than their contiguous copy (the other families draw with
# memory_format=torch.contiguous_format and do not). The minimal case is the @example.
@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
)
@example(shape=(2, 2), seed=0)
@given(shape=st.tuples(st.integers(2, 4), st.integers(2, 4)), seed=seeds)
def test_sample_does_not_depend_on_the_memory_layout_of_mu(
    shape: tuple[int, int], seed: int
) -> None:
    mu = _randn(shape, seed, torch.float32)
    logvar = _randn(shape, seed + 1, torch.float32)
    column_major = mu.t().contiguous().t()  # same values, transposed strides
    assert torch.equal(column_major, mu)
    # before: the noise was drawn in mu's memory order, so a transposed mu gave another sample
    for k in (None, 3):
        z = reparameterize(mu, logvar, n_samples=k, generator=_gen(seed + 2))
        z_column_major = reparameterize(column_major, logvar, n_samples=k, generator=_gen(seed + 2))
        assert torch.equal(z_column_major, z)
        layer = Reparameterize(n_samples=k).train()
        assert torch.equal(layer((column_major, logvar), generator=_gen(seed + 2)), z)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(lead=leading_shapes, L=latent_dims, k=sample_counts, seed=seeds)
def test_gradients_are_one_for_mu_and_half_z_minus_mu_for_logvar(
    lead: tuple[int, ...], L: int, k: int | None, seed: int
) -> None:
    shape = (*lead, L)
    mu = _randn(shape, seed, torch.float64, 3.0).requires_grad_()
    # scale 20: some logvar beyond the clamp (-30, 11): the gradient there is straight-through
    logvar = _randn(shape, seed + 1, torch.float64, 20.0).requires_grad_()
    z = reparameterize(mu, logvar, n_samples=k, generator=_gen(seed + 2))
    g = _randn(tuple(z.shape), seed + 3, torch.float64)
    z.backward(g)
    assert mu.grad is not None
    assert logvar.grad is not None

    def total(t: Tensor) -> Tensor:  # the sum over the K samples
        return t if k is None else t.sum(0)

    # dz/dmu = 1 per sample: the gradient is g summed over K (the same sum, so exactly)
    assert torch.equal(mu.grad, total(g))
    # dz/dlogvar = 0.5 * sigma * eps, sigma at the clamped logvar (straight-through). Each term
    # g * 0.5 * sigma * eps is rounded in another order than the layer's (<= 2 ulps), and the
    # sum over K adds <= K - 1 roundings: within 8 ulps of the sum of |terms|
    eps = torch.randn(tuple(z.shape), generator=_gen(seed + 2), dtype=torch.float64)
    sigma = torch.exp(0.5 * logvar.detach().clamp(*LOGVAR_RANGE))
    terms = g * 0.5 * sigma * eps
    error = (logvar.grad - total(terms)).abs()
    assert bool((error <= 8 * FLOAT64_EPS * total(terms.abs())).all())
    # where logvar is inside the clamp range this is 0.5 * (z - mu); z - mu is sigma * eps up
    # to the rounding of z (half an ulp of |z|), plus the roundings above: the bound below
    inside = (logvar.detach() > LOGVAR_RANGE[0]) & (logvar.detach() < LOGVAR_RANGE[1])
    half_diff = total(g * 0.5 * (z.detach() - mu.detach()))
    bound = 8 * FLOAT64_EPS * total(g.abs() * (z.detach().abs() + terms.abs()))
    assert bool(((logvar.grad - half_diff).abs() <= bound)[inside].all())


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(lead=leading_shapes, L=latent_dims, k=sample_counts, dtype=float_dtypes, seed=seeds)
def test_eval_mean_returns_mu_and_eval_sample_keeps_sampling(
    lead: tuple[int, ...], L: int, k: int | None, dtype: torch.dtype, seed: int
) -> None:
    shape = (*lead, L)
    mu, logvar = _randn(shape, seed, dtype), _randn(shape, seed + 1, dtype)
    x = torch.cat([mu, logvar], dim=-1)
    mean = Reparameterize(eval_mode="mean", n_samples=k).eval()
    assert torch.equal(mean(x), _expand(mu, k))
    assert torch.equal(mean((mu, logvar), generator=_gen(seed)), _expand(mu, k))
    sample = Reparameterize(eval_mode="sample", n_samples=k).eval()
    expected = reparameterize(mu, logvar, n_samples=k, generator=_gen(seed + 2))
    assert torch.equal(sample(x, generator=_gen(seed + 2)), expected)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    lead=st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple),
    data=st.data(),
    k=sample_counts,
    dtype=float_dtypes,
    seed=seeds,
)
def test_diagnostics_are_the_batch_mean_kl_and_the_count_of_active_units(
    lead: tuple[int, ...],
    data: st.DataObject,
    k: int | None,
    dtype: torch.dtype,
    seed: int,
) -> None:
    L = data.draw(latent_dims, label="L")
    # per-dimension spread of mu over the rows: some dimensions collapsed, some active
    scales = data.draw(
        st.lists(st.sampled_from([0.0, 1e-3, 0.05, 0.2, 1.0]), min_size=L, max_size=L),
        label="scales",
    )
    shape = (*lead, L)
    mu = _randn(shape, seed, dtype) * torch.tensor(scales, dtype=dtype) + 0.5
    logvar = _randn(shape, seed + 1, dtype, 15.0)  # partly beyond the clamp (-30, 11)
    layer = Reparameterize(n_samples=k, track_diagnostics=True)
    layer(_randn((3, 2 * L), seed + 2, dtype))  # an earlier batch: only the last one counts
    layer((mu.requires_grad_(), logvar), generator=_gen(seed + 3))
    d = layer.diagnostics()

    rows_mu = mu.detach().reshape(-1, L)
    rows_lv = logvar.reshape(-1, L).clamp(*LOGVAR_RANGE)
    # KL(q || N(0, I)) of q = N(mu, exp(clamp(logvar))), per dimension, averaged over every
    # row of every leading dimension; the layer computes it in float32 with gaussian_kl's
    # closed form, so the two agree to float32 rounding (float32 assert_close defaults)
    expected_kl = gaussian_kl(rows_mu.float(), rows_lv.float()).mean(0)
    kl = d["kl_per_dim"]
    assert isinstance(kl, Tensor)
    assert kl.shape == (L,)
    torch.testing.assert_close(kl, expected_kl)
    assert d["kl_total"] == pytest.approx(float(expected_kl.sum()), rel=1e-5)
    # active units: Var over the rows (dividing by N) above 0.01, computed here in float64.
    # The layer's float32 variance can differ by ~1e-7 relative: skip cases within 1e-6 of the
    # threshold (hypothesis would only draw such a case by chance)
    var = rows_mu.double().var(dim=0, correction=0)
    margin = (var - 0.01).abs().min()
    if float(margin) > 1e-6:
        assert d["active_units"] == int((var > 0.01).sum())
    assert d["n_rows"] == math.prod(lead)
    assert d["mean_abs_mu"] == pytest.approx(float(rows_mu.double().abs().mean()), rel=1e-5)
    expected_sigma = float(torch.exp(0.5 * rows_lv.double()).mean())
    assert d["mean_sigma"] == pytest.approx(expected_sigma, rel=1e-5)


# --- the other location-scale families ------------------------------------------------------


def _laplace_noise(u: Tensor) -> Tensor:
    # inverse CDF of Laplace(0, 1): log(2u) below the median, -log(2(1 - u)) above it
    return torch.where(u < 0.5, torch.log(2 * u), -torch.log(2 * (1 - u)))


def _logistic_noise(u: Tensor) -> Tensor:
    # inverse CDF of Logistic(0, 1): log(u / (1 - u))
    return torch.log(u / (1 - u))


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(
    family=st.sampled_from(["laplace", "logistic"]),
    lead=leading_shapes,
    L=latent_dims,
    k=sample_counts,
    dtype=float_dtypes,
    seed=seeds,
    log_scale_scale=st.sampled_from([1.0, 10.0]),
)
def test_location_scale_families_are_loc_plus_scale_times_the_inverse_cdf_of_u(
    family: str,
    lead: tuple[int, ...],
    L: int,
    k: int | None,
    dtype: torch.dtype,
    seed: int,
    log_scale_scale: float,
) -> None:
    shape = (*lead, L)
    loc = _randn(shape, seed, dtype, 2.0)
    log_scale = _randn(shape, seed + 1, dtype, log_scale_scale)  # scale 10: partly clamped
    layer = (ReparameterizeLaplace if family == "laplace" else ReparameterizeLogistic)()
    z = layer(torch.cat([loc, log_scale], dim=-1), n_samples=k, generator=_gen(seed + 2))
    assert z.shape == _out_shape(shape, k)
    assert z.dtype == dtype
    # the pair layout draws the same sample
    assert torch.equal(layer((loc, log_scale), n_samples=k, generator=_gen(seed + 2)), z)
    # z = loc + exp(clamp(log_scale)) * F^-1(u), u ~ U(0, 1) from the same generator (moved off
    # 0 to the smallest normal): the documented formulas, evaluated with the same float
    # operations, so exactly
    u = torch.rand(_out_shape(shape, k), generator=_gen(seed + 2), dtype=dtype)
    u = u.clamp_min(torch.finfo(dtype).tiny)
    e = _laplace_noise(u) if family == "laplace" else _logistic_noise(u)
    assert torch.equal(z, loc + torch.exp(log_scale.clamp(*LOG_SCALE_RANGE)) * e)
    # eval mode "mean" returns loc (expanded to K samples)
    assert torch.equal(
        layer.eval()(torch.cat([loc, log_scale], dim=-1), n_samples=k), _expand(loc, k)
    )


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(lead=leading_shapes, L=st.integers(1, 4), k=sample_counts, seed=seeds)
def test_full_cov_scale_is_a_cholesky_factor_and_the_sample_inverts_to_the_noise(
    lead: tuple[int, ...], L: int, k: int | None, seed: int
) -> None:
    width = L + L * (L + 1) // 2
    x = _randn((*lead, width), seed, torch.float64, 2.0)
    layer = ReparameterizeFullCov(n_samples=k)
    mu, S = layer.split(x)
    assert mu.shape == (*lead, L)
    assert S.shape == (*lead, L, L)
    assert torch.equal(mu, x[..., :L])
    # lower triangular, entries in torch.tril_indices order, softplus on the diagonal
    rows, cols = torch.tril_indices(L, L)
    entries = x[..., L:]
    assert torch.equal(S.triu(1), torch.zeros_like(S))
    assert torch.equal(S[..., rows, cols][..., rows != cols], entries[..., rows != cols])
    diag = S.diagonal(dim1=-2, dim2=-1)
    # (softplus of a whole row against a gathered subset: vectorised and scalar code paths
    # may differ by an ulp or two)
    expected_diag = F.softplus(entries[..., rows == cols])
    torch.testing.assert_close(diag, expected_diag, rtol=4 * FLOAT64_EPS, atol=0)
    assert bool((diag > 0).all())
    # z = mu + S eps with eps = randn(z.shape) of the same generator: solving S w = z - mu
    # recovers eps. Forward substitution is backward stable; with diag >= softplus(-10) ~ 4.5e-5
    # and entries of a few units the error stays far below 1e-6 in float64.
    z = layer(x, generator=_gen(seed + 1))
    assert z.shape == _out_shape((*lead, L), k)
    eps = torch.randn(_out_shape((*lead, L), k), generator=_gen(seed + 1), dtype=torch.float64)
    recovered = torch.linalg.solve_triangular(
        S.expand(*z.shape, L), (z - mu).unsqueeze(-1), upper=False
    ).squeeze(-1)
    torch.testing.assert_close(recovered, eps, rtol=1e-6, atol=1e-6)
    assert torch.equal(layer.eval()(x), _expand(mu, k))


# --- relaxed discrete families --------------------------------------------------------------

temperatures = st.floats(0.1, 5.0, allow_nan=False)


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(
    lead=leading_shapes,
    C=st.integers(1, 6),
    k=sample_counts,
    tau=temperatures,
    tau2=temperatures,
    seed=seeds,
)
def test_gumbel_softmax_soft_rows_are_on_the_simplex_and_hard_rows_are_their_argmax(
    lead: tuple[int, ...], C: int, k: int | None, tau: float, tau2: float, seed: int
) -> None:
    # float64: the smallest softmax entry is exp(-(logit range + Gumbel range) / tau) >=
    # exp(-(20 + 40) / 0.1), far above the float64 underflow (exp(-745))
    logits = _randn((*lead, C), seed, torch.float64, 2.0).requires_grad_()
    soft = GumbelSoftmax(tau)(logits, n_samples=k, generator=_gen(seed + 1))
    assert soft.shape == _out_shape((*lead, C), k)
    assert bool((soft > 0).all())
    # a softmax sums to 1 up to C roundings
    torch.testing.assert_close(
        soft.sum(-1),
        torch.ones(soft.shape[:-1], dtype=torch.float64),
        rtol=0,
        atol=8 * C * FLOAT64_EPS,
    )
    hard = GumbelSoftmax(tau, hard=True)(logits, n_samples=k, generator=_gen(seed + 1))
    # exactly one-hot, at the soft sample's argmax
    assert bool(((hard == 0) | (hard == 1)).all())
    assert torch.equal(hard.sum(-1), torch.ones(hard.shape[:-1], dtype=torch.float64))
    assert torch.equal(hard, F.one_hot(soft.argmax(-1), C).to(torch.float64))
    # argmax(softmax((l + g) / tau)) = argmax(l + g): the same at any temperature
    other = GumbelSoftmax(tau2)(logits, n_samples=k, generator=_gen(seed + 1))
    assert torch.equal(other.argmax(-1), soft.argmax(-1))
    # straight-through: the hard sample's gradient is the soft sample's
    w = _randn(tuple(soft.shape), seed + 2, torch.float64)
    (grad_hard,) = torch.autograd.grad((w * hard).sum(), logits)
    (grad_soft,) = torch.autograd.grad((w * soft).sum(), logits)
    torch.testing.assert_close(grad_hard, grad_soft, rtol=1e-12, atol=1e-15)


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(
    lead=leading_shapes,
    L=latent_dims,
    k=sample_counts,
    dtype=float_dtypes,
    tau=temperatures,
    tau2=temperatures,
    seed=seeds,
)
def test_relaxed_bernoulli_is_in_the_unit_interval_monotone_and_hardens_at_one_half(
    lead: tuple[int, ...],
    L: int,
    k: int | None,
    dtype: torch.dtype,
    tau: float,
    tau2: float,
    seed: int,
) -> None:
    shape = (*lead, L)
    logits = _randn(shape, seed, dtype, 3.0)
    soft = RelaxedBernoulli(tau)(logits, n_samples=k, generator=_gen(seed + 1))
    assert soft.shape == _out_shape(shape, k)
    assert soft.dtype == dtype
    assert bool(((soft >= 0) & (soft <= 1)).all())
    hard = RelaxedBernoulli(tau, hard=True)(logits, n_samples=k, generator=_gen(seed + 1))
    assert torch.equal(hard, (soft > 0.5).to(dtype))
    # with the same noise, larger logits give larger samples (sigmoid is increasing); one
    # ulp of slack for the rounding of sigmoid
    bigger = RelaxedBernoulli(tau)(
        logits + _randn(shape, seed + 2, dtype).abs(), n_samples=k, generator=_gen(seed + 1)
    )
    assert bool((bigger >= soft - torch.finfo(dtype).eps).all())
    if dtype == torch.float64:
        # the hard sample is [logits + logistic noise > 0]: independent of the temperature
        # (float64, where sigmoid(x) > 1/2 for every x > 0 this test can produce)
        hard2 = RelaxedBernoulli(tau2, hard=True)(logits, n_samples=k, generator=_gen(seed + 1))
        assert torch.equal(hard2, hard)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    family=st.sampled_from(["gumbel", "bernoulli"]),
    lead=leading_shapes,
    C=st.integers(1, 6),
    k=sample_counts,
    seed=seeds,
)
def test_relaxed_eval_modes_are_the_mean_and_the_mode_of_the_discrete_law(
    family: str, lead: tuple[int, ...], C: int, k: int | None, seed: int
) -> None:
    logits = _randn((*lead, C), seed, torch.float32, 2.0)
    cls = GumbelSoftmax if family == "gumbel" else RelaxedBernoulli
    mean = cls(eval_mode="mean", n_samples=k).eval()(logits)
    mode = cls(eval_mode="mode", n_samples=k).eval()(logits)
    if family == "gumbel":
        assert torch.equal(mean, _expand(torch.softmax(logits, -1), k))
        assert torch.equal(mode, _expand(F.one_hot(logits.argmax(-1), C).float(), k))
    else:
        assert torch.equal(mean, _expand(torch.sigmoid(logits), k))
        assert torch.equal(mode, _expand((logits > 0).float(), k))
