"""The location-scale layers under torch.func: vmap, grad, per-sample gradients, jvp, jacfwd."""

from __future__ import annotations

import warnings
from typing import cast

import pytest
import torch
from torch import func

from gentorch.layers import (
    GumbelSoftmax,
    RelaxedBernoulli,
    Reparameterize,
    ReparameterizeFullCov,
    ReparameterizeLaplace,
    ReparameterizeLogistic,
    reparameterize,
)

F64 = torch.float64

LocationScaleCls = type[ReparameterizeLaplace] | type[ReparameterizeLogistic]
# func.jvp's return type also covers has_aux=True (a triple); without aux it is (output, tangent)
Pair = tuple[torch.Tensor, torch.Tensor]


def _pair(seed: int = 0, shape: tuple[int, ...] = (5, 3)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=F64), torch.randn(shape, generator=g, dtype=F64)


def test_vmap_samples_each_row_and_needs_a_randomness_mode() -> None:
    x = torch.randn(4, 6, 8, dtype=F64)
    layer = Reparameterize().train()
    z = func.vmap(layer, randomness="different")(x)
    assert z.shape == (4, 6, 4)
    # 'different': every vmapped slice gets its own noise
    eps = (z - x[..., :4]) / torch.exp(0.5 * x[..., 4:])
    assert not torch.allclose(eps[0], eps[1])
    # 'same': one noise draw shared by the slices (identical inputs give identical outputs)
    same = func.vmap(layer, randomness="same")(x[:1].expand(3, 6, 8))
    torch.testing.assert_close(same[0], same[2])
    # vmap's default refuses random ops with its own clear error, as for torch.randn
    with pytest.raises(RuntimeError, match="randomness"):
        func.vmap(layer)(x)
    # eval mean mode draws nothing, so it vmaps in the default mode
    torch.testing.assert_close(func.vmap(layer.eval())(x), x[..., :4])


def test_func_grad_equals_autograd_with_the_same_noise() -> None:
    mu, logvar = _pair()

    def loss(m: torch.Tensor, lv: torch.Tensor) -> torch.Tensor:
        return reparameterize(m, lv, n_samples=2).sin().sum()

    torch.manual_seed(1)
    g_mu, g_lv = func.grad(loss, argnums=(0, 1))(mu, logvar)
    m, lv = mu.clone().requires_grad_(), logvar.clone().requires_grad_()
    torch.manual_seed(1)
    loss(m, lv).backward()
    torch.testing.assert_close(g_mu, m.grad)
    torch.testing.assert_close(g_lv, lv.grad)


