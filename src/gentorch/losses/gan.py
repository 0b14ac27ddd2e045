"""GAN objectives: hinge (SN-GAN's default), non-saturating BCE, and WGAN-GP.

Every loss takes the discriminator's raw outputs ("logits", any shape, usually ``(B,)`` or
``(B, 1)``) and returns a scalar to *minimize*. For the hinge loss of Miyato et al. (2018),

    V_D = E[min(0, -1 + D(x))] + E[min(0, -1 - D(G(z)))],    V_G = -E[D(G(z))],

the discriminator maximizes ``V_D``, so :func:`hinge_discriminator_loss` returns ``-V_D`` and
:func:`hinge_generator_loss` returns ``V_G``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gentorch._checks import check_generator

__all__ = [
    "GAN_LOSSES",
    "bce_discriminator_loss",
    "bce_generator_loss",
    "discriminator_loss",
    "generator_loss",
    "gradient_penalty",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "wasserstein_discriminator_loss",
    "wasserstein_generator_loss",
]

#: Names accepted by :func:`discriminator_loss` and :func:`generator_loss`.
GAN_LOSSES = ("hinge", "bce", "wgan-gp")


def _check_logits(name: str, logits: Tensor) -> None:
    if not isinstance(logits, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {logits.dtype}")
    if logits.numel() == 0:
        raise ValueError(
            f"{name}: expected at least one discriminator output, got shape {tuple(logits.shape)}"
        )


def hinge_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Hinge loss of the discriminator, ``-V_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``.

    Args:
        real_logits: discriminator outputs on real data, any shape (e.g. ``(B,)``).
        fake_logits: discriminator outputs on generated data, any shape.

    Returns:
        A scalar tensor (0-d), the negated ``V_D`` of Miyato et al. (2018), eq. (16).

    Example:
        >>> import torch
        >>> from gentorch.losses import hinge_discriminator_loss
        >>> real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.0])
        >>> hinge_discriminator_loss(real, fake)  # (0 + 0.5) / 2 + (0 + 1) / 2
        tensor(0.7500)
    """
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    # -min(0, -1 + d) = relu(1 - d);  -min(0, -1 - d) = relu(1 + d)
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_generator_loss(fake_logits: Tensor) -> Tensor:
    """Hinge loss of the generator, ``V_G = -E[D(G(z))]``.

    Args:
        fake_logits: discriminator outputs on generated data, any shape.

    Returns:
        A scalar tensor (0-d).

    Example:
        >>> import torch
        >>> from gentorch.losses import hinge_generator_loss
        >>> hinge_generator_loss(torch.tensor([1.0, 3.0]))
        tensor(-2.)
    """
    _check_logits("fake_logits", fake_logits)
    return -fake_logits.mean()


def bce_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Binary cross-entropy of the discriminator (the original GAN objective, negated).

    ``-E[log sigmoid(D(x))] - E[log(1 - sigmoid(D(G(z))))]``, computed stably with softplus.

    Args:
        real_logits: discriminator outputs (logits) on real data, any shape.
        fake_logits: discriminator outputs (logits) on generated data, any shape.

    Returns:
        A scalar tensor (0-d).

    Example:
        >>> import torch
        >>> from gentorch.losses import bce_discriminator_loss
        >>> z = torch.zeros(4)
        >>> bce_discriminator_loss(z, z)  # 2 log 2
        tensor(1.3863)
    """
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    # -log sigmoid(d) = softplus(-d);  -log(1 - sigmoid(d)) = softplus(d)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def bce_generator_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss ``-E[log sigmoid(D(G(z)))]`` (Goodfellow et al., 2014).

    Args:
        fake_logits: discriminator outputs (logits) on generated data, any shape.

    Returns:
        A scalar tensor (0-d).

    Example:
        >>> import torch
        >>> from gentorch.losses import bce_generator_loss
        >>> bce_generator_loss(torch.zeros(3))  # log 2
        tensor(0.6931)
    """
    _check_logits("fake_logits", fake_logits)
    return F.softplus(-fake_logits).mean()


