"""Losses: divergences, likelihoods and GAN objectives. Depends on :mod:`gentorch.layers` only."""

__all__: list[str] = []
