"""VAE and ConditionalVAE: architecture, bounds against brute force, losses, labels, I/O."""

from __future__ import annotations

import io
import math
from typing import Any, cast

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli, Normal, kl_divergence

from gentorch.layers import reparameterize
from gentorch.models import VAE, ConditionalVAE


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _binary(B: int, D: int, p: float = 0.3) -> torch.Tensor:
    return (torch.rand(B, D) < p).float()


def _seq(module: nn.Module) -> nn.Sequential:
    """``model.encoder``/``model.decoder``, typed ``nn.Module``, are ``nn.Sequential`` here."""
    return cast(nn.Sequential, module)


# ----------------------------------------------------------------------------- architecture
def test_book_is_the_books_architecture() -> None:
    model = VAE.book()
    linears = [m for m in _seq(model.encoder) if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 512), (512, 256), (256, 4)]
    assert [type(m) for m in _seq(model.encoder)] == [nn.Linear, nn.ReLU] * 2 + [nn.Linear]
    linears = [m for m in _seq(model.decoder) if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 256), (256, 512), (512, 784)]
    assert [type(m) for m in _seq(model.decoder)] == [nn.Linear, nn.ReLU] * 2 + [nn.Linear]
    assert model.latent_dim == 2
    assert model.likelihood == "bernoulli"
    # Keras: 784*512+512 + 512*256+256 + 2 heads of (256*2+2); decoder 2*256+256 +
    # 256*512+512 + 512*784+784. The book's summary: 534,276 + 534,544 = 1,068,820.
    encoder = (784 * 512 + 512) + (512 * 256 + 256) + 2 * (256 * 2 + 2)
    decoder = (2 * 256 + 256) + (256 * 512 + 512) + (512 * 784 + 784)
    assert sum(p.numel() for p in model.encoder.parameters()) == encoder == 534_276
    assert sum(p.numel() for p in model.decoder.parameters()) == decoder == 534_544
    assert sum(p.numel() for p in model.parameters()) == 1_068_820


def test_book_on_digits_input_dim() -> None:
    model = VAE.book(64)
    assert _seq(model.encoder)[0].in_features == 64
    assert _seq(model.decoder)[-1].out_features == 64
    assert model.loss(torch.rand(8, 64))["loss"].isfinite()


def test_shapes() -> None:
    model = VAE(12, [16, 8], 3)
    x = torch.rand(5, 12)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 3)
    assert model.decode(mu).shape == (5, 12)
    assert model.decode(torch.randn(7, 5, 3)).shape == (7, 5, 12)
    assert model.sample(4).shape == (4, 12)
    assert model.reconstruct(x).shape == (5, 12)
    assert model.elbo(x).shape == (5,)
    assert model.iwae_bound(x, 6).shape == (5,)
    assert model.log_importance_weights(x, 6).shape == (6, 5)
    out, mu2, _logvar2 = model(x)
    assert out.shape == (5, 12)
    assert mu2.shape == (5, 3)
    losses = model.loss(x)
    assert set(losses) == {"loss", "recon", "kl", "elbo"}
    assert all(v.dim() == 0 for v in losses.values())


def test_empty_hidden_dims_gives_linear_maps() -> None:
    model = VAE(10, [], 3, "gaussian")
    assert [type(m) for m in _seq(model.encoder)] == [nn.Linear]
    assert _seq(model.encoder)[0].out_features == 6


def test_sample_and_reconstruct_are_means_without_grad() -> None:
    model = VAE(12, [16], 3)
    s = model.sample(50, generator=_gen(0))
    assert not s.requires_grad
    assert ((s > 0) & (s < 1)).all()
    torch.testing.assert_close(s, model.sample(50, generator=_gen(0)))
    x = torch.rand(4, 12)
    mu, _ = model.encode(x)
    torch.testing.assert_close(model.reconstruct(x), torch.sigmoid(model.decode(mu)))
    gauss = VAE(12, [16], 3, "gaussian")
    mu, _ = gauss.encode(x)
    torch.testing.assert_close(gauss.reconstruct(x), gauss.decode(mu))


def test_forward_samples_in_training_and_uses_mean_in_eval() -> None:
    model = VAE(12, [16], 3)
    x = torch.rand(4, 12)
    a, _, _ = model(x)
    b, _, _ = model(x)
    assert not torch.equal(a, b)
    model.eval()
    a, mu, _ = model(x)
    torch.testing.assert_close(a, model.decode(mu))


