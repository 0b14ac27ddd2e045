"""Property-based tests (hypothesis) of the VAE evaluations: likelihood, latent use, applications.

Random sizes, chunkings, dtypes, values and seeds (``derandomize=True``: the same examples on
every run) against independent references:

- ``log_likelihood`` / ``nll`` / ``test_elbo``: a direct float64 logsumexp over all ``k``
  weights of a replayed table or of a real VAE whose noise is drawn identically (from its own
  generator), whatever the batching and chunking; every example gets exactly ``k`` samples in
  calls no larger than asked; means and standard errors against numpy and ``scipy.stats.sem``.
- ``posterior_means`` / ``active_units`` / ``kl_per_dimension``: numpy's unbiased variance and
  ``torch.distributions``' KL on posterior parameters that the test chooses.
- ``psnr``: numpy's formula, symmetry, scalings by powers of two, ``inf`` exactly for equal
  inputs (and only then).
- ``anomaly_auc``: a brute-force count of ranked pairs (ties one half) and scipy's Mann-Whitney
  U, exact for integer scores, invariant under exact increasing maps and the label dtype.
- Bad input: the ValueError or TypeError naming the argument that the docstrings promise.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import Tensor, nn
from torch.distributions import Normal, kl_divergence

from gentorch.evaluation import (
    active_units,
    anomaly_auc,
    anomaly_scores,
    denoise,
    kl_per_dimension,
    log_likelihood,
    nll,
    posterior_means,
    psnr,
    test_elbo,
)
from gentorch.models import VAE

_SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)
_FEW = settings(max_examples=15, deadline=None, derandomize=True)

seeds = st.integers(0, 2**32 - 1)
float_dtypes = st.sampled_from([torch.float32, torch.float64])
sizes = st.none() | st.integers(1, 9)  # batch_size / chunk_size: automatic or given
_LIKELIHOODS: tuple[Literal["bernoulli", "gaussian"], ...] = ("bernoulli", "gaussian")

F32_HALF_ULP = 2.0**-24  # rounding to float32 moves a value by at most this, relatively


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _vae(seed: int, dtype: torch.dtype, likelihood: Literal["bernoulli", "gaussian"]) -> VAE:
    """A tiny VAE (8 -> 6 -> 2) with weights drawn from ``seed``, global RNG left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VAE(8, [6], 2, likelihood).to(dtype)


class _OwnNoise(nn.Module):
    """A VAE drawing its noise from a generator of its own, seeded at construction: two copies
    return the same weights for the same sequence of calls, whatever the global RNG does.
    Records every call as ``(k, x)``."""

    def __init__(self, vae: VAE, seed: int) -> None:
        super().__init__()
        self.vae = vae
        self.generator = _gen(seed)
        self.calls: list[tuple[int, Tensor]] = []

    def log_importance_weights(self, x: Tensor, k: int) -> Tensor:
        self.calls.append((k, x))
        return self.vae.log_importance_weights(x, k, generator=self.generator)

    def elbo(self, x: Tensor) -> Tensor:
        self.calls.append((1, x))
        return self.vae.elbo(x, generator=self.generator)


class _Replay(nn.Module):
    """``log_importance_weights`` returns the next rows of a fixed ``(K, N)`` table for the points
    whose index is ``x[:, 0]``: the estimate must equal a logsumexp over each column."""

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.table = table
        self.offset = torch.zeros(table.shape[1], dtype=torch.long)

    def log_importance_weights(self, x: Tensor, k: int) -> Tensor:
        idx = x[:, 0].long()
        start = int(self.offset[idx[0]])
        assert bool((self.offset[idx] == start).all()), "the points of a batch share their chunk"
        self.offset[idx] += k
        return self.table[start : start + k, idx]


def _index_column(n: int, dtype: torch.dtype) -> Tensor:
    return torch.arange(n, dtype=dtype).unsqueeze(1)


# --- log_likelihood: the streaming logsumexp ---------------------------------------------------


