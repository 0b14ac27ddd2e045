"""Evaluation of generative models: likelihood bounds, latent statistics and sample quality."""

from gentorch.evaluation.frechet import frechet_distance
from gentorch.evaluation.likelihood import log_likelihood, nll, test_elbo

__all__ = ["frechet_distance", "log_likelihood", "nll", "test_elbo"]