# ----------------------------------------------------------------------------- bounds
def test_elbo_matches_torch_distributions() -> None:
    model = VAE(12, [16], 3).double()
    x = _binary(6, 12).double()
    got = model.elbo(x, generator=_gen(3))
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar, generator=_gen(3))
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = Bernoulli(logits=model.decode(z)).log_prob(x).sum(-1) - kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_log_importance_weights_match_brute_force(likelihood: str) -> None:
    model = VAE(12, [16], 3, likelihood).double()  # type: ignore[arg-type]
    x = _binary(5, 12).double()
    k = 9
    log_w = model.log_importance_weights(x, k, generator=_gen(4))
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar, n_samples=k, generator=_gen(4))  # the same draws
    expected = torch.empty(k, 5, dtype=torch.float64)
    for i in range(k):
        out = model.decode(z[i])
        px = Bernoulli(logits=out) if likelihood == "bernoulli" else Normal(out, 1.0)
        log_px = px.log_prob(x).sum(-1)
        log_pz = Normal(0.0, 1.0).log_prob(z[i]).sum(-1)
        log_qz = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z[i]).sum(-1)
        expected[i] = log_px + log_pz - log_qz
    torch.testing.assert_close(log_w, expected, rtol=1e-10, atol=1e-10)


def test_iwae_bound_is_the_average_importance_weight() -> None:
    model = VAE(12, [16], 3).double()
    x = _binary(5, 12).double()
    k = 40
    bound = model.iwae_bound(x, k, generator=_gen(5))
    log_w = model.log_importance_weights(x, k, generator=_gen(5))
    # log of the plain average of the weights, with no logsumexp (the weights are ~e^-10 here)
    brute = torch.log(torch.exp(log_w).mean(dim=0))
    torch.testing.assert_close(bound, brute, rtol=1e-10, atol=1e-10)


def test_elbo_below_iwae_k_below_iwae_larger_k() -> None:
    # E[ELBO] <= E[IWAE_5] <= E[IWAE_50] (Burda et al. 2015, Theorem 1). Decoder weights are
    # scaled up so that the importance weights vary and the gaps are large. Each difference
    # is checked to be positive by more than 3 standard errors of its mean over 512 points
    # (paired, independent draws); with this seed the margins are ~13 and ~7 standard errors,
    # so the test is not near its threshold.
    model = VAE(16, [32], 4)
    with torch.no_grad():
        cast(nn.Linear, _seq(model.decoder)[-1]).weight.mul_(4)
        x = _binary(512, 16)
        g = _gen(1)
        elbo = model.elbo(x, generator=g)
        iwae5 = model.iwae_bound(x, 5, generator=g)
        iwae50 = model.iwae_bound(x, 50, generator=g)
    for low, high in ((elbo, iwae5), (iwae5, iwae50)):
        d = high - low
        assert d.mean() > 3 * d.std() / math.sqrt(len(d)), (d.mean(), d.std())


def test_iwae_with_one_sample_is_an_unbiased_elbo_estimate() -> None:
    # IWAE_1 = log p(x|z) + log p(z) - log q(z|x): its mean over z is the ELBO. Same z, the two
    # estimates differ only by the Monte-Carlo vs analytic KL, whose difference has mean 0.
    model = VAE(8, [16], 2).double()
    x = _binary(1, 8).double().expand(4000, 8)
    with torch.no_grad():
        d = model.iwae_bound(x, 1, generator=_gen(6)) - model.elbo(x, generator=_gen(6))
    # 5 standard errors: a false failure has probability < 1e-6.
    assert d.mean().abs() < 5 * d.std() / math.sqrt(len(d))


# ----------------------------------------------------------------------------- losses
def test_loss_equals_the_books_784_bce_plus_kl() -> None:
    model = VAE.book().double()
    x = torch.rand(16, 784, dtype=torch.float64)
    out = model.loss(x, generator=_gen(7))
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar, generator=_gen(7))
    # Keras: reconstruction_loss = 784 * mean(binary_crossentropy(x, sigmoid(logits))), per
    # example, averaged over the batch; kl = -1/2 sum(1 + log_var - mu^2 - exp(log_var)).
    bce = F.binary_cross_entropy(torch.sigmoid(model.decode(z)), x, reduction="none").mean(-1)
    recon = (784 * bce).mean()
    kl = (-0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(-1)).mean()
    torch.testing.assert_close(out["recon"], recon, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out["kl"], kl, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out["loss"], recon + kl, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out["elbo"], -(recon + kl), rtol=1e-9, atol=1e-9)


