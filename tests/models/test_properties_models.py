"""Property-based tests (hypothesis) of the VAEs: VAE, ConditionalVAE and ConvVAE.

Random tiny architectures, batch sizes, likelihoods and objective settings (derandomized, so
CI sees the same examples on every run) against references written here in float64: the MLPs as
chains of ``F.linear`` and activations, ``log p(x | z)``, ``log p(z)``, ``log q(z | x)`` and the
KL from ``torch.distributions``, one example at a time (so a result that mixes the examples of a
batch fails), with the latent noise replayed from identically seeded generators
(``reparameterize`` draws ``z = mu + exp(logvar / 2) * eps`` bit for bit, ``logvar`` clamped to
``LOGVAR_RANGE``: see tests/layers/test_properties_reparameterize.py). Also exact identities
(IWAE with ``k = 1``, Jensen's inequality over subsets of the importance weights, the exact
posterior of a linear-Gaussian VAE), batch independence in eval mode, shapes and dtypes, and the
errors the docstrings promise. The GANs are in test_properties_gans.py.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import cast

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn
from torch.distributions import Bernoulli, MultivariateNormal, Normal, kl_divergence

from gentorch.layers import LOGVAR_RANGE
from gentorch.models import VAE, ConditionalVAE, ConvVAE
from gentorch.models.vae import GaussianVariance, Likelihood

_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None)
_FEW = settings(max_examples=20, deadline=None, derandomize=True, database=None)

# Everything below is float64 unless a test says otherwise. A reference that recomputes the
# networks one example at a time rounds differently from the batched model (another matmul
# blocking): a few ulps of terms of at most ~1e7 (a Gaussian log-likelihood with decoder outputs
# of ~1e3 when the encoder's logvar is shifted up), relative 1e-9 covers it with a wide margin.
# The absolute part is for log q(z | x) at sigma = e^-15 (logvar clamped at -30): z - mu then
# loses the ulps of mu (~1e-16 |mu|) against sigma * eps ~ 3e-7, a relative error of ~1e-9 in
# the standardised noise, so ~1e-8 in each latent's (z - mu)^2 / sigma^2 term.
_RTOL, _ATOL = 1e-9, 1e-7

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,  # slope 0.01, nn.LeakyReLU's default
    "elu": F.elu,
    "gelu": F.gelu,
    "silu": F.silu,
    "tanh": torch.tanh,
    "softplus": F.softplus,
}

seeds = st.integers(0, 2**31 - 1)
# Added to the encoder's logvar bias: 0 keeps logvar near 0; -45 and +20 put every logvar
# outside LOGVAR_RANGE = (-30, 11), where the sampler clamps it.
logvar_shifts = st.sampled_from([0.0, 0.0, -45.0, 20.0])


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- architectures ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Arch:
    """A tiny VAE of one of the three kinds; ``build`` makes it, ``data`` draws a batch."""

    kind: str  # "mlp", "conditional" or "conv"
    input_dim: int
    hidden: tuple[int, ...]
    latent: int
    likelihood: Likelihood
    variance: GaussianVariance
    logvar: float
    activation: str
    num_classes: int = 0
    image_shape: tuple[int, int, int] = (1, 1, 1)
    channels: tuple[int, ...] = ()

    def build(
        self, seed: int, dtype: torch.dtype = torch.float64, logvar_shift: float = 0.0
    ) -> VAE:
        torch.manual_seed(seed)
        kwargs = {
            "gaussian_variance": self.variance,
            "gaussian_logvar": self.logvar,
            "activation": self.activation,
        }
        model: VAE
        if self.kind == "conv":
            model = ConvVAE(
                self.latent,
                self.likelihood,
                self.image_shape,
                channels=self.channels,
                hidden_dim=self.hidden[0],
                **kwargs,  # type: ignore[arg-type]
            )
        elif self.kind == "conditional":
            model = ConditionalVAE(
                self.input_dim,
                self.hidden,
                self.latent,
                self.num_classes,
                self.likelihood,
                **kwargs,  # type: ignore[arg-type]
            )
        else:
            model = VAE(
                self.input_dim,
                self.hidden,
                self.latent,
                self.likelihood,
                **kwargs,  # type: ignore[arg-type]
            )
        model = model.to(dtype)
        with torch.no_grad():
            if model.decoder_logvar is not None:
                # away from its initial value: the parameter, not the config, must be used
                model.decoder_logvar.add_(0.375)
            _linears(model.encoder)[-1].bias[self.latent :].add_(logvar_shift)
        return model

    def data(
        self, batch: int, seed: int, dtype: torch.dtype = torch.float64
    ) -> tuple[Tensor, Tensor | None]:
        """``x: (B, D)`` (in [0, 1] for Bernoulli, ``N(0, 4)`` for Gaussian) and labels."""
        g = _gen(seed + 1)
        shape = (batch, self.input_dim)
        if self.likelihood == "bernoulli":
            x = torch.rand(shape, generator=g, dtype=dtype)
        else:
            x = 2.0 * torch.randn(shape, generator=g, dtype=dtype)
        y = None
        if self.kind == "conditional":
            y = torch.randint(0, self.num_classes, (batch,), generator=g)
        return x, y


_likelihoods = st.sampled_from(cast(list[Likelihood], ["bernoulli", "gaussian"]))
_variances = st.sampled_from(cast(list[GaussianVariance], ["fixed", "learned"]))


@st.composite
def archs(draw: st.DrawFn, kinds: tuple[str, ...] = ("mlp", "conditional", "conv")) -> _Arch:
    kind = draw(st.sampled_from(kinds))
    common = {
        "latent": draw(st.integers(1, 3)),
        "likelihood": draw(_likelihoods),
        "variance": draw(_variances),
        "logvar": draw(st.floats(-2.0, 1.0)),
        "activation": draw(st.sampled_from(sorted(_ACTIVATIONS))),
    }
    if kind == "conv":
        n = draw(st.integers(1, 2))
        C = draw(st.integers(1, 2))
        H, W = (2**n * draw(st.integers(1, 2)) for _ in range(2))
        return _Arch(
            kind,
            C * H * W,
            (draw(st.integers(1, 4)),),
            image_shape=(C, H, W),
            channels=tuple(draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))),
            **common,  # type: ignore[arg-type]
        )
    return _Arch(
        kind,
        draw(st.integers(1, 6)),
        tuple(draw(st.lists(st.integers(1, 6), max_size=2))),
        num_classes=draw(st.integers(1, 4)) if kind == "conditional" else 0,
        **common,  # type: ignore[arg-type]
    )


# --- the float64 reference --------------------------------------------------------------------


def _linears(net: nn.Module) -> list[nn.Linear]:
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


def _mlp(net: nn.Module, activation: str, h: Tensor) -> Tensor:
    """The documented MLP: ``Linear`` layers with the activation between them, in float64."""
    layers = _linears(net)
    for i, layer in enumerate(layers):
        h = F.linear(h, layer.weight.double(), layer.bias.double())
        if i < len(layers) - 1:
            h = _ACTIVATIONS[activation](h)
    return h


def _networks(model: VAE) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """Encoder and decoder in float64: the MLPs written out here; ConvVAE's own modules (its
    architecture is tested in test_conv_vae.py), copied to float64."""
    if isinstance(model, ConvVAE):
        twin = copy.deepcopy(model).double()
        return twin.encoder, twin.decoder
    return partial(_mlp, model.encoder, model.activation), partial(
        _mlp, model.decoder, model.activation
    )


def _one_hot(model: VAE, y: Tensor | None) -> Tensor | None:
    if not isinstance(model, ConditionalVAE):
        return None
    assert y is not None
    return F.one_hot(y, model.num_classes).double()


def _cat(h: Tensor, c: Tensor | None) -> Tensor:
    """``[h | c]`` with ``c: (B, C)`` broadcast against ``h: (..., B, n)``."""
    return h if c is None else torch.cat([h, c.expand(*h.shape[:-1], -1)], dim=-1)


def _reference(
    model: VAE,
    x: Tensor,
    y: Tensor | None,
    eps: Tensor,
    target: Tensor | None = None,
) -> dict[str, Tensor]:
    """``log p(target | z)``, ``log p(z)``, ``log q(z | x)`` (``(..., B)``) and the analytic
    per-latent KL (``(B, L)``) in float64, each example computed on its own.

    ``eps: (..., B, L)`` is the standard noise the model draws; ``z = mu + sigma * eps`` with
    ``sigma = exp(clamp(logvar, LOGVAR_RANGE) / 2)``, and ``q`` is the Gaussian that ``z`` is
    drawn from. The KL is the docstrings' analytic ``KL(N(mu, exp(logvar)) || N(0, I))``.
    """
    encoder, decoder = _networks(model)
    target = x if target is None else target
    L = model.latent_dim
    parts: dict[str, list[Tensor]] = {"log_px": [], "log_pz": [], "log_qz": [], "kl": []}
    for i in range(x.shape[0]):
        xi, ti = x[i : i + 1].double(), target[i : i + 1].double()
        c = _one_hot(model, None if y is None else y[i : i + 1])
        h = encoder(_cat(xi, c))
        mu, logvar = h[:, :L], h[:, L:]
        sigma = torch.exp(0.5 * logvar.clamp(*LOGVAR_RANGE))
        z = mu + sigma * eps[..., i : i + 1, :].double()
        out = decoder(_cat(z, c))
        px: Bernoulli | Normal
        if model.likelihood == "bernoulli":
            px = Bernoulli(logits=out, validate_args=False)  # grey levels: x l - softplus(l)
        else:
            lv = model.decoder_logvar
            log_var = model.gaussian_logvar if lv is None else float(lv.detach())
            px = Normal(out, torch.exp(0.5 * torch.full_like(out, log_var)))
        prior = Normal(torch.zeros_like(z), torch.ones_like(z))
        parts["log_px"].append(px.log_prob(ti).sum(-1))
        parts["log_pz"].append(prior.log_prob(z).sum(-1))
        parts["log_qz"].append(Normal(mu, sigma).log_prob(z).sum(-1))
        q = Normal(mu, torch.exp(0.5 * logvar))
        parts["kl"].append(kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))))
    return {k: torch.cat(v, dim=-2 if k == "kl" else -1) for k, v in parts.items()}


def _noise(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """The noise a model of ``dtype`` draws from ``_gen(seed)``, as float64."""
    return torch.randn(shape, generator=_gen(seed), dtype=dtype).double()


# --- the ELBO and the importance weights ------------------------------------------------------


@_SETTINGS
@given(arch=archs(), batch=st.integers(1, 4), seed=seeds, shift=logvar_shifts)
def test_elbo_matches_a_float64_reference_one_example_at_a_time(
    arch: _Arch, batch: int, seed: int, shift: float
) -> None:
    model = arch.build(seed, logvar_shift=shift)
    x, y = arch.data(batch, seed)
    got = model.elbo(x, y, generator=_gen(seed))
    ref = _reference(model, x, y, _noise((batch, arch.latent), seed))
    assert got.shape == (batch,)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, ref["log_px"] - ref["kl"].sum(-1), rtol=_RTOL, atol=_ATOL)


@_SETTINGS
@given(
    arch=archs(),
    batch=st.integers(1, 3),
    k=st.integers(1, 4),
    seed=seeds,
    shift=logvar_shifts,
)
def test_log_importance_weights_are_log_p_x_z_minus_log_q_of_the_drawn_z(
    arch: _Arch, batch: int, k: int, seed: int, shift: float
) -> None:
    # The docstring: log w_i = log p(x, z_i) - log q(z_i | x), z_i ~ q. The z_i are drawn with
    # the clamped logvar, so q must be that Gaussian: with another q the weights are no longer
    # a density ratio and IWAE_k can exceed log p(x) by any amount (by ~e^15 / 2 nats per
    # latent when logvar = -45 is sampled at -30 but scored at -45).
    model = arch.build(seed, logvar_shift=shift)
    x, y = arch.data(batch, seed)
    log_w = model.log_importance_weights(x, k, y, generator=_gen(seed))
    ref = _reference(model, x, y, _noise((k, batch, arch.latent), seed))
    expected = ref["log_px"] + ref["log_pz"] - ref["log_qz"]
    assert log_w.shape == (k, batch)
    torch.testing.assert_close(log_w, expected, rtol=_RTOL, atol=_ATOL)
    # IWAE_k = log (1/k) sum_i w_i, from the same draws
    bound = model.iwae_bound(x, k, y, generator=_gen(seed))
    torch.testing.assert_close(
        bound, torch.logsumexp(expected, 0) - math.log(k), rtol=_RTOL, atol=_ATOL
    )


@_SETTINGS
@given(arch=archs(), batch=st.integers(1, 4), seed=seeds, shift=logvar_shifts)
def test_iwae_with_one_sample_is_the_elbo_with_a_monte_carlo_kl(
    arch: _Arch, batch: int, seed: int, shift: float
) -> None:
    # Same generator, so the same z: IWAE_1 - ELBO = [log p(z) - log q(z|x)] + KL(q || p), the
    # Monte-Carlo KL estimate replaced by the analytic one (exact, not in expectation).
    model = arch.build(seed, logvar_shift=shift)
    x, y = arch.data(batch, seed)
    gap = model.iwae_bound(x, 1, y, generator=_gen(seed)) - model.elbo(x, y, generator=_gen(seed))
    ref = _reference(model, x, y, _noise((batch, arch.latent), seed))
    expected = ref["log_pz"] - ref["log_qz"] + ref["kl"].sum(-1)
    # (the difference of two values each within _RTOL of terms up to ~1e7: absolute 1e-9 * 1e7)
    scale = 1.0 + ref["log_px"].abs().max().item()
    torch.testing.assert_close(gap, expected, rtol=_RTOL, atol=_ATOL + 1e-9 * scale)


@_SETTINGS
@given(arch=archs(("mlp", "conditional")), batch=st.integers(1, 3), k=st.integers(2, 6), seed=seeds)
def test_iwae_bound_dominates_the_mean_bound_of_its_sample_subsets(
    arch: _Arch, batch: int, k: int, seed: int
) -> None:
    # Burda et al.'s Theorem 1, draw by draw: for weights w_1..w_k and m < k,
    # log (1/k) sum_i w_i >= mean over m-subsets S of log (1/m) sum_{i in S} w_i (Jensen: the
    # full average is the average of the subset averages), and each subset of k i.i.d. draws is
    # distributed as m draws, so E[IWAE_m] <= E[IWAE_k]: an exact, not a statistical, check of
    # "non-decreasing in k". iwae_bound must be the log-mean-exp of the same weights.
    model = arch.build(seed)
    with torch.no_grad():
        # scaled up decoder: weights that differ by several nats (strict inequalities)
        _linears(model.decoder)[-1].weight.mul_(4.0)
        x, y = arch.data(batch, seed)
        log_w = model.log_importance_weights(x, k, y, generator=_gen(seed))
        bound = model.iwae_bound(x, k, y, generator=_gen(seed))
    # same draws, same logsumexp: float64 rounding of a log-sum of <= 6 terms
    torch.testing.assert_close(bound, torch.logsumexp(log_w, 0) - math.log(k), rtol=1e-12, atol=0)
    previous = log_w.mean(0)  # m = 1: the mean single-sample estimate
    assert bool((previous <= bound + 1e-12).all())
    for m in range(2, k + 1):
        subsets = [list(s) for s in itertools.combinations(range(k), m)]
        mean_m = torch.stack([torch.logsumexp(log_w[s], 0) - math.log(m) for s in subsets]).mean(0)
        # non-decreasing in m, up to float64 rounding of values of ~100 nats (1e-12 absolute)
        assert bool((previous <= mean_m + 1e-12).all()), (m, previous, mean_m)
        previous = mean_m
    torch.testing.assert_close(previous, bound, rtol=1e-12, atol=1e-12)  # m = k: the bound


@_FEW
@given(
    D=st.integers(1, 5),
    L=st.integers(1, 3),
    batch=st.integers(1, 4),
    k=st.integers(1, 5),
    variance=_variances,
    seed=seeds,
    data=st.data(),
)
def test_linear_gaussian_vae_with_the_exact_posterior_has_weights_equal_to_log_p_x(
    D: int,
    L: int,
    batch: int,
    k: int,
    variance: GaussianVariance,
    seed: int,
    data: st.DataObject,
) -> None:
    # p(z) = N(0, I), p(x|z) = N(W z + b, s2 I) with W = Q diag(d), Q with orthonormal columns:
    # p(x) = N(b, W W^T + s2 I) and the posterior is diagonal, N(A (x - b), diag(s2 / (s2 + d^2)))
    # with A = diag(d / (s2 + d^2)) Q^T. With that posterior as q every importance weight is
    # p(x, z) / p(z | x) = p(x) exactly, whatever z: log_w == IWAE_k == log p(x).
    L = min(L, D)
    log_s2 = data.draw(st.floats(-2.0, 1.5), label="log s2")
    g = _gen(seed)
    Q, _ = torch.linalg.qr(torch.randn(D, L, generator=g, dtype=torch.float64))
    d = 0.2 + 2.8 * torch.rand(L, generator=g, dtype=torch.float64)
    b = torch.randn(D, generator=g, dtype=torch.float64)
    s2 = math.exp(log_s2)
    W = Q * d
    A = (d / (s2 + d**2)).unsqueeze(1) * Q.T
    model = VAE(D, [], L, "gaussian", gaussian_variance=variance, gaussian_logvar=log_s2).double()
    enc, dec = _linears(model.encoder)[0], _linears(model.decoder)[0]
    with torch.no_grad():
        dec.weight.copy_(W)
        dec.bias.copy_(b)
        enc.weight.zero_()
        enc.weight[:L].copy_(A)
        enc.bias[:L].copy_(-A @ b)
        enc.bias[L:].copy_(torch.log(s2 / (s2 + d**2)))
        if model.decoder_logvar is not None:  # created in float32: set it to log s2 exactly
            model.decoder_logvar.fill_(log_s2)
    x = b + 2.0 * torch.randn(batch, D, generator=g, dtype=torch.float64)
    log_px = MultivariateNormal(b, W @ W.T + s2 * torch.eye(D, dtype=torch.float64)).log_prob(x)
    log_w = model.log_importance_weights(x, k, generator=_gen(seed))
    # Terms of at most a few hundred nats cancel to log p(x): float64 rounding, ~1e-13.
    torch.testing.assert_close(log_w, log_px.expand(k, batch), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(
        model.iwae_bound(x, k, generator=_gen(seed + 1)), log_px, rtol=1e-10, atol=1e-10
    )


# --- the training objective -------------------------------------------------------------------


@_SETTINGS
@given(
    arch=archs(),
    batch=st.integers(1, 4),
    seed=seeds,
    k=st.integers(2, 3),
    beta=st.floats(0.0, 4.0),
    free_bits=st.sampled_from([0.05, 0.5, 3.0]),
    shift=logvar_shifts,
)
def test_loss_is_its_documented_formula(
    arch: _Arch, batch: int, seed: int, k: int, beta: float, free_bits: float, shift: float
) -> None:
    model = arch.build(seed, logvar_shift=shift)
    x, y = arch.data(batch, seed)
    clean = arch.data(batch, seed + 7)[0]
    # Every combination of the settings for each drawn model (a drawn combination may never
    # come up): the plain ELBO, free bits (IWAE refuses them, tested below) and IWAE, each with
    # and without a denoising target and with beta a float or a 0-d tensor (a KL warm-up
    # schedule, whose gradient d loss / d beta is the KL term).
    for (iwae_k, bits), denoising, beta_is_tensor in itertools.product(
        ((1, 0.0), (1, free_bits), (k, 0.0)), (False, True), (False, True)
    ):
        target = clean if denoising else None
        beta_arg: float | Tensor = beta
        if beta_is_tensor:
            beta_arg = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
        out = model.loss(
            x,
            y,
            target=target,
            beta=beta_arg,
            free_bits=bits,
            iwae_k=iwae_k,
            generator=_gen(seed),
        )
        shape = (batch, arch.latent) if iwae_k == 1 else (iwae_k, batch, arch.latent)
        ref = _reference(model, x, y, _noise(shape, seed), target)
        kl = ref["kl"].sum(-1).mean()
        recon = -ref["log_px"].mean()
        if iwae_k == 1:
            # KL term: sum_j max(free_bits, mean_b KL_bj)
            d_beta = ref["kl"].mean(0).clamp_min(bits).sum()
            loss = recon + beta * d_beta
        else:
            # -IWAE_k with log w_i = log p(target|z_i) + beta * (log p(z_i) - log q(z_i|x))
            log_ratio = ref["log_pz"] - ref["log_qz"]
            log_w = ref["log_px"] + beta * log_ratio
            loss = -(torch.logsumexp(log_w, 0) - math.log(iwae_k)).mean()
            d_beta = -(torch.softmax(log_w, 0) * log_ratio).sum(0).mean()
        expected = {"loss": loss, "recon": recon, "kl": kl, "elbo": -(recon + kl)}
        setting = f"{iwae_k=} {bits=} {denoising=} {beta_is_tensor=}"
        assert sorted(out) == sorted(expected)
        for name, value in out.items():
            assert value.shape == ()
            torch.testing.assert_close(
                value, expected[name], rtol=_RTOL, atol=_ATOL, msg=f"{name}: {setting}"
            )
        if isinstance(beta_arg, Tensor):
            (grad,) = torch.autograd.grad(out["loss"], beta_arg)
            torch.testing.assert_close(grad, d_beta, rtol=_RTOL, atol=_ATOL, msg=setting)


@_FEW
@given(arch=archs(("mlp", "conditional")), seed=seeds)
def test_every_output_has_the_models_dtype(arch: _Arch, seed: int) -> None:
    # "dtype float64 works end to end", and a float32 model stays float32: a 0-d float64 beta
    # (a warm-up schedule built from numpy floats) must not promote the 0-d loss to float64.
    # Every combination, not a drawn one, so that none is left out.
    for dtype, beta_dtype, iwae_k in itertools.product(
        (torch.float32, torch.float64), (torch.float32, torch.float64), (1, 2)
    ):
        model = arch.build(seed, dtype)
        x, y = arch.data(3, seed, dtype)
        beta = torch.tensor(0.5, dtype=beta_dtype)
        out = model.loss(x, y, beta=beta, iwae_k=iwae_k, generator=_gen(seed))
        assert {name: v.dtype for name, v in out.items()} == dict.fromkeys(out, dtype), beta
    results = [
        *model.encode(x, y),
        *model(x, y),
        model.decode(model.encode(x, y)[0], y),
        model.reconstruct(x, y),
        model.sample(2, None if y is None else y[:2]),
        model.elbo(x, y),
        model.iwae_bound(x, 2, y),
        model.log_importance_weights(x, 2, y),
    ]
    assert [r.dtype for r in results] == [torch.float64] * len(results)


# --- batch independence, shapes, sampling -----------------------------------------------------


@_SETTINGS
@given(arch=archs(), batch=st.integers(2, 5), seed=seeds, data=st.data())
def test_eval_mode_results_for_one_example_ignore_the_rest_of_the_batch(
    arch: _Arch, batch: int, seed: int, data: st.DataObject
) -> None:
    # float32 (the default): a batch of 1 and a batch of B may take different matmul/conv
    # kernels, which round differently by a few ulps of values of order 1-10: 1e-5 covers them,
    # while mixing examples changes results by O(1).
    model = arch.build(seed, torch.float32).eval()
    x, y = arch.data(batch, seed, torch.float32)
    perm = torch.tensor(data.draw(st.permutations(range(batch)), label="permutation"))
    whole = {
        "forward": model(x, y),
        "encode": model.encode(x, y),
        "reconstruct": (model.reconstruct(x, y),),
    }
    permuted = {
        "forward": model(x[perm], None if y is None else y[perm]),
        "encode": model.encode(x[perm], None if y is None else y[perm]),
        "reconstruct": (model.reconstruct(x[perm], None if y is None else y[perm]),),
    }
    for i in range(batch):
        yi = None if y is None else y[i : i + 1]
        alone = {
            "forward": model(x[i : i + 1], yi),
            "encode": model.encode(x[i : i + 1], yi),
            "reconstruct": (model.reconstruct(x[i : i + 1], yi),),
        }
        for name, outs in alone.items():
            for a, b in zip(outs, whole[name], strict=True):
                torch.testing.assert_close(a[0], b[i], rtol=1e-5, atol=1e-5, msg=name)
    for name, outs in permuted.items():  # permuting the batch permutes the results
        for a, b in zip(outs, whole[name], strict=True):
            torch.testing.assert_close(a, b[perm], rtol=1e-5, atol=1e-5, msg=name)


@_SETTINGS
@given(
    arch=archs(),
    batch=st.integers(0, 4),
    lead=st.lists(st.integers(1, 3), max_size=2).map(tuple),
    k=st.integers(1, 3),
    n=st.integers(1, 4),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=seeds,
)
def test_shapes_for_random_sizes_including_an_empty_batch(
    arch: _Arch,
    batch: int,
    lead: tuple[int, ...],
    k: int,
    n: int,
    dtype: torch.dtype,
    seed: int,
) -> None:
    # The Shapes sections; B = 0 gives empty results of those shapes (there is no batch mean),
    # and loss, whose parts are batch means, refuses it.
    model = arch.build(seed, dtype)
    x, y = arch.data(batch, seed, dtype)
    D, L = arch.input_dim, arch.latent
    mu, logvar = model.encode(x, y)
    assert mu.shape == logvar.shape == (batch, L)
    out, mu2, _ = model(x, y)
    assert out.shape == (batch, D)
    assert mu2.shape == (batch, L)
    z = torch.randn(*lead, batch, L, dtype=dtype)
    decoded = model.decode(z, y)
    assert decoded.shape == (*lead, batch, D)
    assert model.reconstruct(x, y).shape == (batch, D)
    assert model.elbo(x, y).shape == (batch,)
    assert model.iwae_bound(x, k, y).shape == (batch,)
    assert model.log_importance_weights(x, k, y).shape == (k, batch)
    samples = model.sample(n, None if y is None else 0)
    assert samples.shape == (n, D)
    if batch == 0:
        with pytest.raises(ValueError, match=r"x: expected a non-empty batch"):
            model.loss(x, y)
    else:
        out_loss = model.loss(x, y, iwae_k=k)
        assert {name: v.shape for name, v in out_loss.items()} == dict.fromkeys(
            ("loss", "recon", "kl", "elbo"), torch.Size([])
        )
    if arch.kind != "conv":
        # encoder D (+ C) -> hidden -> 2L, decoder L (+ C) -> reversed(hidden) -> D
        C = arch.num_classes
        enc = [(m.in_features, m.out_features) for m in _linears(model.encoder)]
        dec = [(m.in_features, m.out_features) for m in _linears(model.decoder)]
        assert enc == list(itertools.pairwise([D + C, *arch.hidden, 2 * L]))
        assert dec == list(itertools.pairwise([L + C, *reversed(arch.hidden), D]))


@_SETTINGS
@given(arch=archs(), n=st.integers(1, 5), seed=seeds)
def test_sample_is_the_decoder_mean_at_prior_draws(arch: _Arch, n: int, seed: int) -> None:
    model = arch.build(seed, torch.float32)
    label = seed % arch.num_classes if arch.kind == "conditional" else None
    got = model.sample(n, label, generator=_gen(seed))
    param = next(model.parameters())
    assert got.shape == (n, arch.input_dim)
    assert (got.dtype, got.device) == (param.dtype, param.device)
    assert not got.requires_grad  # "No gradient is recorded"
    # z ~ N(0, I) from the generator; the mean of p(x | z): sigmoid(logits) or the Gaussian mean
    z = torch.randn(n, arch.latent, generator=_gen(seed))
    labels = None if label is None else torch.full((n,), label)
    with torch.no_grad():
        out = model.decode(z, labels)
    expected = torch.sigmoid(out) if arch.likelihood == "bernoulli" else out
    # same ops on the same values, batched the same way: bit for bit
    assert torch.equal(got, expected)
    if arch.likelihood == "bernoulli":
        assert bool(((got >= 0) & (got <= 1)).all())
    if labels is not None:  # an int label is that label for every sample
        assert torch.equal(model.sample(n, labels, generator=_gen(seed)), got)


@_SETTINGS
@given(
    arch=archs(("conditional",)),
    batch=st.integers(1, 4),
    lead=st.lists(st.integers(1, 3), max_size=2).map(tuple),
    seed=seeds,
)
def test_conditional_vae_runs_its_networks_on_concatenated_one_hot_labels(
    arch: _Arch, batch: int, lead: tuple[int, ...], seed: int
) -> None:
    # "the one-hot label is concatenated to the encoder's input and to the decoder's input"
    model = arch.build(seed)
    x, y = arch.data(batch, seed)
    assert y is not None
    c = F.one_hot(y, arch.num_classes).double()
    h = _mlp(model.encoder, arch.activation, torch.cat([x, c], -1))
    mu, logvar = model.encode(x, y)
    # float64 rounding of a few layers of width <= 6 (the same operations, one by one)
    torch.testing.assert_close(mu, h[:, : arch.latent], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logvar, h[:, arch.latent :], rtol=1e-12, atol=1e-12)
    z = torch.randn(*lead, batch, arch.latent, generator=_gen(seed), dtype=torch.float64)
    expected = _mlp(model.decoder, arch.activation, _cat(z, c))
    torch.testing.assert_close(model.decode(z, y), expected, rtol=1e-12, atol=1e-12)


@_FEW
@given(arch=archs(("conv",)), batch=st.integers(1, 3), k=st.integers(1, 3), seed=seeds)
def test_conv_vae_decode_folds_leading_sample_dimensions(
    arch: _Arch, batch: int, k: int, seed: int
) -> None:
    # decode(z: (K, B, L)) is decode of each z[i]; the convolutions see one batch dimension.
    model = arch.build(seed)
    z = torch.randn(k, batch, arch.latent, generator=_gen(seed), dtype=torch.float64)
    folded = model.decode(z)
    for i in range(k):
        torch.testing.assert_close(folded[i], model.decode(z[i]), rtol=1e-12, atol=1e-12)


@_FEW
@given(arch=archs(), seed=seeds)
def test_config_round_trips_through_json(arch: _Arch, seed: int) -> None:
    model = arch.build(seed)
    twin = type(model).from_config(json.loads(json.dumps(model.config()))).double()
    twin.load_state_dict(model.state_dict())  # strict: the same architecture, key for key
    assert twin.config() == model.config()
    x, y = arch.data(2, seed)
    torch.testing.assert_close(
        twin.elbo(x, y, generator=_gen(1)), model.elbo(x, y, generator=_gen(1))
    )


# --- errors -----------------------------------------------------------------------------------


@_SETTINGS
@given(arch=archs(), batch=st.integers(1, 3), seed=seeds, data=st.data())
def test_bad_data_raises_the_documented_errors(
    arch: _Arch, batch: int, seed: int, data: st.DataObject
) -> None:
    model = arch.build(seed, torch.float32)
    x, y = arch.data(batch, seed, torch.float32)
    D = arch.input_dim
    calls: list[Callable[[Tensor], object]] = [
        lambda t: model.encode(t, y),
        lambda t: model(t, y),
        lambda t: model.elbo(t, y),
        lambda t: model.iwae_bound(t, 2, y),
        lambda t: model.reconstruct(t, y),
        lambda t: model.loss(t, y),
    ]
    call = data.draw(st.sampled_from(calls), label="method")
    other = data.draw(st.integers(1, 8).filter(lambda n: n != D), label="wrong D")
    with pytest.raises(ValueError, match=rf"x: expected shape \(B, {D}\)"):
        call(torch.rand(batch, other))
    with pytest.raises(ValueError, match=r"x: expected shape .*flatten images"):
        call(torch.rand(batch, 1, D, 1))
    with pytest.raises(ValueError, match=r"x: expected shape"):
        call(torch.rand(D))
    with pytest.raises(TypeError, match=r"x: expected a floating-point tensor"):
        call((x > 0.5).to(torch.uint8))
    with pytest.raises(TypeError, match=r"x: expected dtype torch.float32 .*got torch.float64"):
        call(x.double())
    with pytest.raises(TypeError, match=r"x: expected a Tensor"):
        call(x.tolist())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"z: expected dtype torch.float32"):
        model.decode(torch.zeros(batch, arch.latent, dtype=torch.float64), y)
    with pytest.raises(ValueError, match=rf"z: expected shape \(\.\.\., {arch.latent}\)"):
        model.decode(torch.zeros(batch, arch.latent + 1), y)


@_SETTINGS
@given(arch=archs(("conditional",)), batch=st.integers(1, 3), seed=seeds, data=st.data())
def test_bad_labels_raise_the_documented_errors(
    arch: _Arch, batch: int, seed: int, data: st.DataObject
) -> None:
    model = arch.build(seed, torch.float32)
    x, y = arch.data(batch, seed, torch.float32)
    assert y is not None
    C = arch.num_classes
    method = data.draw(
        st.sampled_from(["encode", "forward", "elbo", "iwae_bound", "loss", "reconstruct"]),
        label="method",
    )

    def call(labels: object) -> object:
        if method == "iwae_bound":
            return model.iwae_bound(x, 2, labels)  # type: ignore[arg-type]
        fn = model if method == "forward" else getattr(model, method)
        return fn(x, labels)

    bad = data.draw(st.one_of(st.integers(-5, -1), st.integers(C, C + 5)), label="bad label")
    out_of_range = y.clone()
    out_of_range[data.draw(st.integers(0, batch - 1), label="row")] = bad
    with pytest.raises(ValueError, match=rf"y: expected labels in \[0, {C}\)"):
        call(out_of_range)
    with pytest.raises(ValueError, match=rf"y: expected a class in \[0, {C}\)"):
        call(bad)
    with pytest.raises(ValueError, match=r"y: ConditionalVAE needs class labels"):
        call(None)
    with pytest.raises(TypeError, match=r"y: expected integer class labels"):
        call(y.float())
    with pytest.raises(TypeError, match=r"y: expected integer class labels"):
        call(y == 0)
    with pytest.raises(ValueError, match=rf"y: expected shape \({batch},\)"):
        call(torch.cat([y, y]))
    with pytest.raises(ValueError, match=rf"y: expected shape \({batch},\)"):
        call(y.unsqueeze(1))
    with pytest.raises(TypeError, match=r"y: expected an integer tensor"):
        call(y.tolist())
    with pytest.raises(ValueError, match=rf"y: expected a class in \[0, {C}\)"):
        model.sample(2, bad)


@_FEW
@given(arch=archs(), batch=st.integers(1, 3), seed=seeds, data=st.data())
def test_bad_objective_settings_and_targets_raise_the_documented_errors(
    arch: _Arch, batch: int, seed: int, data: st.DataObject
) -> None:
    model = arch.build(seed, torch.float32)
    x, y = arch.data(batch, seed, torch.float32)
    for k in (0, -1):
        with pytest.raises(ValueError, match=r"k: expected a positive integer"):
            model.iwae_bound(x, k, y)
        with pytest.raises(ValueError, match=r"iwae_k: expected a positive integer"):
            model.loss(x, y, iwae_k=k)
    with pytest.raises(TypeError, match=r"k: expected a positive integer"):
        model.log_importance_weights(x, True, y)
    bad_beta = data.draw(st.sampled_from([-0.5, math.inf, math.nan]), label="beta")
    with pytest.raises(ValueError, match=r"beta: expected a finite float >= 0"):
        model.loss(x, y, beta=bad_beta)
    with pytest.raises(ValueError, match=r"beta: expected a 0-d tensor"):
        model.loss(x, y, beta=torch.ones(2))
    with pytest.raises(TypeError, match=r"beta: expected a float or a 0-d tensor"):
        model.loss(x, y, beta="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"free_bits: expected a finite float >= 0"):
        model.loss(x, y, free_bits=data.draw(st.sampled_from([-0.1, math.inf, math.nan])))
    with pytest.raises(ValueError, match=r"free_bits: must be 0 with the IWAE objective"):
        model.loss(x, y, free_bits=0.5, iwae_k=data.draw(st.integers(2, 4), label="k"))
    with pytest.raises(ValueError, match=r"target: expected the shape of x"):
        model.loss(x, y, target=x[:, :-1] if arch.input_dim > 1 else x[:0])
    with pytest.raises(TypeError, match=r"target: expected a floating-point tensor"):
        model.loss(x, y, target=(x > 0.5).long())
    with pytest.raises(TypeError, match=r"target: expected dtype torch.float32"):
        model.loss(x, y, target=x.double())
    bad = x.clone()
    if arch.likelihood == "bernoulli":
        bad[0, 0] = data.draw(st.sampled_from([-0.5, 1.5, math.nan, math.inf]), label="value")
        message = r"target: expected finite values in \[0, 1\]"
    else:
        bad[0, 0] = data.draw(st.sampled_from([math.nan, math.inf, -math.inf]), label="value")
        message = r"target: expected finite values, got 1 NaN or Inf"
    with pytest.raises(ValueError, match=message):
        model.loss(x, y, target=bad)
    with pytest.raises(ValueError, match=r"n: expected a positive integer"):
        model.sample(0, None if y is None else 0)
