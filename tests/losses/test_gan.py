"""GAN losses against hand computations and brute-force formulas."""

from __future__ import annotations

import math
from typing import cast

import pytest
import torch
from torch import nn

from gentorch.losses.gan import (
    GAN_LOSSES,
    bce_discriminator_loss,
    bce_generator_loss,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    hinge_discriminator_loss,
    hinge_generator_loss,
    wasserstein_discriminator_loss,
    wasserstein_generator_loss,
)


def test_hinge_discriminator_by_hand() -> None:
    real = torch.tensor([2.0, 0.5, -1.0])
    fake = torch.tensor([-3.0, 0.0, 0.25, 1.0])
    # -V_D: real terms max(0, 1 - d) = 0, 0.5, 2 -> mean 2.5/3;
    # fake terms max(0, 1 + d) = 0, 1, 1.25, 2 -> mean 4.25/4
    expected = 2.5 / 3 + 4.25 / 4
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(expected, abs=1e-6)


def test_hinge_matches_issue_formula() -> None:
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(50, generator=g) * 2, torch.randn(70, generator=g) * 2
    # V_D = E[min(0, -1 + D(x))] + E[min(0, -1 - D(G(z)))], the loss is -V_D
    v_d = torch.clamp(-1 + real, max=0).mean() + torch.clamp(-1 - fake, max=0).mean()
    torch.testing.assert_close(hinge_discriminator_loss(real, fake), -v_d)
    torch.testing.assert_close(hinge_generator_loss(fake), -fake.mean())


def test_hinge_gradient_is_zero_outside_margin() -> None:
    real = torch.tensor([1.5, 0.5], requires_grad=True)
    fake = torch.tensor([-1.5, -0.5], requires_grad=True)
    hinge_discriminator_loss(real, fake).backward()
    assert real.grad is not None
    assert fake.grad is not None
    # only the samples inside the margin (|d| < 1) get a gradient, -1/N for real, +1/N for fake
    torch.testing.assert_close(real.grad, torch.tensor([0.0, -0.5]))
    torch.testing.assert_close(fake.grad, torch.tensor([0.0, 0.5]))


def test_bce_by_hand_and_stable() -> None:
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -1.0])
    sig = torch.sigmoid
    expected = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    torch.testing.assert_close(bce_discriminator_loss(real, fake), expected)
    torch.testing.assert_close(bce_generator_loss(fake), -torch.log(sig(fake)).mean())
    # very confident logits: the naive log(sigmoid) overflows to inf, softplus stays finite
    big = torch.tensor([-200.0])
    assert bce_generator_loss(big).item() == pytest.approx(200.0)
    assert bce_discriminator_loss(big, -big).item() == pytest.approx(400.0)


def test_wasserstein_by_hand() -> None:
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.5, -0.5, 1.5])
    assert wasserstein_discriminator_loss(real, fake).item() == pytest.approx(0.5 - 2.0)
    assert wasserstein_generator_loss(fake).item() == pytest.approx(-0.5)


def test_gradient_penalty_linear_critic_closed_form() -> None:
    # For D(x) = w.x + b the input gradient is w everywhere: GP = (||w|| - 1)^2 exactly.
    critic = nn.Linear(6, 1).double()
    real, fake = torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 6, dtype=torch.float64)
    gp = gradient_penalty(critic, real, fake)
    expected = (critic.weight.norm() - 1.0) ** 2
    torch.testing.assert_close(gp, expected)
    # and its gradient wrt w is 2 (||w|| - 1) w / ||w|| (double backward through autograd.grad)
    gp.backward()
    w = critic.weight.detach()
    assert critic.weight.grad is not None
    torch.testing.assert_close(critic.weight.grad, 2 * (w.norm() - 1) * w / w.norm())


def test_gradient_penalty_nonlinear_against_brute_force() -> None:
    critic = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    real, fake = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3))
    eps = torch.rand(4, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x_hat = eps * real + (1 - eps) * fake
    norms = []
    for i in range(4):
        jac = torch.autograd.functional.jacobian(lambda v: critic(v).sum(), x_hat[i])
        norms.append(jac.norm())
    expected = torch.stack([(n - 1) ** 2 for n in norms]).mean()
    torch.testing.assert_close(gp, expected)


def test_gradient_penalty_gradcheck() -> None:
    critic = nn.Sequential(nn.Linear(3, 4), nn.Softplus(), nn.Linear(4, 1)).double()
    real, fake = torch.randn(3, 3, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64)
    first = cast(nn.Linear, critic[0])
    w = first.weight

    def penalty(weight: torch.Tensor) -> torch.Tensor:
        def d(x: torch.Tensor) -> torch.Tensor:
            h = torch.nn.functional.linear(x, weight, first.bias)
            out: torch.Tensor = critic[2](critic[1](h))
            return out

        return gradient_penalty(d, real, fake, generator=torch.Generator().manual_seed(0))

    assert torch.autograd.gradcheck(penalty, (w.detach().clone().requires_grad_(True),))


def test_dispatch_and_names() -> None:
    real, fake = torch.randn(8), torch.randn(8)
    pairs = {
        "hinge": (hinge_discriminator_loss, hinge_generator_loss),
        "bce": (bce_discriminator_loss, bce_generator_loss),
        "wgan-gp": (wasserstein_discriminator_loss, wasserstein_generator_loss),
    }
    assert set(GAN_LOSSES) == set(pairs)
    for name, (d_fn, g_fn) in pairs.items():
        torch.testing.assert_close(discriminator_loss(name, real, fake), d_fn(real, fake))
        torch.testing.assert_close(generator_loss(name, fake), g_fn(fake))
    with pytest.raises(ValueError, match="name: expected one of"):
        discriminator_loss("lsgan", real, fake)
    with pytest.raises(ValueError, match="name: expected one of"):
        generator_loss("lsgan", fake)


def test_bad_inputs_raise() -> None:
    with pytest.raises(TypeError, match="real_logits"):
        hinge_discriminator_loss(torch.tensor([1, 2]), torch.randn(2))
    with pytest.raises(ValueError, match="fake_logits"):
        hinge_generator_loss(torch.empty(0))
    with pytest.raises(TypeError, match="fake_logits"):
        bce_generator_loss([1.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fake: expected the shape of real"):
        gradient_penalty(nn.Linear(3, 1), torch.randn(2, 3), torch.randn(3, 3))
    with pytest.raises(ValueError, match="one output per sample"):
        gradient_penalty(nn.Linear(3, 2), torch.randn(2, 3), torch.randn(2, 3))


def test_bce_value_at_zero_is_log2() -> None:
    z = torch.zeros(5)
    assert bce_discriminator_loss(z, z).item() == pytest.approx(2 * math.log(2), abs=1e-6)
    assert bce_generator_loss(z).item() == pytest.approx(math.log(2), abs=1e-6)
