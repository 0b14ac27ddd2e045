"""Sample-quality numbers for GANs from a small classifier: FLD and a classifier Inception Score.

- FLD: the Fréchet distance between the classifier's penultimate features of real and of
  generated images (FID with a LeNet in place of Inception-v3; lower is better).
- IS: ``exp(E_x KL(p(y|x) || p(y)))`` with the classifier's class probabilities (Salimans et al.,
  2016; higher is better, at most the number of classes).

Both take images as tensors ``(N, C, 28, 28)`` in ``[0, 1]`` (or flat ``(N, C*784)``) and a
:class:`~gentorch.evaluation.classifier.LeNet`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gentorch._checks import check_positive_int
from gentorch._float64 import to_float64
from gentorch.evaluation._running import check_finite
from gentorch.evaluation.classifier import LeNet, _as_images, _check_dtype
from gentorch.evaluation.frechet import frechet_distance

__all__ = [
    "classifier_features",
    "classifier_inception_score",
    "classifier_probabilities",
    "fld",
    "inception_score",
]


def _batched(
    classifier: LeNet, images: Tensor, batch_size: int, head: bool, name: str = "images"
) -> Tensor:
    if not isinstance(classifier, LeNet):
        raise TypeError(f"classifier: expected a LeNet, got {type(classifier).__name__}")
    batch_size = check_positive_int("batch_size", batch_size)
    x = _as_images(name, images, classifier.in_channels)
    _check_dtype(name, x, classifier)
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    outs = []
    try:
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                xb = x[start : start + batch_size].to(device)
                out = torch.softmax(classifier(xb), dim=1) if head else classifier.features(xb)
                outs.append(out)
    finally:
        classifier.train(was_training)
    return torch.cat(outs)


def classifier_features(classifier: LeNet, images: Tensor, *, batch_size: int = 500) -> Tensor:
    """Penultimate features ``(N, feature_dim)`` of ``images`` (``(N, C, 28, 28)`` or flat).

    :meth:`LeNet.features` in eval mode, without autograd, in batches on the classifier's
    device; the classifier's training mode is restored after. These are the features that
    :func:`fld` compares.

    Args:
        classifier: the feature network.
        images: ``(N, C, 28, 28)`` or flat ``(N, C*784)`` float images in ``[0, 1]``, with
            ``C = classifier.in_channels`` and ``N >= 1``.
        batch_size: images per forward pass.

    Returns:
        ``(N, feature_dim)`` features (ReLU outputs, so ``>= 0``) on the classifier's device.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import LeNet, classifier_features
        >>> f = classifier_features(LeNet(), torch.rand(6, 784))
        >>> f.shape, bool((f >= 0).all())
        (torch.Size([6, 128]), True)
    """
    return _batched(classifier, images, batch_size, head=False)


def classifier_probabilities(classifier: LeNet, images: Tensor, *, batch_size: int = 500) -> Tensor:
    """Class probabilities ``p(y|x)``, ``(N, num_classes)``, of ``images``.

    The softmax of the logits in eval mode (no dropout), without autograd, in batches on the
    classifier's device; the classifier's training mode is restored after.

    Args:
        classifier: the classifier.
        images: ``(N, C, 28, 28)`` or flat ``(N, C*784)`` float images in ``[0, 1]``, with
            ``C = classifier.in_channels`` and ``N >= 1``.
        batch_size: images per forward pass.

    Returns:
        ``(N, num_classes)`` probabilities, each row summing to 1, on the classifier's device.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import LeNet, classifier_probabilities
        >>> p = classifier_probabilities(LeNet(), torch.rand(6, 1, 28, 28))
        >>> p.shape, bool(torch.allclose(p.sum(1), torch.ones(6)))
        (torch.Size([6, 10]), True)
    """
    return _batched(classifier, images, batch_size, head=True)


def inception_score(probs: Tensor) -> float:
    """``exp(E_x KL(p(y|x) || p(y)))`` from class probabilities ``probs: (N, K)``.

    ``p(y)`` is the mean of the rows. The score is 1 when every row is the same and ``K`` when
    the rows are one-hot and the classes equally frequent.

    Args:
        probs: ``(N, K)`` non-negative rows that sum to 1.

    Returns:
        The score as a Python float in ``[1, K]``.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import inception_score
        >>> inception_score(torch.eye(4))  # confident and diverse: the maximum, K
        4.0
        >>> inception_score(torch.full((3, 4), 0.25))  # every row the same: the minimum
        1.0
    """
    if not isinstance(probs, Tensor):
        raise TypeError(
            f"probs: expected a torch.Tensor of shape (N, K), got {type(probs).__name__}"
        )
    if probs.dim() != 2 or probs.shape[0] == 0 or probs.shape[1] == 0:
        raise ValueError(f"probs: expected shape (N, K) with N, K >= 1, got {tuple(probs.shape)}")
    if probs.is_complex():
        raise TypeError(f"probs: expected real probabilities, got dtype {probs.dtype}")
    p = to_float64(probs.detach())
    check_finite("probs", p)
    sums = p.sum(1)
    lowest = float(p.min())
    if lowest < 0 or not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        raise ValueError(
            f"probs: expected non-negative rows that sum to 1 (softmax outputs), got a minimum "
            f"of {lowest:.4g} and row sums in [{float(sums.min()):.4g}, {float(sums.max()):.4g}]"
        )
    marginal = p.mean(dim=0, keepdim=True)
    # KL(p(y|x) || p(y)) = sum_y p(y|x) (log p(y|x) - log p(y)), with 0 log 0 = 0
    kl = (torch.special.xlogy(p, p) - torch.special.xlogy(p, marginal)).sum(dim=1)
    # exp(mutual information) lies in [1, K]; rounding can leave K (1 + 1e-16) for one-hot rows
    return min(max(float(torch.exp(kl.mean())), 1.0), float(p.shape[1]))


def classifier_inception_score(
    classifier: LeNet, images: Tensor, *, batch_size: int = 500
) -> float:
    """Classifier-based Inception Score of ``images`` (higher is better, at most K).

    :func:`inception_score` of :func:`classifier_probabilities`: high when each image is
    classified confidently and the classes are equally frequent.

    Args:
        classifier: the classifier, e.g. :func:`~gentorch.evaluation.pretrained_classifier`.
        images: ``(N, C, 28, 28)`` or flat ``(N, C*784)`` float images in ``[0, 1]``.
        batch_size: images per forward pass.

    Returns:
        The score as a Python float in ``[1, num_classes]``.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import LeNet, classifier_inception_score
        >>> _ = torch.manual_seed(0)
        >>> s = classifier_inception_score(LeNet(), torch.rand(20, 784))
        >>> 1.0 <= s <= 10.0  # an untrained net is unsure of every image: s ~ 1
        True
    """
    return inception_score(classifier_probabilities(classifier, images, batch_size=batch_size))


def fld(classifier: LeNet, real: Tensor, fake: Tensor, *, batch_size: int = 500) -> float:
    """Fréchet distance between the classifier features of ``real`` and ``fake`` images.

    Use the same number of images on both sides (several thousand for a stable number: the
    estimate is biased upwards for small N); the real-vs-real value (e.g. test vs train) is the
    floor that a perfect generator would reach at that N.

    Args:
        classifier: the feature network.
        real: ``(N_r, C, 28, 28)`` or flat ``(N_r, C*784)`` images in ``[0, 1]``.
        fake: ``(N_f, C, 28, 28)`` or flat, in ``[0, 1]``.
        batch_size: images per forward pass.

    Returns:
        The distance (squared, as FID) as a float ``>= 0``.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import LeNet, fld
        >>> _ = torch.manual_seed(0)
        >>> net, real = LeNet(), torch.rand(50, 784)
        >>> fld(net, real, real), fld(net, real, torch.rand(50, 784)) > 0.0
        (0.0, True)
    """
    features = []
    for name, images in (("real", real), ("fake", fake)):
        f = _batched(classifier, images, batch_size, head=False, name=name)
        if f.shape[0] < 2:
            raise ValueError(
                f"{name}: need at least 2 images to estimate a covariance, got {f.shape[0]}"
            )
        features.append(f)
    return frechet_distance(*features)