@st.composite
def _weight_tables(draw: st.DrawFn) -> Tensor:
    """``(k, n)`` float64 log-weights: a common level (-1e4 to 1e4) plus up to 50 nats of normal
    spread, some entries -inf (a zero weight), never a whole column."""
    k, n = draw(st.integers(1, 40)), draw(st.integers(1, 7))
    g = _gen(draw(seeds))
    spread = draw(st.floats(0, 50)) * torch.randn(k, n, generator=g, dtype=torch.float64)
    table = draw(st.floats(-1e4, 1e4)) + spread
    zero = torch.rand(k, n, generator=g) < draw(st.sampled_from([0.0, 0.3, 0.9]))
    zero[draw(st.integers(0, k - 1))] = False  # every column keeps a finite weight
    table[zero] = -math.inf
    return table


@_SETTINGS
@given(table=_weight_tables(), batch_size=sizes, chunk_size=sizes, dtype=float_dtypes)
def test_streaming_logsumexp_equals_a_direct_float64_logsumexp(
    table: Tensor, batch_size: int | None, chunk_size: int | None, dtype: torch.dtype
) -> None:
    k, n = table.shape
    weights = table.to(dtype)
    got = log_likelihood(
        _Replay(weights), _index_column(n, dtype), k, batch_size=batch_size, chunk_size=chunk_size
    )
    assert got.shape == (n,)
    assert got.dtype == dtype
    expected = torch.logsumexp(weights.double(), dim=0) - math.log(k)
    if dtype == torch.float64:
        # At most 40 chunks merged by logaddexp, each rounding by ~1 ulp of terms up to 1.0003e4
        # (~2e-12 apiece): 1e-10 absolute is above the sum.
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)
    else:
        # The same float32 weights: the chunks must be merged without further float32 rounding
        # (which grows with the number of chunks), so the estimate is the float64 value rounded
        # once to float32: within half a float32 ulp (<= 2^-24 relative) of it.
        torch.testing.assert_close(got.double(), expected, rtol=F32_HALF_ULP, atol=1e-9)


@_FEW
@given(table=_weight_tables(), column=st.integers(0, 6), chunk_size=sizes)
def test_a_point_without_any_finite_weight_is_reported(
    table: Tensor, column: int, chunk_size: int | None
) -> None:
    k, n = table.shape
    table[:, column % n] = -math.inf  # every weight of that point is zero: log p(x) = -inf
    with pytest.raises(ValueError, match=rf"non-finite estimates for 1 of {n} examples"):
        log_likelihood(_Replay(table), _index_column(n, table.dtype), k, chunk_size=chunk_size)


@st.composite
def _vae_case(draw: st.DrawFn) -> tuple[_OwnNoise, _OwnNoise, Tensor]:
    """Two copies of a tiny VAE that draw the same noise, and ``(N, 8)`` data for it."""
    dtype = draw(float_dtypes)
    likelihood = draw(st.sampled_from(_LIKELIHOODS))
    vae = _vae(draw(seeds), dtype, likelihood)
    noise_seed = draw(seeds)
    n = draw(st.integers(1, 6))
    x = torch.rand(n, 8, generator=_gen(draw(seeds)), dtype=dtype)
    return _OwnNoise(vae, noise_seed), _OwnNoise(vae, noise_seed), x


def _replayed_logsumexp(copy: _OwnNoise, calls: list[tuple[int, Tensor]], k: int) -> Tensor:
    """Direct float64 ``logsumexp_i log w_i - log k`` per point: ``copy`` repeats the recorded
    calls in their order (so it draws the same noise), the weights of each batch of points are
    gathered into one ``(k, B)`` table."""
    estimates, pending, drawn = [], [], 0
    with torch.no_grad():
        for m, xb in calls:
            pending.append(copy.log_importance_weights(xb, m))
            drawn += m
            if drawn == k:  # the batch's k samples are complete: its chunks are done
                weights = torch.cat(pending).double()
                estimates.append(torch.logsumexp(weights, dim=0) - math.log(k))
                pending, drawn = [], 0
    assert drawn == 0, "a batch got fewer than k samples"
    return torch.cat(estimates)


