"""Evaluation of generative models: likelihood bounds, latent statistics and sample quality."""

from gentorch.evaluation.applications import anomaly_auc, anomaly_scores, denoise, psnr
from gentorch.evaluation.frechet import frechet_distance
from gentorch.evaluation.latent import active_units, kl_per_dimension, posterior_means
from gentorch.evaluation.likelihood import log_likelihood, nll, test_elbo

__all__ = [
    "active_units",
    "anomaly_auc",
    "anomaly_scores",
    "denoise",
    "frechet_distance",
    "kl_per_dimension",
    "log_likelihood",
    "nll",
    "posterior_means",
    "psnr",
    "test_elbo",
]
