"""Evaluation of generative models: likelihood bounds, latent statistics and sample quality."""

from gentorch.evaluation.frechet import frechet_distance

__all__ = ["frechet_distance"]
