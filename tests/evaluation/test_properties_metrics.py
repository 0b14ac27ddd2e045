"""Property-based tests (hypothesis) of the sample-quality metrics and the LeNet that feeds them.

Random sizes, scales, dtypes and seeds (``derandomize=True``: the same examples on every run):

- ``frechet_distance`` against two independent references in float64: the nuclear norm of
  ``Xa Xb^T`` (``tr((S_a S_b)^{1/2})`` without any matrix square root, via numpy's SVD) and
  ``scipy.linalg.sqrtm``; symmetry, invariance under translations, rotations and the order of
  the rows, exact scaling by powers of two at any magnitude, ~0 from a set to itself, every
  real dtype, and the named errors of its docstring.
- ``inception_score`` against ``scipy.stats.entropy``, its documented range ``[1, K]`` (and
  ``<= N``), its extremes and its invariances.
- ``classifier_features`` / ``classifier_probabilities`` / ``fld`` /
  ``classifier_inception_score`` / ``classifier_accuracy``: independent of the batch size and
  of the input layout, consistent with each other and with a direct forward pass.
- The classifier's helpers: the random shift against a brute-force translation, and a
  save/load round trip of random sizes and metadata.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import Tensor

from gentorch.evaluation import (
    LeNet,
    classifier_accuracy,
    classifier_features,
    classifier_inception_score,
    classifier_probabilities,
    fld,
    frechet_distance,
    inception_score,
    load_classifier,
    save_classifier,
)
from gentorch.evaluation.classifier import _random_shift

_SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)
_FEW = settings(max_examples=10, deadline=None, derandomize=True)

seeds = st.integers(0, 2**32 - 1)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- frechet_distance --------------------------------------------------------------------------


@st.composite
def _feature_sets(draw: st.DrawFn, min_rows: int = 2) -> tuple[Tensor, Tensor]:
    """Two float64 sets ``(N_a, D)`` and ``(N_b, D)``, D in 1..6, N in ``min_rows``..12 (so
    singular covariances when N <= D), correlated features, scales 1e-3 to 1e3, offset means."""
    d = draw(st.integers(1, 6))
    n_a, n_b = draw(st.integers(min_rows, 12)), draw(st.integers(min_rows, 12))
    g = _gen(draw(seeds))
    scale = 10.0 ** draw(st.floats(-3, 3))
    mixing = torch.eye(d, dtype=torch.float64) + 0.5 * torch.randn(d, d, generator=g).double()
    a = torch.randn(n_a, d, generator=g, dtype=torch.float64) @ mixing * scale
    spread_b = draw(st.floats(0.1, 3))
    b = torch.randn(n_b, d, generator=g, dtype=torch.float64) * spread_b * scale
    b = b + draw(st.floats(0, 2)) * scale * torch.randn(d, generator=g, dtype=torch.float64)
    return a, b


def _nuclear_reference(a: Tensor, b: Tensor) -> tuple[float, float]:
    """``(d^2, T)``: the distance through ``tr((S_a S_b)^{1/2}) = ||Xa Xb^T||_* /
    sqrt((N_a - 1)(N_b - 1))`` with centred data ``X`` (the eigenvalues of ``S_a S_b`` are the
    squared singular values of that matrix), and the scale ``T = ||mu_a - mu_b||^2 + tr(S_a) +
    tr(S_b)`` of the terms that cancel."""
    x, y = a.numpy(), b.numpy()
    xa, xb = x - x.mean(0), y - y.mean(0)
    na, nb = x.shape[0], y.shape[0]
    nuclear = np.linalg.svd(xa @ xb.T, compute_uv=False).sum() / math.sqrt((na - 1) * (nb - 1))
    diff = x.mean(0) - y.mean(0)
    terms = float(diff @ diff + (xa**2).sum() / (na - 1) + (xb**2).sum() / (nb - 1))
    return terms - 2 * float(nuclear), terms


# The square roots of eigenvalues near 0 (singular or nearly singular covariances) turn their
# rounding, ~eps * T^2 for a matrix of norm <= T^2, into errors of ~sqrt(eps) * T = 1.5e-8 T
# each, at most D = 6 of them (~1e-7 T); away from singular covariances the error is ~1e-13 T
# (both measured over 3000 random sets: at most 1e-8 T and 2e-13 T).
_REL_T = 2e-7


@_SETTINGS
@given(sets=_feature_sets())
def test_frechet_distance_matches_the_nuclear_norm_reference(sets: tuple[Tensor, Tensor]) -> None:
    a, b = sets
    expected, scale = _nuclear_reference(a, b)
    got = frechet_distance(a, b)
    assert type(got) is float
    assert got >= 0.0
    assert abs(got - expected) <= _REL_T * scale
    # Symmetric in its arguments (the same formula with the roles swapped): the same bound.
    assert abs(frechet_distance(b, a) - got) <= _REL_T * scale


@_SETTINGS
@given(sets=_feature_sets(min_rows=9))
def test_frechet_distance_matches_scipy_sqrtm_for_full_rank_covariances(
    sets: tuple[Tensor, Tensor],
) -> None:
    a, b = sets
    assume(a.shape[1] < min(a.shape[0], b.shape[0]) - 1)  # full rank (almost surely)
    x, y = a.numpy(), b.numpy()
    cov_a = np.atleast_2d(np.cov(x, rowvar=False))
    cov_b = np.atleast_2d(np.cov(y, rowvar=False))
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real  # the FID reference implementation's route
    diff = x.mean(0) - y.mean(0)
    expected = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root)
    _, scale = _nuclear_reference(a, b)
    # sqrtm of a non-symmetric product: error ~cond * eps; N >= D + 2 random rows keep the
    # covariances far from singular (observed 2.5e-13 T; the bound above covers both routes).
    assert abs(frechet_distance(a, b) - expected) <= _REL_T * scale


@_SETTINGS
@given(sets=_feature_sets(), perm_seed=seeds, shift=st.floats(-100, 100))
def test_frechet_distance_is_invariant_under_rigid_motions_and_row_order(
    sets: tuple[Tensor, Tensor], perm_seed: int, shift: float
) -> None:
    a, b = sets
    d = a.shape[1]
    g = _gen(perm_seed)
    _, scale = _nuclear_reference(a, b)
    base = frechet_distance(a, b)
    # The same translation of both sets (c up to 100x their scale: rounding of a + c loses
    # ~eps |c| per value, far below the tolerance), the same rotation, shuffled rows.
    c = shift * math.sqrt(scale) * torch.randn(d, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    pa, pb = torch.randperm(a.shape[0], generator=g), torch.randperm(b.shape[0], generator=g)
    assert abs(frechet_distance(a + c, b + c) - base) <= _REL_T * scale
    assert abs(frechet_distance(a @ q, b @ q) - base) <= _REL_T * scale
    assert abs(frechet_distance(a[pa], b[pb]) - base) <= _REL_T * scale


@_SETTINGS
@given(sets=_feature_sets(), exponent=st.integers(-400, 400))
def test_frechet_distance_scales_exactly_with_powers_of_two(
    sets: tuple[Tensor, Tensor], exponent: int
) -> None:
    # d^2 is quadratic in the features. Multiplying them by 2^j changes no mantissa (values stay
    # between ~1e-130 and ~1e130, normal and finite, and so do their squares), so the result
    # must be 4^j times the unscaled one, up to a few ulps, at any magnitude. (Products of four
    # features, as in S_a^{1/2} S_b S_a^{1/2}, would overflow from 2^256 and underflow below
    # 2^-256 without care.)
    a, b = sets
    base = frechet_distance(a, b)
    factor = 2.0**exponent
    scaled = frechet_distance(a * factor, b * factor)
    assert scaled == pytest.approx(base * factor * factor, rel=1e-12, abs=0)


@_SETTINGS
@given(sets=_feature_sets())
def test_frechet_distance_of_a_set_to_itself_is_zero(sets: tuple[Tensor, Tensor]) -> None:
    a, _ = sets
    _, scale = _nuclear_reference(a, a)
    # Same means, tr(S) + tr(S) - 2 tr((S^{1/2} S S^{1/2})^{1/2}): only rounding is left, with
    # the sqrt amplification near zero eigenvalues of the bound above.
    assert 0.0 <= frechet_distance(a, a) <= _REL_T * scale
    assert 0.0 <= frechet_distance(a, a.clone()) <= _REL_T * scale


_REAL_DTYPES = [
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
]


@_SETTINGS
@given(
    d=st.integers(1, 4),
    n_a=st.integers(2, 6),
    n_b=st.integers(2, 6),
    dtype=st.sampled_from(_REAL_DTYPES),
    data=st.data(),
)
def test_frechet_distance_accepts_every_real_dtype_as_its_float64_values(
    d: int, n_a: int, n_b: int, dtype: torch.dtype, data: st.DataObject
) -> None:
    # Small integers are exact in every dtype: the distance must be that of the float64 values
    # (the docstring's TypeError is for tensors that are "not real").
    values = st.integers(0, 100)
    a = torch.tensor(data.draw(hnp.arrays(np.int64, (n_a, d), elements=values))).to(dtype)
    b = torch.tensor(data.draw(hnp.arrays(np.int64, (n_b, d), elements=values))).to(dtype)
    assert frechet_distance(a, b) == frechet_distance(a.double(), b.double())


@_SETTINGS
@given(
    shape_a=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3),
    shape_b=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3),
)
def test_frechet_distance_names_the_argument_of_a_bad_shape(
    shape_a: tuple[int, ...], shape_b: tuple[int, ...]
) -> None:
    def valid(shape: tuple[int, ...]) -> bool:
        return len(shape) == 2 and shape[0] >= 2 and shape[1] >= 1

    a, b = torch.zeros(shape_a), torch.zeros(shape_b)
    if not valid(shape_a):
        with pytest.raises(ValueError, match=r"^features_a: (expected|need at least 2)"):
            frechet_distance(a, b)
    elif not valid(shape_b):
        with pytest.raises(ValueError, match=r"^features_b: (expected|need at least 2)"):
            frechet_distance(a, b)
    elif shape_a[1] != shape_b[1]:
        with pytest.raises(ValueError, match=r"^features_a and features_b: feature dimensions"):
            frechet_distance(a, b)
    else:
        assert frechet_distance(a, b) == 0.0  # constant features: every term is exactly 0


@_FEW
@given(which=st.sampled_from(["features_a", "features_b"]), bad=st.sampled_from(["nan", "inf"]))
def test_frechet_distance_names_non_finite_and_non_real_features(which: str, bad: str) -> None:
    good = torch.rand(4, 3)
    broken = good.clone()
    broken[2, 1] = float(bad)
    args = (broken, good) if which == "features_a" else (good, broken)
    with pytest.raises(ValueError, match=rf"^{which}: contains NaN or Inf"):
        frechet_distance(*args)
    for dtype in (torch.complex64, torch.bool):
        odd = (good.to(dtype), good) if which == "features_a" else (good, good.to(dtype))
        with pytest.raises(TypeError, match=rf"^{which}: expected a real-valued tensor"):
            frechet_distance(*odd)


# --- inception_score ---------------------------------------------------------------------------


@st.composite
def _probabilities(draw: st.DrawFn) -> Tensor:
    """``(N, K)`` rows of a softmax (float32 or float64), some nearly one-hot, some flat."""
    n, k = draw(st.integers(1, 8)), draw(st.integers(1, 6))
    temperature = draw(st.sampled_from([0.0, 0.1, 1.0, 10.0, 60.0]))
    logits = temperature * torch.randn(n, k, generator=_gen(draw(seeds)), dtype=torch.float64)
    return torch.softmax(logits, dim=1).to(draw(st.sampled_from([torch.float32, torch.float64])))


@_SETTINGS
@given(probs=_probabilities(), perm_seed=seeds)
def test_inception_score_matches_scipy_and_its_invariances(probs: Tensor, perm_seed: int) -> None:
    n, k = probs.shape
    p = probs.double().numpy()
    # scipy.stats.entropy normalises its arguments; the float32 rows are 1 within ~1e-7.
    p = p / p.sum(1, keepdims=True)
    marginal = p.mean(0)
    expected = math.exp(float(np.mean([scipy.stats.entropy(row, marginal) for row in p])))
    got = inception_score(probs)
    assert type(got) is float
    # float64 rows: rounding only (~1e-15). float32 rows may sum to 1 +- 6e-7 (they are not
    # renormalised), which moves each KL by about that much times log of the largest ratio
    # (<= ~100 for float32): 1e-4 covers it.
    rel = 1e-12 if probs.dtype == torch.float64 else 1e-4
    assert got == pytest.approx(expected, rel=rel)
    # Documented range [1, K], exactly; the score is exp(mutual information) <= N too.
    assert 1.0 <= got <= k
    assert got <= n * (1 + rel)
    g = _gen(perm_seed)
    rows, cols = torch.randperm(n, generator=g), torch.randperm(k, generator=g)
    # Neither the order of the examples nor the names of the classes matter, and a set counted
    # twice has the same p(y) and the same mean KL (a mean over a different number of terms).
    assert inception_score(probs[rows]) == pytest.approx(got, rel=1e-12)
    assert inception_score(probs[:, cols]) == pytest.approx(got, rel=1e-12)
    assert inception_score(torch.cat([probs, probs])) == pytest.approx(got, rel=1e-12)


@_SETTINGS
@given(k=st.integers(1, 9), copies=st.integers(1, 4), seed=seeds)
def test_inception_score_extremes_one_hot_and_identical_rows(
    k: int, copies: int, seed: int
) -> None:
    perm = torch.randperm(k * copies, generator=_gen(seed))
    one_hot = torch.eye(k).repeat(copies, 1)[perm]  # every class equally often
    # Documented: K for one-hot rows of equally frequent classes. exp(log K) is K within an ulp
    # or two; it must not exceed K (the documented range).
    assert inception_score(one_hot) == pytest.approx(float(k), rel=4e-16)
    assert inception_score(one_hot) <= k
    row = torch.softmax(torch.randn(k, generator=_gen(seed), dtype=torch.float64), 0)
    assert inception_score(row.expand(copies, k)) == pytest.approx(1.0, abs=1e-15)
    assert inception_score(row.expand(copies, k)) >= 1.0


@_FEW
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3),
    offset=st.floats(-0.5, 0.5).filter(lambda v: abs(v) > 1e-3),
)
def test_inception_score_refuses_what_is_not_a_probability_table(
    shape: tuple[int, ...], offset: float
) -> None:
    t = torch.full(shape, 0.5)
    if len(shape) != 2 or 0 in shape:
        with pytest.raises(ValueError, match=r"^probs: expected shape \(N, K\)"):
            inception_score(t)
        return
    rows = torch.softmax(torch.randn(shape), dim=1)
    with pytest.raises(ValueError, match=r"^probs: expected non-negative rows that sum to 1"):
        inception_score(rows + offset / shape[1])  # rows summing to 1 + offset
    with pytest.raises(TypeError, match=r"^probs: expected real probabilities"):
        inception_score(rows.to(torch.complex64))
    rows[0, 0] = math.nan
    with pytest.raises(ValueError, match=r"^probs: expected finite values"):
        inception_score(rows)


# --- the classifier and the metrics built on it ------------------------------------------------


def _lenet(seed: int, num_classes: int = 10, feature_dim: int = 16) -> LeNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LeNet(num_classes=num_classes, feature_dim=feature_dim)


@_FEW
@given(
    seed=seeds,
    n=st.integers(1, 6),
    batch_size=st.integers(1, 7),
    flat=st.booleans(),
    training=st.booleans(),
)
def test_classifier_outputs_do_not_depend_on_batching_layout_or_mode(
    seed: int, n: int, batch_size: int, flat: bool, training: bool
) -> None:
    net = _lenet(seed, num_classes=4)
    x = torch.rand(n, 1, 28, 28, generator=_gen(seed))
    with torch.no_grad():
        net.eval()
        feats, logits = net.features(x), net(x)
    net.train(training)
    images = x.reshape(n, 784) if flat else x
    got_feats = classifier_features(net, images, batch_size=batch_size)
    got_probs = classifier_probabilities(net, images, batch_size=batch_size)
    assert net.training is training  # the mode is restored
    # Eval mode (no dropout) in float32: only the blocking of the convolutions may change with
    # the batch size, ~1e-7 on values of order 1.
    torch.testing.assert_close(got_feats, feats, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_probs, torch.softmax(logits, 1), rtol=1e-5, atol=1e-6)
    assert bool((got_feats >= 0).all())
    # Rows of a float32 softmax over 4 classes sum to 1 within a few float32 ulps.
    torch.testing.assert_close(got_probs.sum(1), torch.ones(n), rtol=0, atol=4 * 2.0**-23)
    assert classifier_inception_score(net, images, batch_size=batch_size) == inception_score(
        got_probs
    )


@_FEW
@given(seed=seeds, n_real=st.integers(2, 5), n_fake=st.integers(2, 5), batch_size=st.integers(1, 6))
def test_fld_is_the_frechet_distance_of_the_features(
    seed: int, n_real: int, n_fake: int, batch_size: int
) -> None:
    net = _lenet(seed)
    g = _gen(seed)
    real = torch.rand(n_real, 784, generator=g)
    fake = torch.rand(n_fake, 784, generator=g) ** 2
    got = fld(net, real, fake, batch_size=batch_size)
    expected = frechet_distance(
        classifier_features(net, real, batch_size=batch_size),
        classifier_features(net, fake, batch_size=batch_size),
    )
    assert got == expected  # the same features, the same function
    assert got >= 0
    feats = classifier_features(net, real)
    _, scale = _nuclear_reference(feats.double(), feats.double())
    # A set against itself: ~0 within the Fréchet tolerance of the scale of its features.
    assert fld(net, real, real, batch_size=batch_size) <= _REL_T * scale


@_FEW
@given(seed=seeds, n=st.integers(1, 6), batch_size=st.integers(1, 7), k=st.integers(2, 5))
def test_classifier_accuracy_counts_argmax_agreements(
    seed: int, n: int, batch_size: int, k: int
) -> None:
    net = _lenet(seed, num_classes=k)
    g = _gen(seed)
    x = torch.rand(n, 784, generator=g)
    labels = torch.randint(0, k, (n,), generator=g)
    with torch.no_grad():
        predicted = net.eval()(x.view(n, 1, 28, 28)).argmax(1)
    expected = sum(int(p) == int(y) for p, y in zip(predicted, labels, strict=True)) / n
    assert classifier_accuracy(net, x, labels, batch_size=batch_size) == expected
    assert classifier_accuracy(net, x, predicted, batch_size=batch_size) == 1.0


@_SETTINGS
@given(
    seed=seeds,
    batch=st.integers(1, 3),
    channels=st.integers(1, 2),
    side=st.integers(1, 6),
    max_shift=st.integers(0, 3),
)
def test_random_shift_translates_each_image_with_zero_fill(
    seed: int, batch: int, channels: int, side: int, max_shift: int
) -> None:
    x = torch.rand(batch, channels, side, side + 1, generator=_gen(seed))
    got = _random_shift(x, max_shift, _gen(seed + 1))
    assert got.shape == x.shape
    if max_shift == 0:
        assert got is x
        return
    # The same draws: per image a row and column offset in [0, 2 max_shift]; the image moves by
    # max_shift - offset pixels, what enters is zero.
    shifts = torch.randint(0, 2 * max_shift + 1, (batch, 2), generator=_gen(seed + 1))
    expected = torch.zeros_like(x)
    h, w = x.shape[2:]
    for i in range(batch):
        dy, dx = (int(v) - max_shift for v in shifts[i])  # out[r, c] = x[r + dy, c + dx]
        for r in range(h):
            for c in range(w):
                if 0 <= r + dy < h and 0 <= c + dx < w:
                    expected[i, :, r, c] = x[i, :, r + dy, c + dx]
    assert torch.equal(got, expected)


@_FEW
@given(
    seed=seeds,
    num_classes=st.integers(1, 12),
    feature_dim=st.integers(1, 20),
    metadata=st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda key: key not in ("gentorch_model", "config")),
        st.text(max_size=12),
        max_size=3,
    ),
)
def test_save_and_load_classifier_round_trip(
    seed: int, num_classes: int, feature_dim: int, metadata: dict[str, str]
) -> None:
    net = _lenet(seed, num_classes=num_classes, feature_dim=feature_dim)
    with tempfile.TemporaryDirectory() as folder:
        path = save_classifier(net, Path(folder) / "net.safetensors", metadata=metadata)
        loaded = load_classifier(path)
    assert (loaded.num_classes, loaded.feature_dim) == (num_classes, feature_dim)
    assert not loaded.training
    original, restored = net.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[key], restored[key]) for key in original)
