from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

import pytest
import torch
from torch import nn

from gentorch import evaluation
from gentorch.evaluation import log_likelihood, nll

if TYPE_CHECKING:
    from tests.evaluation.conftest import LinearGaussianVAE


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_estimate_converges_to_exact_log_likelihood(
    make_linear_vae: type[LinearGaussianVAE],
) -> None:
    # q has 3x the posterior variance and a shifted mean: ELBO gap ~4.1 nats.
    model = make_linear_vae(var_scale=3.0, shift=0.5)
    x = model.sample_data(100)
    exact = float(-model.exact_log_prob(x).detach().mean())
    gap = {k: nll(model, x, k, progress=False, generator=_gen())[0] - exact for k in (1, 10, 5000)}
    # The IWAE bound tightens with k (gaps measured 4.7, 0.31, 0.005: orders of magnitude apart).
    assert gap[1] > 3.0
    assert gap[1] > 10 * gap[10] > 0
    # The relative variance of the weights is r ~ 5.2 for this model, so at k = 5000 the bias is
    # ~r / 2k ~ 5e-4 and the standard deviation of the mean over 100 points ~sqrt(r / k) / 10
    # ~ 3e-3; 0.02 nats is over 5 standard deviations away.
    assert abs(gap[5000]) < 0.02


def test_per_point_estimates_match_exact_values(make_linear_vae: type[LinearGaussianVAE]) -> None:
    model = make_linear_vae()
    x = model.sample_data(20)
    exact = model.exact_log_prob(x).detach()
    log_px = log_likelihood(model, x, 10000, generator=_gen())
    assert log_px.shape == (20,)
    assert log_px.dtype == torch.float64
    # Relative weight variance ~0.16 here: per-point std ~sqrt(0.16 / 1e4) ~ 4e-3; 0.02 is ~5 std.
    torch.testing.assert_close(log_px, exact, atol=0.02, rtol=0)