def wasserstein_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Critic loss of WGAN, ``E[D(G(z))] - E[D(x)]`` (add :func:`gradient_penalty` for WGAN-GP).

    Args:
        real_logits: critic outputs on real data, any shape.
        fake_logits: critic outputs on generated data, any shape.

    Returns:
        A scalar tensor (0-d).

    Example:
        >>> import torch
        >>> from gentorch.losses import wasserstein_discriminator_loss
        >>> wasserstein_discriminator_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0]))
        tensor(-2.)
    """
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    return fake_logits.mean() - real_logits.mean()


def wasserstein_generator_loss(fake_logits: Tensor) -> Tensor:
    """Generator loss of WGAN, ``-E[D(G(z))]``.

    Args:
        fake_logits: critic outputs on generated data, any shape.

    Returns:
        A scalar tensor (0-d).

    Example:
        >>> import torch
        >>> from gentorch.losses import wasserstein_generator_loss
        >>> wasserstein_generator_loss(torch.tensor([0.5, 1.5]))
        tensor(-1.)
    """
    _check_logits("fake_logits", fake_logits)
    return -fake_logits.mean()


def gradient_penalty(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP's penalty ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` (Gulrajani et al., 2017).

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1]`` per sample. The graph is
    kept (``create_graph=True``) so the penalty can be back-propagated into the discriminator's
    parameters (a double backward, which works through :class:`gentorch.layers.SpectralNorm`).
    Multiply by the usual weight (10 in the paper) before adding it to the critic loss.

    Args:
        discriminator: maps ``(B, ...)`` to ``(B,)`` or ``(B, 1)`` outputs.
        real: real samples, ``(B, ...)``.
        fake: generated samples, same shape as ``real`` (detached by the caller or not).
        generator: optional random generator for the interpolation weights.

    Returns:
        A scalar tensor (0-d), differentiable w.r.t. the discriminator's parameters.

    Raises:
        TypeError: ``real`` or ``fake`` is not a floating-point tensor, ``discriminator`` is
            not callable or returns no tensor, or ``generator`` is not a ``torch.Generator``.
        ValueError: their shapes differ, the batch is empty, or the discriminator does not
            return one differentiable output per sample.

    Example:
        A linear critic with weight ``w`` has ``grad_x D = w`` everywhere, so the penalty is
        ``(||w|| - 1)^2``:

        >>> import torch
        >>> from gentorch.losses import gradient_penalty
        >>> critic = torch.nn.Linear(4, 1)
        >>> _ = torch.nn.init.ones_(critic.weight)  # ||w|| = 2
        >>> gp = gradient_penalty(critic, torch.randn(8, 4), torch.randn(8, 4))
        >>> gp.detach()
        tensor(1.)
        >>> gp.backward()  # double backward: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = w
        >>> critic.weight.grad
        tensor([[1., 1., 1., 1.]])
    """
    if not callable(discriminator):
        raise TypeError(
            f"discriminator: expected a callable (e.g. an nn.Module), got "
            f"{type(discriminator).__name__}"
        )
    for name, t in (("real", real), ("fake", fake)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected a Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}")
    check_generator(generator)
    if real.shape != fake.shape:
        raise ValueError(
            f"fake: expected the shape of real {tuple(real.shape)}, got {tuple(fake.shape)}"
        )
    if real.dim() < 1 or real.shape[0] == 0:
        raise ValueError(f"real: expected a non-empty batch (B, ...), got {tuple(real.shape)}")
    eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(eps_shape, device=real.device, dtype=real.dtype, generator=generator)
    # x_hat = eps * x + (1 - eps) * G(z), a point on the segment between a real and a fake sample
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    out = discriminator(x_hat)
    if not isinstance(out, Tensor):
        raise TypeError(f"discriminator: expected a Tensor output, got {type(out).__name__}")
    if out.dim() == 0 or out.shape[0] != real.shape[0] or out.numel() != real.shape[0]:
        raise ValueError(
            f"discriminator: expected one output per sample, (B,) or (B, 1) with B = "
            f"{real.shape[0]}, got {tuple(out.shape)}"
        )
    grad = None
    if out.requires_grad:
        (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True, allow_unused=True)
    if grad is None:
        raise ValueError(
            "discriminator: expected an output that depends differentiably on its input, got "
            f"one with no gradient path to it (requires_grad={out.requires_grad}: called under "
            "torch.no_grad(), or the input detached or unused inside?)"
        )
    # (||grad||_2 - 1)^2 per sample, averaged over the batch
    norms = torch.linalg.vector_norm(grad.flatten(1), dim=1)
    penalty: Tensor = ((norms - 1.0) ** 2).mean()
    return penalty