def test_loss_elbo_is_the_batch_mean_of_elbo() -> None:
    model = VAE(12, [16], 3)
    x = _binary(8, 12)
    torch.testing.assert_close(
        model.loss(x, generator=_gen(8))["elbo"], model.elbo(x, generator=_gen(8)).mean()
    )


def test_beta_scales_only_the_kl_term() -> None:
    model = VAE(12, [16], 3)
    x = _binary(8, 12)
    base = model.loss(x, generator=_gen(9))
    for beta in (0.0, 0.3, torch.tensor(2.5)):
        out = model.loss(x, beta=beta, generator=_gen(9))
        torch.testing.assert_close(out["loss"], base["recon"] + beta * base["kl"])
        # the reported parts do not depend on beta
        torch.testing.assert_close(out["recon"], base["recon"])
        torch.testing.assert_close(out["elbo"], base["elbo"])


def test_free_bits_floor_the_kl_term_and_cut_its_gradient() -> None:
    model = VAE(12, [16], 3)
    x = _binary(8, 12)
    base = model.loss(x, generator=_gen(10))
    # A floor above every dimension's KL: the term is L * floor and carries no gradient, so
    # the encoder's gradient is the reconstruction term's alone.
    floor = float(base["kl"].detach()) + 1.0
    out = model.loss(x, free_bits=floor, generator=_gen(10))
    torch.testing.assert_close(out["loss"], base["recon"] + 3 * floor)
    torch.testing.assert_close(out["kl"], base["kl"])
    params = list(model.encoder.parameters())
    g_loss = torch.autograd.grad(out["loss"], params)
    g_recon = torch.autograd.grad(model.loss(x, generator=_gen(10))["recon"], params)
    for a, b in zip(g_loss, g_recon, strict=True):
        torch.testing.assert_close(a, b)
    # A floor below every dimension's KL changes nothing.
    mu, logvar = model.encode(x)
    per_dim = (0.5 * (mu.square() + logvar.exp() - 1 - logvar)).mean(0)
    low = float(per_dim.min().detach()) / 2
    torch.testing.assert_close(
        model.loss(x, free_bits=low, generator=_gen(10))["loss"], base["loss"]
    )


def test_iwae_loss_is_minus_the_mean_iwae_bound() -> None:
    model = VAE(12, [16], 3)
    x = _binary(8, 12)
    out = model.loss(x, iwae_k=7, generator=_gen(11))
    bound = model.iwae_bound(x, 7, generator=_gen(11))
    torch.testing.assert_close(out["loss"], -bound.mean())
    log_w = model.log_importance_weights(x, 7, generator=_gen(11))
    mu, logvar = model.encode(x)
    kl = (0.5 * (mu.square() + logvar.exp() - 1 - logvar)).sum(-1).mean()
    torch.testing.assert_close(out["kl"], kl)
    # beta weights log p(z)/q(z|x) inside the importance weights; beta=0 leaves log p(x|z)
    out0 = model.loss(x, iwae_k=7, beta=0.0, generator=_gen(11))
    z = reparameterize(mu, logvar, n_samples=7, generator=_gen(11))
    log_px = Bernoulli(logits=model.decode(z)).log_prob(x).sum(-1)
    expected = -(torch.logsumexp(log_px, 0) - math.log(7)).mean()
    torch.testing.assert_close(out0["loss"], expected)
    torch.testing.assert_close(out["recon"], -log_px.mean())
    assert not torch.allclose(out["loss"], out0["loss"])
    assert log_w.shape == (7, 8)


