"""Losses: divergences, likelihoods and GAN objectives. Depends on :mod:`gentorch.layers` only."""

from gentorch.losses.kl import gaussian_kl, gaussian_kl_between, gaussian_kl_free_bits
from gentorch.losses.likelihood import bernoulli_log_likelihood, gaussian_log_likelihood

__all__: list[str] = []
__all__ += ["gaussian_kl", "gaussian_kl_between", "gaussian_kl_free_bits"]
__all__ += ["bernoulli_log_likelihood", "gaussian_log_likelihood"]
