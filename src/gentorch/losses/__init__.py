"""Losses: divergences, likelihoods and GAN objectives. Depends on :mod:`gentorch.layers` only."""

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
from gentorch.losses.kl import gaussian_kl, gaussian_kl_between, gaussian_kl_free_bits
from gentorch.losses.likelihood import bernoulli_log_likelihood, gaussian_log_likelihood

__all__: list[str] = []
__all__ += ["gaussian_kl", "gaussian_kl_between", "gaussian_kl_free_bits"]
__all__ += ["bernoulli_log_likelihood", "gaussian_log_likelihood"]
__all__ += ["GAN_LOSSES", "discriminator_loss", "generator_loss", "gradient_penalty"]
__all__ += ["bce_discriminator_loss", "bce_generator_loss"]
__all__ += ["hinge_discriminator_loss", "hinge_generator_loss"]
__all__ += ["wasserstein_discriminator_loss", "wasserstein_generator_loss"]