@pytest.mark.parametrize("iwae_k", [1, 5])
def test_gradient_reaches_every_parameter(iwae_k: int) -> None:
    model = VAE(12, [16], 3, "gaussian", gaussian_variance="learned")
    model.loss(torch.randn(8, 12), iwae_k=iwae_k)["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_gaussian_likelihoods() -> None:
    x = torch.randn(6, 12)
    fixed = VAE(12, [16], 3, "gaussian", gaussian_logvar=-1.0)
    assert fixed.decoder_logvar is None
    out = fixed.loss(x, generator=_gen(12))
    mu, logvar = fixed.encode(x)
    z = reparameterize(mu, logvar, generator=_gen(12))
    expected = -Normal(fixed.decode(z), math.exp(-0.5)).log_prob(x).sum(-1).mean()
    torch.testing.assert_close(out["recon"], expected)

    learned = VAE(12, [16], 3, "gaussian", gaussian_variance="learned")
    assert isinstance(learned.decoder_logvar, nn.Parameter)
    assert learned.decoder_logvar.shape == ()
    with torch.no_grad():
        learned.decoder_logvar.fill_(0.4)
    out = learned.loss(x, generator=_gen(12))
    mu, logvar = learned.encode(x)
    z = reparameterize(mu, logvar, generator=_gen(12))
    expected = -Normal(learned.decode(z), math.exp(0.2)).log_prob(x).sum(-1).mean()
    torch.testing.assert_close(out["recon"], expected)
    assert "decoder_logvar" in learned.state_dict()


def test_training_decreases_the_loss() -> None:
    # 4 binary prototypes in 16 dimensions with 5% of the bits flipped. A 2-D latent can
    # encode the prototype, so the negative ELBO can fall from ~11 nats at initialisation
    # (16 * log 2) towards ~16 * H(0.05) + log 4 ~ 4.6 nats. 300 Adam steps reach ~5.1 here;
    # we require less than 60% of the initial value and within 2.5 nats of that floor.
    protos = (torch.rand(4, 16) < 0.5).float()
    x_all = protos[torch.randint(0, 4, (2048,))]
    x_all = torch.where(torch.rand_like(x_all) < 0.05, 1 - x_all, x_all)
    model = VAE(16, [32], 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        before = -model.elbo(x_all, generator=_gen(15)).mean()
    for step in range(300):
        xb = x_all[(step * 64) % 2048 :][:64]
        out = model.loss(xb)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    with torch.no_grad():
        after = -model.elbo(x_all, generator=_gen(15)).mean()
    assert before > 10.0
    assert after < 0.6 * before, (before, after)
    assert after < 4.6 + 2.5, (before, after)


# ----------------------------------------------------------------------------- denoising target
def _noisy(clean: torch.Tensor, sigma: float = 0.3, seed: int = 5) -> torch.Tensor:
    noise = torch.randn(clean.shape, generator=_gen(seed), dtype=clean.dtype)
    return (clean + sigma * noise).clamp(0, 1)


@pytest.mark.parametrize("iwae_k", [1, 4])
@pytest.mark.parametrize("conditional", [False, True])
def test_target_defaults_to_x(iwae_k: int, conditional: bool) -> None:
    model = ConditionalVAE(12, [16], 3, num_classes=4) if conditional else VAE(12, [16], 3)
    x = torch.rand(8, 12)
    y = torch.arange(8) % 4 if conditional else None
    base = model.loss(x, y, beta=0.5, iwae_k=iwae_k, generator=_gen(21))
    for target in (None, x, x.clone()):
        out = model.loss(x, y, target=target, beta=0.5, iwae_k=iwae_k, generator=_gen(21))
        for key in ("loss", "recon", "kl", "elbo"):
            # the same computation on the same values: bitwise equal, not merely close
            assert torch.equal(out[key], base[key]), (key, target is None)


def test_loss_scores_the_target_with_the_latents_of_x() -> None:
    model = VAE.book(64).double()
    clean = torch.rand(16, 64, dtype=torch.float64)
    noisy = _noisy(clean)
    out = model.loss(noisy, target=clean, beta=0.5, generator=_gen(22))
    # z ~ q(z | noisy), with the same draws; recon = 64 * BCE(sigmoid(decode(z)), clean)
    mu, logvar = model.encode(noisy)
    z = reparameterize(mu, logvar, generator=_gen(22))
    bce = F.binary_cross_entropy(torch.sigmoid(model.decode(z)), clean, reduction="none")
    recon = (64 * bce.mean(-1)).mean()
    kl = (-0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(-1)).mean()
    torch.testing.assert_close(out["recon"], recon, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out["kl"], kl, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out["loss"], recon + 0.5 * kl, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out["elbo"], -(recon + kl), rtol=1e-9, atol=1e-9)
    # not what scoring the input gives (an untrained decoder's logits are near 0, so the two
    # differ by ~0.02 nats here, far above float64 rounding)
    plain = model.loss(noisy, beta=0.5, generator=_gen(22))
    torch.testing.assert_close(plain["kl"], out["kl"], rtol=0, atol=0)
    assert not torch.allclose(plain["recon"], out["recon"], rtol=1e-6, atol=0)


def test_iwae_loss_scores_the_target() -> None:
    model = VAE(12, [16], 3).double()
    clean = _binary(8, 12).double()
    noisy = _noisy(clean)
    out = model.loss(noisy, target=clean, iwae_k=5, beta=0.0, generator=_gen(23))
    mu, logvar = model.encode(noisy)
    z = reparameterize(mu, logvar, n_samples=5, generator=_gen(23))
    log_px = Bernoulli(logits=model.decode(z)).log_prob(clean).sum(-1)  # log p(clean | z_i)
    # beta = 0: -IWAE_k = -(logsumexp_i log p(clean | z_i) - log k), z_i ~ q(z | noisy)
    expected = -(torch.logsumexp(log_px, 0) - math.log(5)).mean()
    torch.testing.assert_close(out["loss"], expected, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out["recon"], -log_px.mean(), rtol=1e-9, atol=1e-9)


def test_gaussian_loss_scores_a_target_outside_the_unit_interval() -> None:
    model = VAE(12, [16], 3, "gaussian", gaussian_logvar=-1.0)
    target = 3.0 * torch.randn(6, 12)
    x = target + 0.1 * torch.randn(6, 12)
    out = model.loss(x, target=target, generator=_gen(24))
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar, generator=_gen(24))
    expected = -Normal(model.decode(z), math.exp(-0.5)).log_prob(target).sum(-1).mean()
    torch.testing.assert_close(out["recon"], expected)


def test_loss_gradient_through_the_target_path_reaches_every_parameter() -> None:
    model = VAE(12, [16], 3)
    clean = torch.rand(8, 12)
    model.loss(_noisy(clean), target=clean)["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_bad_target_raises_clear_errors() -> None:
    model, x = VAE(16, [8], 2), torch.rand(4, 16)
    with pytest.raises(TypeError, match=r"target: expected a Tensor, got ndarray"):
        model.loss(x, target=x.numpy())  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"target: expected the shape of x, \(4, 16\), got \(4, 15\)"
    ):
        model.loss(x, target=torch.rand(4, 15))
    with pytest.raises(
        ValueError, match=r"target: expected the shape of x, \(4, 16\), got \(4, 4, 4\)"
    ):
        model.loss(x, target=torch.rand(4, 4, 4))
    with pytest.raises(
        TypeError, match=r"target: expected a floating-point tensor, got dtype torch\.uint8"
    ):
        model.loss(x, target=torch.zeros(4, 16, dtype=torch.uint8))
    with pytest.raises(
        TypeError, match=r"target: expected dtype torch\.float32 .*got torch\.float64"
    ):
        model.loss(x, target=x.double())
    with pytest.raises(
        ValueError,
        match=r"target: expected finite values in \[0, 1\] \(Bernoulli likelihood\), "
        r"got range \[-0\.5, 1\.5\]",
    ):
        model.loss(x, target=torch.linspace(-0.5, 1.5, 64).view(4, 16))
    bad = x.clone()
    bad[1, 3], bad[2, 0] = math.nan, math.inf
    with pytest.raises(ValueError, match=r"target: expected finite values in \[0, 1\] .*got 2 NaN"):
        model.loss(x, target=bad)
    with pytest.raises(ValueError, match=r"target: .*got 2 NaN or Inf of 64"):
        model.loss(x, target=bad, iwae_k=3)
    gaussian = VAE(16, [8], 2, "gaussian")
    with pytest.raises(ValueError, match=r"target: expected finite values, got 2 NaN or Inf of 64"):
        gaussian.loss(x, target=bad)
    # x is checked first: a bad x is named as x, whatever the target
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 16\), got \(4, 15\)"):
        model.loss(torch.rand(4, 15), target=torch.rand(4, 15))