def discriminator_loss(name: str, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The discriminator loss called ``name`` (one of :data:`GAN_LOSSES`).

    ``"hinge"`` is :func:`hinge_discriminator_loss`, ``"bce"`` :func:`bce_discriminator_loss`
    and ``"wgan-gp"`` :func:`wasserstein_discriminator_loss`: the critic loss without the
    penalty; add ``weight * gradient_penalty(...)`` yourself.

    Args:
        name: ``"hinge"``, ``"bce"`` or ``"wgan-gp"``.
        real_logits: discriminator outputs on real data, any shape (e.g. ``(B,)``).
        fake_logits: discriminator outputs on generated data, any shape.

    Returns:
        A scalar tensor (0-d), the loss to minimize.

    Raises:
        ValueError: ``name`` is not in :data:`GAN_LOSSES`, or a logits tensor is empty.
        TypeError: a logits argument is not a floating-point tensor.

    Example:
        >>> import torch
        >>> from gentorch.losses import discriminator_loss
        >>> real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.0])
        >>> discriminator_loss("hinge", real, fake)
        tensor(0.7500)
        >>> discriminator_loss("wgan-gp", real, fake)  # mean(fake) - mean(real)
        tensor(-2.7500)
    """
    if name == "hinge":
        return hinge_discriminator_loss(real_logits, fake_logits)
    if name == "bce":
        return bce_discriminator_loss(real_logits, fake_logits)
    if name == "wgan-gp":
        return wasserstein_discriminator_loss(real_logits, fake_logits)
    raise ValueError(f"name: expected one of {GAN_LOSSES}, got {name!r}")


def generator_loss(name: str, fake_logits: Tensor) -> Tensor:
    """The generator loss called ``name`` (one of :data:`GAN_LOSSES`).

    ``"hinge"`` is :func:`hinge_generator_loss`, ``"bce"`` the non-saturating
    :func:`bce_generator_loss` and ``"wgan-gp"`` :func:`wasserstein_generator_loss`.

    Args:
        name: ``"hinge"``, ``"bce"`` or ``"wgan-gp"``.
        fake_logits: discriminator outputs on generated data, any shape (e.g. ``(B,)``).

    Returns:
        A scalar tensor (0-d), the loss to minimize.

    Raises:
        ValueError: ``name`` is not in :data:`GAN_LOSSES`, or ``fake_logits`` is empty.
        TypeError: ``fake_logits`` is not a floating-point tensor.

    Example:
        >>> import torch
        >>> from gentorch.losses import generator_loss
        >>> generator_loss("bce", torch.zeros(3))  # log 2
        tensor(0.6931)
        >>> generator_loss("hinge", torch.tensor([1.0, 3.0]))  # -mean
        tensor(-2.)
    """
    if name == "hinge":
        return hinge_generator_loss(fake_logits)
    if name == "bce":
        return bce_generator_loss(fake_logits)
    if name == "wgan-gp":
        return wasserstein_generator_loss(fake_logits)
    raise ValueError(f"name: expected one of {GAN_LOSSES}, got {name!r}")