def test_per_sample_gradients_with_vmap_of_grad_match_a_loop() -> None:
    torch.manual_seed(0)
    w = torch.randn(6, 8, dtype=F64)
    xs = torch.randn(7, 6, dtype=F64)
    layer = Reparameterize().train()

    def loss(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        total: torch.Tensor = layer(x @ w).square().sum()
        return total

    # 'same' randomness: every example sees one noise draw; the loop replays it per example
    torch.manual_seed(3)
    batched = func.vmap(func.grad(loss), in_dims=(None, 0), randomness="same")(w, xs)
    torch.manual_seed(3)
    eps = torch.randn(4, dtype=F64)  # what vmap's single draw was
    for i in range(xs.shape[0]):
        wi = w.clone().requires_grad_()
        out = xs[i] @ wi
        z = out[:4] + torch.exp(0.5 * out[4:]) * eps
        z.square().sum().backward()
        torch.testing.assert_close(batched[i], wi.grad)


@pytest.mark.parametrize("n_samples", [None, 3])
def test_jvp_matches_finite_differences_and_jacfwd_matches_jacrev(n_samples: int | None) -> None:
    mu, logvar = _pair(2)
    v_mu, v_lv = _pair(3)
    gen = torch.Generator()

    def sample(m: torch.Tensor, lv: torch.Tensor) -> torch.Tensor:
        gen.manual_seed(7)  # the same noise on every call
        return reparameterize(m, lv, n_samples=n_samples, generator=gen)

    _, tangent = cast(Pair, func.jvp(sample, (mu, logvar), (v_mu, v_lv)))
    d = 1e-6
    fd = (sample(mu + d * v_mu, logvar + d * v_lv) - sample(mu - d * v_mu, logvar - d * v_lv)) / (
        2 * d
    )
    torch.testing.assert_close(tangent, fd, rtol=1e-6, atol=1e-8)
    # tangent in mu only
    _, t_mu = cast(Pair, func.jvp(lambda m: sample(m, logvar), (mu,), (v_mu,)))
    torch.testing.assert_close(t_mu, v_mu.expand_as(t_mu))
    jf = func.jacfwd(sample, argnums=(0, 1), randomness="same")(mu, logvar)
    jr = func.jacrev(sample, argnums=(0, 1))(mu, logvar)
    for a, b in zip(jf, jr, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("n_samples", [None, 3])
def test_dual_tensors_of_torch_autograd_forward_ad_get_the_exact_tangent(
    n_samples: int | None,
) -> None:
    # torch.autograd.forward_ad (dual tensors) is the other forward-mode API, outside torch.func
    import torch.autograd.forward_ad as fwad

    mu, logvar = _pair(4)
    v_mu, v_lv = _pair(5)
    layer = Reparameterize(n_samples=n_samples).train()
    with fwad.dual_level():
        z = layer(
            (fwad.make_dual(mu, v_mu), fwad.make_dual(logvar, v_lv)),
            generator=torch.Generator().manual_seed(3),
        )
        primal, tangent = fwad.unpack_dual(z)
    assert tangent is not None
    # dz = dmu + 0.5 * sigma * eps * dlogvar, with eps recovered from the primal sample
    eps = (primal - mu) / torch.exp(0.5 * logvar)
    torch.testing.assert_close(tangent, v_mu + 0.5 * torch.exp(0.5 * logvar) * eps * v_lv)


def test_jvp_at_the_clamp_is_straight_through_like_the_backward() -> None:
    mu = torch.zeros(4, dtype=F64)
    logvar = torch.tensor([-50.0, 0.0, 12.0, 40.0], dtype=F64)  # outside the range at both ends
    gen = torch.Generator()

    def sample(lv: torch.Tensor) -> torch.Tensor:
        gen.manual_seed(5)
        return reparameterize(mu, lv, generator=gen)

    _, tangent = cast(Pair, func.jvp(sample, (logvar,), (torch.ones(4, dtype=F64),)))
    lv = logvar.clone().requires_grad_()
    sample(lv).sum().backward()
    torch.testing.assert_close(tangent, lv.grad)
    assert (tangent != 0).all()


@pytest.mark.parametrize("layer_cls", [ReparameterizeLaplace, ReparameterizeLogistic])
def test_other_location_scale_families_vmap_and_jvp(layer_cls: LocationScaleCls) -> None:
    layer = layer_cls().train()
    x = torch.randn(3, 5, 4, dtype=F64)
    assert func.vmap(layer, randomness="different")(x).shape == (3, 5, 2)

    def sample(t: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(11)
        z: torch.Tensor = layer(t)
        return z

    v = torch.randn(5, 4, dtype=F64)
    _, tangent = cast(Pair, func.jvp(sample, (x[0],), (v,)))
    d = 1e-6
    torch.testing.assert_close(
        tangent, (sample(x[0] + d * v) - sample(x[0] - d * v)) / (2 * d), rtol=1e-6, atol=1e-8
    )


@pytest.mark.parametrize("randomness", ["different", "same"])
@pytest.mark.parametrize("n_samples", [None, 2])
@pytest.mark.parametrize("batched", ["mu", "logvar"])
def test_vmap_over_only_one_of_mu_and_logvar(
    randomness: str, n_samples: int | None, batched: str
) -> None:
    mu, logvar = _pair(4)
    stack = torch.stack([mu, mu + 1, mu - 1]) if batched == "mu" else torch.stack([logvar] * 3)
    in_dims = (0, None) if batched == "mu" else (None, 0)
    args = (stack, logvar) if batched == "mu" else (mu, stack)
    torch.manual_seed(0)
    z = func.vmap(
        lambda m, lv: reparameterize(m, lv, n_samples=n_samples),
        in_dims=in_dims,
        randomness=randomness,
    )(*args)
    lead = (3,) if n_samples is None else (3, n_samples)
    assert z.shape == (*lead, *mu.shape)
    mus = stack if batched == "mu" else mu.expand(3, *mu.shape)
    if n_samples is not None:
        mus = mus.unsqueeze(1)
    eps = (z - mus) / torch.exp(0.5 * logvar)
    # 'same': one draw for all slices; 'different': a draw per slice
    assert torch.allclose(eps[0], eps[1]) == (randomness == "same")


@pytest.mark.parametrize(
    ("layer", "width"),
    [
        (ReparameterizeFullCov(), 3 + 6),
        (GumbelSoftmax(0.5), 10),
        (GumbelSoftmax(0.5, hard=True), 10),
        (RelaxedBernoulli(0.5), 8),
        (ReparameterizeLaplace(), 4),
        (ReparameterizeLogistic(), 4),
    ],
)
def test_the_other_layers_vmap_without_fallbacks_and_take_func_grad(
    layer: torch.nn.Module, width: int
) -> None:
    x = torch.randn(4, 5, width, dtype=F64)
    with warnings.catch_warnings():
        # an op without a batching rule warns of a slow fallback: none may be hit
        warnings.simplefilter("error")
        z = func.vmap(layer.train(), randomness="different")(x)
    assert z.shape[:2] == (4, 5)
    torch.manual_seed(2)
    g = func.grad(lambda t: layer(t).square().sum())(x[0])
    t = x[0].clone().requires_grad_()
    torch.manual_seed(2)
    layer(t).square().sum().backward()
    torch.testing.assert_close(g, t.grad)
