"""The evaluation functions on the library's own VAE models (tests may import models)."""

import math

import pytest
import torch

from gentorch import evaluation
from gentorch.evaluation import likelihood as likelihood_module
from gentorch.evaluation import log_likelihood, nll
from gentorch.models import VAE, ConditionalVAE


def test_one_call_equals_the_models_own_iwae_bound() -> None:
    model = VAE(12, [16], 3)
    x = torch.rand(6, 12)
    torch.manual_seed(7)
    ours = log_likelihood(model, x, 40, batch_size=6, chunk_size=40)
    torch.manual_seed(7)
    with torch.no_grad():
        theirs = model.eval().iwae_bound(x, 40)
    torch.testing.assert_close(ours, theirs)


def test_conditional_vae_takes_labels() -> None:
    model = ConditionalVAE(12, [16], 2, num_classes=3)
    x, y = torch.rand(7, 12), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    torch.manual_seed(3)
    ours = log_likelihood(model, x, 30, batch_size=7, chunk_size=30, labels=y)
    torch.manual_seed(3)
    with torch.no_grad():
        theirs = model.eval().iwae_bound(x, 30, y)
    torch.testing.assert_close(ours, theirs)
    mean, stderr = evaluation.test_elbo(model, x, labels=y, batch_size=3)
    assert math.isfinite(mean)
    assert math.isfinite(stderr)
    with pytest.raises(ValueError, match=r"labels: expected shape \(7,\)"):
        nll(model, x, 5, labels=y[:3], progress=False)


def test_latent_statistics_denoise_and_anomaly_scores_pass_labels_in_batches() -> None:
    torch.manual_seed(0)
    model = ConditionalVAE(12, [16], 3, num_classes=3).eval()
    x, y = torch.rand(10, 12), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 2])
    with torch.no_grad():
        mu, logvar = model.encode(x, y)  # the reference: one call with every label
        # ConditionalVAE.reconstruct decodes the posterior mean: no noise involved
        recon = model.reconstruct(x, y)
    # batch_size 4 splits the examples unevenly: each batch must get its own labels
    torch.testing.assert_close(evaluation.posterior_means(model, x, labels=y, batch_size=4), mu)
    kl = evaluation.kl_per_dimension(model, x, labels=y, batch_size=4)
    expected = 0.5 * (mu.double().square() + logvar.double().exp() - 1 - logvar.double())
    torch.testing.assert_close(kl, expected.mean(0))
    variance = mu.double().var(dim=0)
    assert evaluation.active_units(model, x, 0.0, labels=y, batch_size=4) == int(
        (variance > 0).sum()
    )
    torch.testing.assert_close(evaluation.denoise(model, x, labels=y, batch_size=4), recon)
    for score in ("elbo", "nll"):
        torch.manual_seed(1)
        ours = evaluation.anomaly_scores(model, x, score, k=20, labels=y, batch_size=4)
        torch.manual_seed(1)
        with torch.no_grad():
            if score == "elbo":
                ref = -torch.cat([model.elbo(x[i : i + 4], y[i : i + 4]) for i in (0, 4, 8)])
            else:
                ref = -log_likelihood(model, x, 20, labels=y)
        torch.testing.assert_close(ours, ref)
    with pytest.raises(ValueError, match=r"labels: expected shape \(10,\)"):
        evaluation.posterior_means(model, x, labels=y[:4])


def test_iwae_tightens_on_a_trained_model_and_latent_statistics_run() -> None:
    torch.manual_seed(0)
    # Four binary prototypes with 5% of pixels flipped: data with latent structure.
    prototypes = (torch.rand(4, 12) < 0.5).float()
    x = prototypes[torch.arange(64) % 4]
    x = torch.where(torch.rand(64, 12) < 0.05, 1 - x, x)
    model = VAE(12, [32], 4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        loss = model.loss(x)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    g = torch.Generator().manual_seed(0)
    # Each example 20 times: the single-sample ELBO's Monte Carlo noise on the mean drops to
    # ~0.03 nats, well under the ELBO-IWAE gap of this model (0.14 to 0.5 nats over seeds).
    x_rep = x.repeat(20, 1)
    elbo, _ = evaluation.test_elbo(model, x_rep, generator=g)
    nll_100, _ = nll(model, x_rep, 100, progress=False, generator=g)
    assert nll_100 < -elbo
    kl = evaluation.kl_per_dimension(model, x)
    assert kl.shape == (4,)
    assert bool((kl >= 0).all())
    assert 0 <= evaluation.active_units(model, x) <= 4


@pytest.mark.parametrize(
    ("k", "batch_size", "chunk_size", "expected"),
    [
        (5000, None, None, (1, 1667)),  # <= 2048 rows per call, k in 3 equal chunks
        (4096, None, None, (1, 2048)),
        (2049, None, None, (1, 1025)),
        (5000, 64, None, (64, 32)),  # a given batch size shrinks the chunk: 2048 rows
        (5000, 100_000, None, (100, 1)),  # never fewer than 1 sample per call; N = 100
        (1, None, None, (100, 1)),
        (5000, None, 100, (20, 100)),
        (10, 7, 3, (7, 3)),
    ],
)
def test_default_sizes_bound_the_rows_per_call(
    k: int, batch_size: int | None, chunk_size: int | None, expected: tuple[int, int]
) -> None:
    assert likelihood_module._sizes(k, 100, batch_size, chunk_size) == expected