@_SETTINGS
@given(case=_vae_case(), k=st.integers(1, 30), batch_size=sizes, chunk_size=sizes)
def test_vae_log_likelihood_equals_a_direct_logsumexp_with_the_same_noise(
    case: tuple[_OwnNoise, _OwnNoise, Tensor],
    k: int,
    batch_size: int | None,
    chunk_size: int | None,
) -> None:
    model, copy, x = case
    n = x.shape[0]
    got = log_likelihood(model, x, k, batch_size=batch_size, chunk_size=chunk_size)
    # The calls cover each point exactly k times, in consecutive batches and chunks no larger
    # than asked for.
    start = 0
    covered = torch.zeros(n, dtype=torch.long)
    for m, xb in model.calls:
        assert chunk_size is None or m <= chunk_size
        assert batch_size is None or xb.shape[0] <= batch_size
        assert torch.equal(xb, x[start : start + xb.shape[0]])
        covered[start : start + xb.shape[0]] += m
        if int(covered[start]) == k:
            start += xb.shape[0]
    assert start == n
    assert torch.equal(covered, torch.full((n,), k))
    expected = _replayed_logsumexp(copy, model.calls, k)
    assert got.dtype == x.dtype
    if x.dtype == torch.float64:
        # The same float64 weights (|log w| < ~100); at most 30 logaddexp merges of ~1 ulp.
        torch.testing.assert_close(got, expected, rtol=1e-13, atol=1e-13)
    else:
        # The same float32 weights: one rounding of the float64 result to float32 (see above).
        torch.testing.assert_close(got.double(), expected, rtol=F32_HALF_ULP, atol=1e-9)


@_FEW
@given(case=_vae_case(), k=st.integers(1, 8), seed=seeds)
def test_nll_is_the_mean_and_standard_error_of_the_estimates(
    case: tuple[_OwnNoise, _OwnNoise, Tensor], k: int, seed: int
) -> None:
    vae, x = case[0].vae, case[2]
    rng_before = torch.get_rng_state()
    mean, stderr = nll(vae, x, k, progress=False, generator=_gen(seed))
    log_px = log_likelihood(vae, x, k, generator=_gen(seed))
    # The generator seeds the noise without touching the global RNG: same state, same draws.
    assert torch.equal(torch.get_rng_state(), rng_before)
    values = -log_px.double().numpy()
    # Mean and std of <= 6 float64 values: a few ulps apart whatever the summation order.
    assert mean == pytest.approx(float(np.mean(values)), rel=1e-12, abs=1e-12)
    if x.shape[0] == 1:
        assert math.isnan(stderr)  # documented: NaN for a single example
    else:
        sem = float(scipy.stats.sem(values, ddof=1))
        assert stderr == pytest.approx(sem, rel=1e-9, abs=1e-15)


@_SETTINGS
@given(case=_vae_case(), batch_size=st.integers(1, 7))
def test_test_elbo_and_elbo_anomaly_scores_are_the_model_elbo_over_batches(
    case: tuple[_OwnNoise, _OwnNoise, Tensor], batch_size: int
) -> None:
    model, copy, x = case
    n = x.shape[0]
    mean, stderr = test_elbo(model, x, batch_size=batch_size)
    scores = anomaly_scores(model, x, "elbo", batch_size=batch_size)
    # test_elbo's batches, then anomaly_scores': consecutive slices of batch_size examples
    starts = list(range(0, n, batch_size))
    batches = [x[s : s + batch_size] for s in starts] * 2
    assert len(model.calls) == len(batches)
    assert all(torch.equal(xb, b) for (_, xb), b in zip(model.calls, batches, strict=True))
    # Reference: the same calls, in the same order, on a copy that draws the same noise.
    with torch.no_grad():
        values = [copy.vae.elbo(xb, generator=copy.generator) for _, xb in model.calls]
    first, second = torch.cat(values[: len(starts)]), torch.cat(values[len(starts) :])
    assert torch.equal(scores, -second)  # the same numbers, negated
    as_numpy = first.double().numpy()
    # Mean and std of <= 6 values: a few ulps apart whatever the summation order.
    assert mean == pytest.approx(float(np.mean(as_numpy)), rel=1e-12, abs=1e-12)
    if n == 1:
        assert math.isnan(stderr)  # documented: NaN for a single example
    else:
        assert stderr == pytest.approx(float(scipy.stats.sem(as_numpy)), rel=1e-9, abs=1e-15)