class _ReplayModel(nn.Module):
    """Returns fixed log-weights table[offset : offset + k, points]: chunking must not matter."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table  # (K, N)
        self.offset = torch.zeros(table.shape[1], dtype=torch.long)

    def log_importance_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        idx = x[:, 0].long()
        start = int(self.offset[idx[0]])
        assert bool((self.offset[idx] == start).all())
        self.offset[idx] += k
        return self.table[start : start + k, idx]


@pytest.mark.parametrize(("batch_size", "chunk_size"), [(None, None), (1, 1), (3, 7), (50, 64)])
def test_chunking_and_batching_combine_exactly(
    batch_size: int | None, chunk_size: int | None
) -> None:
    k, n = 64, 10
    g = _gen(1)
    # Log-weights around -1e4 (exp underflows) with spread: a naive mean of exp would give -inf.
    table = torch.randn(k, n, generator=g, dtype=torch.float64) * 30 - 1e4
    x = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    got = log_likelihood(_ReplayModel(table), x, k, batch_size=batch_size, chunk_size=chunk_size)
    expected = torch.logsumexp(table, dim=0) - math.log(k)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-9)
    mean, stderr = nll(
        _ReplayModel(table), x, k, batch_size=batch_size, chunk_size=chunk_size, progress=False
    )
    assert mean == pytest.approx(float(-expected.mean()), rel=1e-12)
    assert stderr == pytest.approx(float(expected.std()) / math.sqrt(n), rel=1e-9)


def test_model_calls_are_batched_and_chunked(make_linear_vae: type[LinearGaussianVAE]) -> None:
    model = make_linear_vae()
    x = model.sample_data(10)
    log_likelihood(model, x, 25, batch_size=4, chunk_size=10)
    # 3 point batches (4, 4, 2) x 3 chunks (10, 10, 5), each in eval mode.
    assert model.calls == [(m, b, False) for b in (4, 4, 2) for m in (10, 10, 5)]


def test_same_generator_same_estimate_and_global_rng_untouched(
    make_linear_vae: type[LinearGaussianVAE],
) -> None:
    model = make_linear_vae()
    x = model.sample_data(30)
    state = torch.get_rng_state()
    a = nll(model, x, 50, chunk_size=16, progress=False, generator=_gen(5))
    b = nll(model, x, 50, chunk_size=16, progress=False, generator=_gen(5))
    c = nll(model, x, 50, chunk_size=16, progress=False, generator=_gen(6))
    assert a == b
    assert a != c
    assert torch.equal(torch.get_rng_state(), state)


def test_chunked_and_unchunked_agree_statistically(
    make_linear_vae: type[LinearGaussianVAE],
) -> None:
    # Different chunkings draw different noise; with the same generator the two estimates still
    # agree within Monte Carlo error (per-point std ~sqrt(0.16 / 200) ~ 0.03, mean over 200
    # points ~ 2e-3; 0.01 nats is ~5 std of the difference).
    model = make_linear_vae()
    x = model.sample_data(200)
    full = nll(model, x, 200, chunk_size=200, progress=False, generator=_gen())[0]
    chunked = nll(model, x, 200, chunk_size=13, progress=False, generator=_gen())[0]
    assert full == pytest.approx(chunked, abs=0.01)


def test_mode_restored_and_no_autograd(make_linear_vae: type[LinearGaussianVAE]) -> None:
    model = make_linear_vae()
    x = model.sample_data(4)
    model.train()
    log_px = log_likelihood(model, x, 8)
    assert model.training
    assert not log_px.requires_grad
    assert model.calls[0][2] is False
    model.eval()
    test_elbo = evaluation.test_elbo(model, x)
    assert not model.training
    assert math.isfinite(test_elbo[0])


def test_progress_bar(
    capsys: pytest.CaptureFixture[str], make_linear_vae: type[LinearGaussianVAE]
) -> None:
    model = make_linear_vae()
    x = model.sample_data(8)
    nll(model, x, 4, progress=True)
    assert "IWAE k=4" in capsys.readouterr().err
    nll(model, x, 4, progress=False)
    assert capsys.readouterr().err == ""


def test_test_elbo_matches_brute_force(make_linear_vae: type[LinearGaussianVAE]) -> None:
    model = make_linear_vae()
    x = model.sample_data(101)
    mean, stderr = evaluation.test_elbo(model, x, batch_size=16)
    per_point = torch.stack([model.elbo(x[i : i + 1])[0] for i in range(101)]).detach()
    assert mean == pytest.approx(float(per_point.mean()), rel=1e-12)
    assert stderr == pytest.approx(float(per_point.std()) / math.sqrt(101), rel=1e-9)
    # The ELBO is a lower bound of the exact log-likelihood, point by point.
    assert bool((per_point <= model.exact_log_prob(x).detach() + 1e-9).all())


def test_test_elbo_is_not_collected_by_pytest() -> None:
    assert cast(Any, evaluation.test_elbo).__test__ is False


def test_single_example_has_nan_stderr(make_linear_vae: type[LinearGaussianVAE]) -> None:
    model = make_linear_vae()
    mean, stderr = nll(model, model.sample_data(1), 10, progress=False)
    assert math.isfinite(mean)
    assert math.isnan(stderr)


def test_bad_arguments_are_named(make_linear_vae: type[LinearGaussianVAE]) -> None:
    model = make_linear_vae()
    x = model.sample_data(4)
    with pytest.raises(ValueError, match=r"images: expected shape \(N, D\).*got \(4, 2, 2\)"):
        nll(model, x.view(4, 2, 2), 5)
    with pytest.raises(ValueError, match="k: expected a positive integer, got 0"):
        nll(model, x, 0)
    with pytest.raises(ValueError, match="chunk_size"):
        nll(model, x, 5, chunk_size=-1)
    with pytest.raises(ValueError, match="batch_size"):
        evaluation.test_elbo(model, x, batch_size=0)
    with pytest.raises(TypeError, match=r"no method log_importance_weights\(\)"):
        nll(nn.Linear(4, 4), x, 5)
    with pytest.raises(TypeError, match="images: expected a floating-point"):
        nll(model, x.long(), 5)


class _BadShapeModel(nn.Module):
    def log_importance_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return torch.zeros(x.shape[0], k)

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 1)


def test_model_returning_wrong_shapes_is_reported() -> None:
    x = torch.rand(3, 5)
    with pytest.raises(ValueError, match=r"expected shape \(4, 3\) = \(k, B\), got \(3, 4\)"):
        log_likelihood(_BadShapeModel(), x, 4)
    with pytest.raises(ValueError, match=r"model.elbo\(x\): expected shape \(3,\)"):
        evaluation.test_elbo(_BadShapeModel(), x)


def test_non_finite_weights_are_reported() -> None:
    table = torch.zeros(4, 2)
    table[:, 1] = float("nan")
    with pytest.raises(ValueError, match="non-finite estimates for 1 of 2 examples"):
        log_likelihood(_ReplayModel(table), torch.arange(2.0).unsqueeze(1), 4)
