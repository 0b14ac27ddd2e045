"""VAE applications with a number attached: denoising (PSNR) and anomaly detection (ROC-AUC)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from gentorch._checks import check_bool, check_positive_int
from gentorch._float64 import to_float64
from gentorch.evaluation._running import (
    check_finite,
    check_images,
    check_labels,
    evaluating,
    label_args,
    model_method,
    seeded,
)
from gentorch.evaluation.likelihood import log_likelihood

__all__ = ["anomaly_auc", "anomaly_scores", "denoise", "psnr"]


def psnr(clean: Tensor, reconstructed: Tensor, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in decibels over all elements.

    ``PSNR = 10 log10(data_range^2 / MSE)`` with ``MSE`` the mean squared difference over every
    element of the two tensors (one number for the whole set, not a mean of per-image PSNRs).

    Args:
        clean: reference values, any shape, e.g. ``(N, D)`` images in ``[0, 1]``.
        reconstructed: the estimate, same shape.
        data_range: the range of possible values (1.0 for ``[0, 1]`` images, 255 for 8-bit).

    Returns:
        PSNR in dB; ``inf`` when the tensors are equal.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import psnr
        >>> clean = torch.full((4, 16), 0.5)
        >>> psnr(clean, clean + 0.1)  # MSE = 0.01: 10 log10(1 / 0.01) = 20 dB
        20.0
        >>> psnr(clean, clean)
        inf
    """
    for name, t in (("clean", clean), ("reconstructed", reconstructed)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if t.numel() == 0:
            raise ValueError(f"{name}: expected a non-empty tensor, got shape {tuple(t.shape)}")
        if t.is_complex():
            raise TypeError(f"{name}: expected real values, got dtype {t.dtype}")
    if clean.shape != reconstructed.shape:
        raise ValueError(
            f"clean and reconstructed: expected the same shape, got {tuple(clean.shape)} "
            f"and {tuple(reconstructed.shape)}"
        )
    try:
        range_ok = (
            not isinstance(data_range, bool)
            and isinstance(data_range, int | float)
            and 0 < float(data_range) < math.inf
        )
    except OverflowError:  # an int beyond the float range
        range_ok = False
    if not range_ok:
        shown = f"{data_range!r:.40}" + ("..." if len(repr(data_range)) > 40 else "")
        raise ValueError(f"data_range: expected a positive finite number, got {shown}")
    diff = to_float64(clean.detach()) - to_float64(reconstructed.detach().to(clean.device))
    largest = float(diff.abs().max())
    if not math.isfinite(largest):  # name the culprit (only on this failure path: no extra sync)
        check_finite("clean", clean)
        check_finite("reconstructed", reconstructed)
        raise ValueError("clean and reconstructed: their difference overflows (not finite)")
    if largest == 0.0:
        return math.inf
    # MSE = m^2 mean((d / m)^2) with m = max |d|: squares of d itself under- or overflow float64
    # (|d| < 1e-154 would read as equal tensors), and so would R^2
    # PSNR = 10 log10(R^2 / MSE) = 20 (log10 R - log10 m) - 10 log10 mean((d / m)^2)
    scaled_mse = float((diff / largest).square().mean())
    return 20.0 * (math.log10(data_range) - math.log10(largest)) - 10.0 * math.log10(scaled_mse)


def denoise(
    model: nn.Module, noisy: Tensor, *, batch_size: int = 1024, labels: Tensor | None = None
) -> Tensor:
    """Denoise inputs with a VAE: the mean reconstruction ``E[x | z = mu(noisy)]``.

    The model to use is a denoising VAE (Im et al. 2017): one trained on noisy inputs with
    clean targets, ``VAETask(model, input_noise=sigma)`` with ``sigma`` the standard deviation
    of the noise to remove (or ``model.loss(noisy, target=clean)`` in a loop of your own). A VAE
    trained on clean data only has never seen noise at its encoder's input and may not improve
    PSNR; a denoising VAE of the same size and training budget does better (by 0.4 to 0.8 dB on
    scikit-learn's digits at ``sigma = 0.3``). The model runs in eval mode without autograd.

    Args:
        model: a VAE with ``reconstruct(x) -> (B, D)`` (probabilities or means).
        noisy: ``(N, D)`` corrupted inputs.
        batch_size: examples per model call.
        labels: ``(N,)`` class labels for a conditional model, passed as ``reconstruct(x, y)``.

    Returns:
        ``(N, D)`` denoised examples.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import denoise
        >>> from gentorch.models import VAE
        >>> _ = torch.manual_seed(0)
        >>> noisy = (torch.rand(8, 64) + 0.3 * torch.randn(8, 64)).clamp(0, 1)
        >>> out = denoise(VAE(64, [32], 2), noisy)  # train it with VAETask(input_noise=0.3)
        >>> out.shape, bool(((out >= 0) & (out <= 1)).all())  # Bernoulli means
        (torch.Size([8, 64]), True)
    """
    noisy = check_images(noisy, "noisy")
    batch_size = check_positive_int("batch_size", batch_size)
    labels = check_labels(labels, noisy.shape[0])
    reconstruct = model_method(model, "reconstruct")
    with evaluating(model):
        out = [
            reconstruct(noisy[i : i + batch_size], *label_args(labels, i, i + batch_size))
            for i in range(0, noisy.shape[0], batch_size)
        ]
    result = torch.cat(out)
    if result.shape != noisy.shape:
        raise ValueError(
            f"model.reconstruct(x): expected shape {tuple(noisy.shape)}, got {tuple(result.shape)}"
        )
    return result


def anomaly_scores(
    model: nn.Module,
    images: Tensor,
    score: Literal["elbo", "nll"] = "elbo",
    k: int = 100,
    *,
    batch_size: int = 1024,
    generator: torch.Generator | None = None,
    progress: bool = False,
    labels: Tensor | None = None,
) -> Tensor:
    """Anomaly score per example: high means unlikely under the model.

    ``score="elbo"``: ``-ELBO(x)`` from ``model.elbo`` (one sample, fast);
    ``score="nll"``: ``-log p(x)`` by importance sampling with ``k`` samples (tighter, ``k``
    times the cost; see :func:`gentorch.evaluation.log_likelihood`).

    Args:
        model: a VAE with ``elbo(x)`` (and ``log_importance_weights(x, k)`` for ``"nll"``).
        images: ``(N, D)`` examples.
        score: ``"elbo"`` or ``"nll"``.
        k: importance samples for ``"nll"``.
        batch_size: examples per model call for ``"elbo"``.
        generator: makes the scores reproducible.
        progress: progress bar for ``"nll"``.
        labels: ``(N,)`` class labels for a conditional model: the scores are then
            ``-log p(x | y)`` bounds (passed as ``elbo(x, y)`` or
            ``log_importance_weights(x, k, y)``).

    Returns:
        ``(N,)`` scores in nats.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import anomaly_scores
        >>> from gentorch.models import VAE
        >>> _ = torch.manual_seed(0)
        >>> model, x = VAE(64, [32], 2), torch.rand(8, 64)
        >>> scores = anomaly_scores(model, x)  # -ELBO = reconstruction BCE + KL > 0
        >>> scores.shape, bool((scores > 0).all())
        (torch.Size([8]), True)
        >>> anomaly_scores(model, x, score="nll", k=10).shape
        torch.Size([8])
    """
    images = check_images(images)
    labels = check_labels(labels, images.shape[0])
    k = check_positive_int("k", k)
    batch_size = check_positive_int("batch_size", batch_size)
    progress = check_bool("progress", progress)
    if score == "nll":
        return -log_likelihood(
            model, images, k, generator=generator, progress=progress, labels=labels
        )
    if score != "elbo":
        raise ValueError(f"score: expected 'elbo' or 'nll', got {score!r}")
    elbo = model_method(model, "elbo")
    values = []
    with evaluating(model), seeded(generator, images.device):
        for start in range(0, images.shape[0], batch_size):
            xb = images[start : start + batch_size]
            value = elbo(xb, *label_args(labels, start, start + batch_size))
            if not isinstance(value, Tensor) or value.shape != (xb.shape[0],):
                got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(
                    f"model.elbo(x): expected shape ({xb.shape[0]},) = (B,), got {got}"
                )
            values.append(-value)
    return torch.cat(values)


def anomaly_auc(scores: Tensor, is_anomaly: Tensor) -> float:
    """Area under the ROC curve of anomaly scores (higher score = more anomalous).

    The probability that a random anomaly scores higher than a random normal example (ties
    count one half), by :func:`sklearn.metrics.roc_auc_score`. 0.5 is chance, 1.0 perfect.

    Args:
        scores: ``(N,)`` anomaly scores, finite.
        is_anomaly: ``(N,)`` booleans (or 0/1), with both classes present.

    Returns:
        ROC-AUC in ``[0, 1]``.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import anomaly_auc
        >>> scores = torch.tensor([0.1, 0.4, 0.35, 0.8])
        >>> anomaly_auc(scores, torch.tensor([False, False, True, True]))  # 3 of 4 pairs ranked
        0.75
    """
    from sklearn.metrics import roc_auc_score

    for name, t in (("scores", scores), ("is_anomaly", is_anomaly)):
        if not isinstance(t, Tensor):
            raise TypeError(
                f"{name}: expected a torch.Tensor of shape (N,), got {type(t).__name__}"
            )
        if t.dim() != 1:
            raise ValueError(f"{name}: expected shape (N,), got {tuple(t.shape)}")
        if t.is_complex():
            raise TypeError(f"{name}: expected real values, got dtype {t.dtype}")
    if scores.shape != is_anomaly.shape:
        raise ValueError(
            f"scores and is_anomaly: expected the same length, got {scores.shape[0]} "
            f"and {is_anomaly.shape[0]}"
        )
    labels = is_anomaly.detach().cpu()
    if labels.dtype != torch.bool:
        bad = labels[(labels != 0) & (labels != 1)]
        if bad.numel() > 0:
            raise ValueError(
                f"is_anomaly: expected booleans or 0/1 values, got {bad.numel()} other values "
                f"such as {bad[0].item()!r}"
            )
        labels = labels.to(torch.bool)
    n_anomalies = int(labels.sum())
    if n_anomalies in (0, labels.shape[0]):
        raise ValueError(
            f"is_anomaly: expected both anomalies and normal examples, got {n_anomalies} "
            f"anomalies of {labels.shape[0]}"
        )
    values = scores.detach().cpu()
    check_finite("scores", values)
    # The AUC depends on the order of the scores only: pass their dense ranks, exact for every
    # dtype (float64 would merge distinct int64 scores above 2^53 into ties)
    ranks = torch.unique(values, sorted=True, return_inverse=True)[1]
    return float(roc_auc_score(labels.numpy(), ranks.numpy()))