@pytest.mark.parametrize("kwargs", [{}, {"iwae_k": 3}])
@pytest.mark.parametrize("denoising", [False, True])
def test_loss_compiles_to_one_graph(kwargs: dict[str, Any], denoising: bool) -> None:
    # fullgraph=True fails on any graph break (data-dependent Python branching, .item(), ...).
    # The "eager" backend only traces, which keeps the test fast; a changing beta (a KL
    # warm-up) is traced once as a constant, then once as a symbolic float, then as a tensor.
    # With denoising, the encoder sees a noisy x and the likelihood scores the clean target.
    torch._dynamo.reset()
    model = ConditionalVAE(12, [16], 3, num_classes=4)
    clean, y = _binary(8, 12), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    x = _noisy(clean) if denoising else clean
    target = clean if denoising else None

    def step(
        x: torch.Tensor, y: torch.Tensor, beta: float | torch.Tensor, target: torch.Tensor | None
    ) -> torch.Tensor:
        return model.loss(x, y, target=target, beta=beta, **kwargs)["loss"]

    compiled = torch.compile(step, fullgraph=True, backend="eager")
    betas: list[float | torch.Tensor] = [0.1, 0.2, 0.3, torch.tensor(0.4)]
    for i, beta in enumerate(betas):
        torch.manual_seed(i)
        got = compiled(x, y, beta, target)
        torch.manual_seed(i)
        torch.testing.assert_close(got, step(x, y, beta, target))
    # the label range is an in-graph assertion there (eager mode raises ValueError instead)
    with pytest.raises(RuntimeError, match=r"y: expected labels in \[0, 4\), got one outside"):
        compiled(x, torch.tensor([0, 1, 2, 4, 0, 1, 2, 3]), 0.5, target)
    with pytest.raises(RuntimeError, match=r"y: expected labels in \[0, 4\)"):
        compiled(x, torch.tensor([0, 1, 2, -1, 0, 1, 2, 3]), 0.5, target)
    if denoising:
        # and so is the target's range
        with pytest.raises(RuntimeError, match=r"target: expected finite values in \[0, 1\]"):
            compiled(x, y, 0.5, clean + 0.5)
        with pytest.raises(RuntimeError, match=r"target: expected finite values in \[0, 1\]"):
            compiled(x, y, 0.5, torch.full_like(clean, math.nan))
    torch._dynamo.reset()