@_FEW
@given(case=_vae_case(), k=st.integers(1, 6), seed=seeds, training=st.booleans())
def test_nll_anomaly_scores_are_negative_log_likelihoods_and_the_mode_is_restored(
    case: tuple[_OwnNoise, _OwnNoise, Tensor], k: int, seed: int, training: bool
) -> None:
    vae, x = case[0].vae, case[2]
    vae.train(training)
    scores = anomaly_scores(vae, x, "nll", k=k, generator=_gen(seed))
    assert vae.training is training
    # Same generator state, same calls: the very same numbers, negated.
    assert torch.equal(scores, -log_likelihood(vae, x, k, generator=_gen(seed)))
    assert vae.training is training
    assert not scores.requires_grad


class _Recorder(nn.Module):
    """Every method returns zeros of the right shape and records its ``(samples, x, y)``; the
    data's first column holds each example's index, its labels the same index."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, Tensor, Tensor | None]] = []

    def log_importance_weights(self, x: Tensor, k: int, y: Tensor | None = None) -> Tensor:
        self.calls.append((k, x, y))
        return torch.zeros(k, x.shape[0], dtype=x.dtype)

    def elbo(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        self.calls.append((1, x, y))
        return torch.zeros(x.shape[0], dtype=x.dtype)

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.calls.append((1, x, y))
        return x, x

    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        self.calls.append((1, x, y))
        return x


@_SETTINGS
@given(
    k=st.integers(1, 600),
    n=st.integers(1, 600),
    batch_size=st.none() | st.integers(1, 3000),
    chunk_size=st.none() | st.integers(1, 3000),
)
def test_automatic_sizes_evaluate_about_2048_rows_per_call(
    k: int, n: int, batch_size: int | None, chunk_size: int | None
) -> None:
    model = _Recorder()
    x = _index_column(n, torch.float64)
    log_likelihood(model, x, k, batch_size=batch_size, chunk_size=chunk_size)
    rows = [m * xb.shape[0] for m, xb, _ in model.calls]
    assert sum(rows) == k * n  # every example gets its k samples, no more
    # Documented: sizes left as None are chosen so that a call evaluates about 2048 decoder rows
    # (batch_size * chunk_size). None of them more, unless a given size alone already does ...
    given_alone = min(batch_size or 1, n) * min(chunk_size or 1, k)
    assert max(rows) <= max(2048, given_alone)
    if batch_size is None and chunk_size is None:
        # ... and the first call not much fewer: at least half, or all there is.
        assert rows[0] >= min(1024, k * n)


@_SETTINGS
@given(n=st.integers(1, 9), batch_size=st.integers(1, 10), k=st.integers(1, 5))
def test_labels_reach_the_model_with_their_examples(n: int, batch_size: int, k: int) -> None:
    model = _Recorder()
    x = _index_column(n, torch.float64)
    labels = torch.arange(n)
    log_likelihood(model, x, k, batch_size=batch_size, labels=labels)
    test_elbo(model, x, batch_size=batch_size, labels=labels)
    anomaly_scores(model, x, batch_size=batch_size, labels=labels)
    posterior_means(model, x, batch_size=batch_size, labels=labels)
    denoise(model, x, batch_size=batch_size, labels=labels)
    kl_per_dimension(model, x, batch_size=batch_size, labels=labels)
    assert len(model.calls) >= 5
    for _, xb, yb in model.calls:
        assert yb is not None
        assert torch.equal(yb, xb[:, 0].long())  # each example's own label, whatever the batch


class _Failing(nn.Module):
    """Draws from the global RNG, then fails, in the middle of an evaluation."""

    def log_importance_weights(self, x: Tensor, k: int) -> Tensor:
        torch.rand(3)
        raise RuntimeError("model failure")

    def elbo(self, x: Tensor) -> Tensor:
        return self.log_importance_weights(x, 1)


@_FEW
@given(training=st.booleans(), seed=seeds, which=st.sampled_from(["nll", "elbo"]))
def test_a_failing_model_keeps_its_mode_and_the_global_rng(
    training: bool, seed: int, which: str
) -> None:
    model = _Failing().train(training)
    state = torch.get_rng_state()
    x = torch.rand(3, 2, generator=_gen(seed))
    run = (
        (lambda: nll(model, x, 2, progress=False, generator=_gen(seed)))
        if which == "nll"
        else (lambda: test_elbo(model, x, generator=_gen(seed)))
    )
    with pytest.raises(RuntimeError, match="model failure"):
        run()
    assert model.training is training
    # With a generator the block's draws come from a fork of the global RNG: left as it was.
    assert torch.equal(torch.get_rng_state(), state)


# --- bad input to the VAE evaluations ----------------------------------------------------------


@_FEW
@given(
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3),
    k=st.integers(1, 3),
)
def test_images_that_are_not_a_nonempty_matrix_are_a_named_value_error(
    shape: tuple[int, ...], k: int
) -> None:
    assume(len(shape) != 2 or shape[0] == 0)
    vae = _vae(0, torch.float32, "bernoulli")
    images = torch.zeros(shape)
    pattern = r"^images: expected (shape \(N, D\)|at least one example)"
    for call in (
        lambda: log_likelihood(vae, images, k),
        lambda: test_elbo(vae, images),
        lambda: anomaly_scores(vae, images),
        lambda: posterior_means(vae, images),
    ):
        with pytest.raises(ValueError, match=pattern):
            call()


@_FEW
@given(
    k=st.one_of(st.integers(-3, 0), st.booleans(), st.floats(0.5, 3), st.none()),
    which=st.sampled_from(["k", "batch_size", "chunk_size"]),
)
def test_sizes_that_are_not_positive_ints_are_named(k: object, which: str) -> None:
    vae = _vae(0, torch.float32, "bernoulli")
    kwargs: dict[str, Any] = {"k": 2, which: k}
    if which != "k" and k is None:
        return  # None means "automatic" for the two sizes
    expected = ValueError if isinstance(k, int) and not isinstance(k, bool) else TypeError
    with pytest.raises(expected, match=rf"^{which}: expected a positive integer"):
        log_likelihood(vae, torch.rand(3, 8), **kwargs)


# --- posterior means, active units and KL per dimension -----------------------------------------


class _ChosenPosterior(nn.Module):
    """``encode(x) = (x[:, :L], x[:, L:])``: the test chooses the posterior parameters."""

    def __init__(self, latent: int) -> None:
        super().__init__()
        self.latent = latent

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x[:, : self.latent], x[:, self.latent :]


@st.composite
def _posteriors(draw: st.DrawFn) -> tuple[Tensor, Tensor]:
    """``(mu, logvar)``, each ``(N, L)``, N in 2..9, in float32 or float64; |logvar| <= 10."""
    n, latent = draw(st.integers(2, 9)), draw(st.integers(1, 4))
    dtype = draw(float_dtypes)
    scale = draw(st.sampled_from([1e-3, 0.1, 1.0, 5.0]))  # posterior means spread this much
    mu = draw(hnp.arrays(np.float64, (n, latent), elements=st.floats(-1, 1))) * scale
    logvar = draw(hnp.arrays(np.float64, (n, latent), elements=st.floats(-10, 10)))
    return torch.from_numpy(mu).to(dtype), torch.from_numpy(logvar).to(dtype)


@_SETTINGS
@given(post=_posteriors(), threshold=st.floats(0, 2), batch_size=st.integers(1, 10))
def test_active_units_counts_unbiased_variances_above_the_threshold(
    post: tuple[Tensor, Tensor], threshold: float, batch_size: int
) -> None:
    mu, logvar = post
    model = _ChosenPosterior(mu.shape[1])
    variances = np.var(mu.double().numpy(), axis=0, ddof=1)
    # Stay clear of knife edges: numpy and torch may differ by a few ulps of the variance.
    assume(bool(np.all(np.abs(variances - threshold) > 1e-12 * (1 + variances))))
    count = active_units(model, torch.cat([mu, logvar], 1), threshold, batch_size=batch_size)
    assert count == int((variances > threshold).sum())
    assert 0 <= count <= mu.shape[1]


@_FEW
@given(post=_posteriors())
def test_a_unit_is_active_only_strictly_above_the_threshold(post: tuple[Tensor, Tensor]) -> None:
    mu, logvar = post
    x = torch.cat([mu, logvar], 1)
    model = _ChosenPosterior(mu.shape[1])
    variances = mu.double().var(dim=0, unbiased=True)
    largest = float(variances.max())
    assert active_units(model, x, largest) == 0  # "A_j > threshold", not >=
    assert active_units(model, x, 0.0) == int((variances > 0).sum())
    counts = [active_units(model, x, t) for t in sorted(variances.tolist())]
    assert counts == sorted(counts, reverse=True)  # non-increasing in the threshold


@_SETTINGS
@given(post=_posteriors(), batch_size=st.integers(1, 10), perm_seed=seeds)
def test_kl_per_dimension_matches_torch_distributions(
    post: tuple[Tensor, Tensor], batch_size: int, perm_seed: int
) -> None:
    mu, logvar = post
    model = _ChosenPosterior(mu.shape[1])
    x = torch.cat([mu, logvar], 1)
    got = kl_per_dimension(model, x, batch_size=batch_size)
    assert got.shape == (mu.shape[1],)
    assert got.dtype == torch.float64
    mu64, lv64 = mu.double(), logvar.double()
    expected = kl_divergence(Normal(mu64, (0.5 * lv64).exp()), Normal(0.0, 1.0)).mean(0)
    # Terms up to e^10 ~ 2.2e4: torch's form loses a few ulps of them near var = 1 (as in the
    # losses' tests), ~1e-11 absolute.
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    assert bool((got >= 0).all())
    # The order of the examples does not matter (a mean): rounding of <= 9 terms only.
    perm = torch.randperm(mu.shape[0], generator=_gen(perm_seed))
    torch.testing.assert_close(
        kl_per_dimension(model, x[perm], batch_size=batch_size), got, rtol=1e-13, atol=1e-13
    )


@_FEW
@given(case=_vae_case(), batch_size=st.integers(1, 7))
def test_posterior_means_and_denoise_do_not_depend_on_the_batch_size(
    case: tuple[_OwnNoise, _OwnNoise, Tensor], batch_size: int
) -> None:
    vae, x = case[0].vae, case[2]
    with torch.no_grad():
        mu = vae.encode(x)[0]
        recon = vae.reconstruct(x)
    got_mu = posterior_means(vae, x, batch_size=batch_size)
    got_recon = denoise(vae, x, batch_size=batch_size)
    assert got_mu.shape == mu.shape
    assert got_recon.shape == x.shape
    # Deterministic maps: only the matmul blocking may change with the number of rows, a few
    # ulps of values of order 1 (float32: ~1e-6, float64: ~1e-15).
    tol = 1e-5 if x.dtype == torch.float32 else 1e-13
    torch.testing.assert_close(got_mu, mu, rtol=tol, atol=tol)
    torch.testing.assert_close(got_recon, recon, rtol=tol, atol=tol)


# --- psnr --------------------------------------------------------------------------------------

_psnr_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)
_moderate = st.just(0.0) | st.floats(1e-6, 2) | st.floats(-2, -1e-6)


@st.composite
def _image_pairs(draw: st.DrawFn, tiny: bool = False) -> tuple[Tensor, Tensor]:
    """``(clean, reconstructed)`` float64 of one shape; each element of the difference is 0, of
    a moderate size (1e-6 <= |d| <= 2) or, if ``tiny``, anything down to the smallest
    subnormal (moderate values keep scalings by 2^-900 to 2^1000 exact)."""
    shape = draw(_psnr_shapes)
    clean = draw(hnp.arrays(np.float64, shape, elements=_moderate))
    sizes = _moderate
    if tiny:  # only zeros and differences whose squares underflow float64
        sizes = st.just(0.0) | st.floats(5e-324, 1e-155) | st.floats(-1e-155, -5e-324)
        clean = np.zeros(shape)  # keep tiny differences representable in the sum
    delta = draw(hnp.arrays(np.float64, shape, elements=sizes))
    return torch.from_numpy(clean), torch.from_numpy(clean + delta)


@_SETTINGS
@given(pair=_image_pairs(), data_range=st.floats(0.01, 300), dtype=float_dtypes)
def test_psnr_matches_the_numpy_formula(
    pair: tuple[Tensor, Tensor], data_range: float, dtype: torch.dtype
) -> None:
    clean, recon = (t.to(dtype) for t in pair)
    a, b = clean.double().numpy(), recon.double().numpy()
    mse = float(np.mean((a - b) ** 2))
    got = psnr(clean, recon, data_range)
    assert type(got) is float
    if mse == 0.0:
        assert got == math.inf
    else:
        # MSE of <= 125 float64 squares in another order: relative error ~1e-14, i.e. ~1e-13 dB
        # after 10 log10.
        assert got == pytest.approx(10 * math.log10(data_range**2 / mse), rel=1e-12, abs=1e-11)
    # Symmetric: the differences are negated exactly, their squares equal.
    assert psnr(recon, clean, data_range) == got


@_SETTINGS
@given(pair=_image_pairs(tiny=True))
def test_psnr_is_infinite_exactly_when_the_tensors_are_equal(pair: tuple[Tensor, Tensor]) -> None:
    clean, recon = pair
    got = psnr(clean, recon)
    if torch.equal(clean, recon):
        assert got == math.inf
    else:
        # Documented: inf "when the tensors are equal"; differences below 1e-154 square to 0 in
        # float64, which must not pass for equality.
        assert math.isfinite(got)
        largest = float((clean - recon).abs().max())
        # 1 / n <= MSE / max|d|^2 <= 1: the PSNR lies within 10 log10(n) dB of -20 log10(max|d|)
        bound = -20 * math.log10(largest)
        assert bound - 1e-9 <= got <= bound + 10 * math.log10(clean.numel()) + 1e-9


@_SETTINGS
@given(pair=_image_pairs(), exponent=st.integers(-900, 1000), data_range=st.floats(0.1, 10))
def test_psnr_is_invariant_when_data_and_range_scale_together(
    pair: tuple[Tensor, Tensor], exponent: int, data_range: float
) -> None:
    clean, recon = pair
    assume(not torch.equal(clean, recon))
    # Exact in float64: the same mantissas, all scaled values normal and finite (2^-900 times
    # differences >= ~1e-22 stays above 1e-300; 2^1000 times values < 8 below 2^1024).
    scale = 2.0**exponent
    got = psnr(clean * scale, recon * scale, data_range * scale)
    # log10 of numbers up to 2^1003 carries ~1003 log10(2) * eps ~ 7e-14 of rounding per term.
    assert got == pytest.approx(psnr(clean, recon, data_range), rel=1e-12, abs=1e-11)
    # and, with the data fixed, 20 log10(R) dB per unit of range
    expected_shift = 20 * math.log10(scale)
    assert psnr(clean, recon, data_range * scale) - psnr(clean, recon, data_range) == (
        pytest.approx(expected_shift, rel=1e-12, abs=1e-10)
    )


@_FEW
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3),
    data_range=st.one_of(
        st.floats(max_value=0), st.just(math.inf), st.just(math.nan), st.booleans()
    ),
)
def test_psnr_bad_input_is_a_named_error(shape: tuple[int, ...], data_range: float) -> None:
    a = torch.zeros(shape)
    if a.numel() == 0:
        with pytest.raises(ValueError, match=r"^clean: expected a non-empty tensor"):
            psnr(a, a)
        return
    with pytest.raises(ValueError, match=r"^data_range: expected a positive finite number"):
        psnr(a, a + 1, data_range)
    with pytest.raises(ValueError, match=r"^clean and reconstructed: expected the same shape"):
        psnr(a, a.reshape(-1, 1, 1, 1))
    bad = a.clone().reshape(-1)
    bad[-1] = math.nan
    with pytest.raises(ValueError, match=r"^reconstructed: expected finite values"):
        psnr(a.reshape(-1), bad)
    # finite values whose difference is beyond float64 (the only PSNR it cannot express)
    huge = torch.full(shape, 1e308, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^clean and reconstructed: their difference overflows"):
        psnr(huge, -huge)


# --- anomaly_auc -------------------------------------------------------------------------------


def _pair_count_auc(scores: list[Any], labels: list[bool]) -> float:
    """P(score of an anomaly > score of a normal example), ties one half, over every pair."""
    pos = [s for s, a in zip(scores, labels, strict=True) if a]
    neg = [s for s, a in zip(scores, labels, strict=True) if not a]
    wins = sum(2 * (p > q) + (p == q) for p in pos for q in neg)
    return float(wins / (2 * len(pos) * len(neg)))


@st.composite
def _labelled(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> tuple[list[Any], list[bool]]:
    """Scores (from ``values``, ties likely) and labels with both classes present."""
    n = draw(st.integers(2, 14))
    scores = draw(st.lists(values, min_size=n, max_size=n))
    labels = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    assume(0 < sum(labels) < n)
    return scores, labels


_tied_floats = st.sampled_from([-1.5, 0.0, 0.25, 3.0]) | st.floats(-1e6, 1e6, width=32)


@_SETTINGS
@given(case=_labelled(_tied_floats), dtype=float_dtypes)
def test_anomaly_auc_counts_ranked_pairs_with_ties_as_halves(
    case: tuple[list[float], list[bool]], dtype: torch.dtype
) -> None:
    scores, labels = case
    s = torch.tensor(scores, dtype=dtype)  # float32-representable: the same values in both
    y = torch.tensor(labels)
    got = anomaly_auc(s, y)
    expected = _pair_count_auc(scores, labels)
    # Exact rationals with a denominator <= 2 * 7 * 7: sklearn's trapezoids round to ~1e-16.
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    pos = [a for a, b in zip(scores, labels, strict=True) if b]
    neg = [a for a, b in zip(scores, labels, strict=True) if not b]
    u = scipy.stats.mannwhitneyu(pos, neg).statistic
    assert got == pytest.approx(u / (len(pos) * len(neg)), rel=1e-12, abs=1e-15)
    # The label dtype does not matter: bool, 0/1 integers or floats.
    for as_dtype in (torch.int64, torch.uint8, torch.float32):
        assert anomaly_auc(s, y.to(as_dtype)) == got
    # Reversing the scores swaps wins and losses; ties stay halves.
    assert anomaly_auc(-s, y) == pytest.approx(1 - got, rel=1e-12, abs=1e-15)
    # An exact increasing map (a power of two) keeps every comparison.
    assert anomaly_auc(s * 1024, y) == got


@_SETTINGS
@given(case=_labelled(st.integers(-(2**62), 2**62) | st.integers(2**53, 2**53 + 4)))
def test_anomaly_auc_is_exact_for_integer_scores(case: tuple[list[int], list[bool]]) -> None:
    # int64 scores beyond 2^53 are distinct integers that float64 would merge into ties.
    scores, labels = case
    got = anomaly_auc(torch.tensor(scores, dtype=torch.int64), torch.tensor(labels))
    assert got == pytest.approx(_pair_count_auc(scores, labels), rel=1e-12, abs=1e-15)


@_FEW
@given(n_normal=st.integers(1, 6), n_anomalies=st.integers(1, 6), gap=st.floats(1e-6, 10))
def test_anomaly_auc_of_separated_scores_is_one_or_zero(
    n_normal: int, n_anomalies: int, gap: float
) -> None:
    normal = torch.linspace(-1, 0, n_normal, dtype=torch.float64)
    anomalies = torch.linspace(gap, gap + 1, n_anomalies, dtype=torch.float64)
    labels = torch.tensor([False] * n_normal + [True] * n_anomalies)
    scores = torch.cat([normal, anomalies])
    assert anomaly_auc(scores, labels) == 1.0
    assert anomaly_auc(-scores, labels) == 0.0
    assert anomaly_auc(torch.zeros_like(scores), labels) == 0.5  # all tied: chance


@_FEW
@given(n=st.integers(0, 6), all_anomalies=st.booleans())
def test_anomaly_auc_needs_both_classes(n: int, all_anomalies: bool) -> None:
    labels = torch.full((n,), all_anomalies)
    with pytest.raises(ValueError, match=r"^is_anomaly: expected both anomalies and normal"):
        anomaly_auc(torch.rand(n), labels)
