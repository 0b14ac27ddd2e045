"""Evaluation of generative models: likelihood bounds, latent statistics and sample quality."""

from gentorch.evaluation.applications import anomaly_auc, anomaly_scores, denoise, psnr
from gentorch.evaluation.classifier import (
    LeNet,
    classifier_accuracy,
    load_classifier,
    pretrained_classifier,
    save_classifier,
    train_classifier,
)
from gentorch.evaluation.frechet import frechet_distance
from gentorch.evaluation.gan_metrics import (
    classifier_features,
    classifier_inception_score,
    classifier_probabilities,
    fld,
    inception_score,
)
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
__all__ += ["LeNet", "classifier_accuracy", "load_classifier", "pretrained_classifier"]
__all__ += ["save_classifier", "train_classifier"]
__all__ += ["classifier_features", "classifier_inception_score", "classifier_probabilities"]
__all__ += ["fld", "inception_score"]