# ----------------------------------------------------------------------------- input checks
def test_bad_inputs_raise_clear_errors() -> None:
    model = VAE.book()
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 784\), got \(32, 28, 28\)"):
        model.loss(torch.rand(32, 28, 28))
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 784\), got \(4, 64\)"):
        model.elbo(torch.rand(4, 64))
    with pytest.raises(
        TypeError, match=r"x: expected a floating-point tensor, got dtype torch\.uint8"
    ):
        model.encode(torch.zeros(4, 784, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"z: expected shape \(\.\.\., 2\), got \(4, 3\)"):
        model.decode(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="k: expected a positive integer, got 0"):
        model.iwae_bound(torch.rand(2, 784), 0)
    with pytest.raises(ValueError, match="iwae_k: expected a positive int"):
        model.loss(torch.rand(2, 784), iwae_k=0)
    with pytest.raises(ValueError, match="free_bits: expected a finite float >= 0"):
        model.loss(torch.rand(2, 784), free_bits=-1.0)
    with pytest.raises(ValueError, match="free_bits: must be 0 with the IWAE objective"):
        model.loss(torch.rand(2, 784), free_bits=0.5, iwae_k=2)
    with pytest.raises(ValueError, match="n: expected a positive int"):
        model.sample(0)
    with pytest.raises(ValueError, match=r"beta: expected a finite float >= 0, got -0\.5"):
        model.loss(torch.rand(2, 784), beta=-0.5)
    with pytest.raises(ValueError, match=r"beta: expected a 0-d tensor, got shape \(2,\)"):
        model.loss(torch.rand(2, 784), beta=torch.ones(2))
    with pytest.raises(TypeError, match="beta: expected a float or a 0-d tensor, got str"):
        model.loss(torch.rand(2, 784), beta="1")  # type: ignore[arg-type]


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="likelihood: expected 'bernoulli' or 'gaussian'"):
        VAE(4, [8], 2, "poisson")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="latent_dim: expected a positive integer, got 0"):
        VAE(4, [8], 0)
    with pytest.raises(ValueError, match=r"hidden_dims\[\*\]: expected a positive integer, got -3"):
        VAE(4, [8, -3], 2)
    with pytest.raises(TypeError, match="hidden_dims: expected a sequence of ints, got int"):
        VAE(4, 8, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="activation: expected one of"):
        VAE(4, [8], 2, activation="swish")
    with pytest.raises(ValueError, match="gaussian_variance: expected 'fixed' or 'learned'"):
        VAE(4, [8], 2, "gaussian", gaussian_variance="per-pixel")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- conditional
def test_conditional_vae_label_handling() -> None:
    model = ConditionalVAE(12, [16], 3, num_classes=4)
    assert _seq(model.encoder)[0].in_features == 16
    assert _seq(model.decoder)[0].in_features == 7
    x, y = _binary(6, 12), torch.tensor([0, 1, 2, 3, 0, 1])
    assert model.loss(x, y)["loss"].isfinite()
    assert model.loss(x, y, iwae_k=3)["loss"].isfinite()
    assert model.log_importance_weights(x, 5, y).shape == (5, 6)
    with pytest.raises(ValueError, match="y: ConditionalVAE needs class labels"):
        model.loss(x)
    with pytest.raises(ValueError, match=r"y: expected labels in \[0, 4\), got values in \[0, 4\]"):
        model.loss(x, torch.tensor([0, 1, 2, 3, 4, 1]))
    with pytest.raises(
        ValueError, match=r"y: expected labels in \[0, 4\), got values in \[-1, 3\]"
    ):
        model.elbo(x, torch.tensor([0, 1, 2, 3, -1, 1]))
    with pytest.raises(
        TypeError, match=r"y: expected integer class labels, got dtype torch\.float32"
    ):
        model.loss(x, y.float())
    with pytest.raises(ValueError, match=r"y: expected shape \(6,\), got \(5,\)"):
        model.loss(x, y[:5])
    with pytest.raises(ValueError, match=r"y: expected a class in \[0, 4\), got 9"):
        model.sample(3, y=9)
    with pytest.raises(ValueError, match=r"z: expected shape \(\.\.\., B, 3\)"):
        model.decode(torch.zeros(3), torch.tensor([1]))


def test_conditional_vae_uses_the_label_in_both_networks() -> None:
    model = ConditionalVAE(12, [16], 3, num_classes=4)
    x = _binary(1, 12).expand(4, 12)
    y = torch.arange(4)
    mu, _ = model.encode(x, y)
    assert (mu[1:] - mu[0]).abs().amax(-1).min() > 0  # same x, different labels
    z = torch.zeros(4, 3)
    out = model.decode(z, y)
    assert (out[1:] - out[0]).abs().amax(-1).min() > 0
    # the one-hot label is the extra input: decoding class c equals a manual concatenation
    manual = model.decoder(torch.cat([z, F.one_hot(y, 4).float()], -1))
    torch.testing.assert_close(out, manual)
    # sample(n, y=int) and sample(n, y=labels) agree for the same latents
    a = model.sample(5, y=2, generator=_gen(13))
    b = model.sample(5, y=torch.full((5,), 2), generator=_gen(13))
    torch.testing.assert_close(a, b)
    # importance samples (k, B, L) share each example's label
    k_out = model.decode(torch.zeros(7, 4, 3), y)
    torch.testing.assert_close(k_out, out.expand(7, 4, 12))


# ----------------------------------------------------------------------------- state
@pytest.mark.parametrize(
    "make",
    [
        lambda: VAE(12, [16, 8], 3, "gaussian", gaussian_variance="learned", activation="elu"),
        lambda: ConditionalVAE(12, [16], 3, num_classes=5),
    ],
)
def test_state_dict_round_trip(make: object) -> None:
    model = make()  # type: ignore[operator]
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    clone = type(model).from_config(model.config())
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    model.eval()
    clone.eval()
    x = torch.rand(4, 12)
    y = torch.tensor([0, 1, 2, 3]) if isinstance(model, ConditionalVAE) else None
    for a, b in zip(model(x, y), clone(x, y), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(
        model.loss(x, y, generator=_gen(14))["loss"], clone.loss(x, y, generator=_gen(14))["loss"]
    )
    assert clone.config() == model.config()


def test_conditional_vae_names_labels_on_another_device() -> None:
    # before: torch.cat failed later with a message naming neither the labels nor the model
    model = ConditionalVAE(6, [4], 2, num_classes=3)
    elsewhere = torch.zeros(2, dtype=torch.long, device="meta")  # any device but the model's
    with pytest.raises(ValueError, match=r"y: expected labels on the model's device cpu, got meta"):
        model.encode(torch.rand(2, 6), elsewhere)
