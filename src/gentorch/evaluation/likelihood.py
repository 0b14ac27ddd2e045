"""Log-likelihood of a VAE by importance sampling (the IWAE bound), and the test ELBO.

``log p(x) >= log (1/k) sum_i p(x, z_i) / q(z_i | x)`` with ``z_i ~ q(z | x)`` (Burda et al.,
2015); the bound tightens as ``k`` grows and is the standard way papers report a VAE's NLL
(k = 5000). The model supplies ``log_importance_weights(x, k) -> (k, B)``; this module batches
points, chunks the k samples so that only ``(chunk, B)`` weights and the decoder's
``(chunk, B, D)`` output exist at a time, and merges the chunks with a streaming logsumexp.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from gentorch._checks import check_bool, check_positive_int
from gentorch._float64 import exact_dtype, to_float64
from gentorch.evaluation._running import (
    check_images,
    check_labels,
    evaluating,
    label_args,
    model_method,
    seeded,
)

__all__ = ["log_likelihood", "nll", "test_elbo"]

# Decoder rows (latent samples x points) per model call when sizes are left to us: large enough
# for matmuls near peak, small enough that a call's (rows, 784) activations stay in cache
# (measured on a 784-400-20 VAE, k=5000, one CPU thread: 2048 rows took half the time of 16384).
_ROWS_PER_CALL = 2048


def _mean_stderr(values: Tensor) -> tuple[float, float]:
    """Mean and standard error ``std / sqrt(N)`` (unbiased std; NaN when N = 1) of ``(N,)``."""
    values = to_float64(values)
    n = values.shape[0]
    mean = float(values.mean())
    stderr = float(values.std(unbiased=True)) / math.sqrt(n) if n > 1 else math.nan
    return mean, stderr


def _sizes(k: int, n: int, batch_size: int | None, chunk_size: int | None) -> tuple[int, int]:
    """Examples and samples per model call; what is not given fills ``_ROWS_PER_CALL`` rows."""
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    if chunk_size is not None:
        chunk_size = check_positive_int("chunk_size", chunk_size)
    if chunk_size is None:
        rows_per_example = _ROWS_PER_CALL if batch_size is None else _ROWS_PER_CALL // batch_size
        # k split into equal chunks of at most that many samples (5000 -> 3 x 1667, not
        # 2048 + 2048 + 904: a short last call runs its matmuls further from peak)
        n_chunks = math.ceil(k / max(1, rows_per_example))
        chunk_size = max(1, math.ceil(k / n_chunks))
    if batch_size is None:
        batch_size = max(1, _ROWS_PER_CALL // min(chunk_size, k))
    return min(batch_size, n), min(chunk_size, k)


def log_likelihood(
    model: nn.Module,
    images: Tensor,
    k: int = 5000,
    *,
    batch_size: int | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
    generator: torch.Generator | None = None,
    labels: Tensor | None = None,
) -> Tensor:
    """Per-example importance-sampled log-likelihood ``log p(x)`` (the IWAE-k bound), in nats.

    ``log p(x) ~= logsumexp_i(log w_i) - log k`` with ``log w_i = log p(x, z_i) - log q(z_i | x)``
    from ``model.log_importance_weights(x, chunk)``; chunks are merged exactly with
    ``logaddexp``, so the result does not depend on ``chunk_size`` beyond the noise drawn.
    The model runs in eval mode without autograd; its mode is restored after.

    Args:
        model: a VAE with ``log_importance_weights(x, k) -> (k, B)``.
        images: ``(N, D)`` examples in the model's input format.
        k: importance samples per example (5000 in Burda et al., 2015).
        batch_size: examples per model call.
        chunk_size: samples per model call. Sizes left as ``None`` are chosen so that a call
            evaluates about 2048 decoder rows (``batch_size * chunk_size``).
        progress: show a tqdm progress bar over examples.
        generator: seeds the model's noise (drawn from the global RNG of ``images``' device,
            which is restored afterwards) for reproducible estimates.
        labels: ``(N,)`` class labels for a conditional model, passed as
            ``log_importance_weights(x, k, y)``.

    Returns:
        ``(N,)`` estimates in the weights' dtype and on their device; each is a lower bound of
        ``log p(x)`` in expectation.

    Example:
        >>> import torch
        >>> from gentorch.evaluation import log_likelihood
        >>> from gentorch.models import VAE
        >>> model, x = VAE(64, [32], 2), torch.rand(8, 64)
        >>> g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
        >>> a = log_likelihood(model, x, k=10, generator=g1)
        >>> b = log_likelihood(model, x, k=10, generator=g2)
        >>> a.shape, torch.equal(a, b)  # the same generator state gives the same estimate
        (torch.Size([8]), True)
    """
    images = check_images(images)
    k = check_positive_int("k", k)
    progress = check_bool("progress", progress)
    log_weights = model_method(model, "log_importance_weights")
    n = images.shape[0]
    labels = check_labels(labels, n)
    batch, chunk = _sizes(k, n, batch_size, chunk_size)
    # Chunks are merged in float64 (MPS has none: float32 there), the result rounded once at the
    # end: a float32 running total would add an error that grows with the number of chunks.
    merge_dtype = exact_dtype(images.device)
    estimates = []
    weights_dtype = merge_dtype  # the model's, from its first call
    with (
        evaluating(model),
        seeded(generator, images.device),
        tqdm(total=n, desc=f"IWAE k={k}", unit="pt", disable=not progress) as bar,
    ):
        for start in range(0, n, batch):
            xb = images[start : start + batch]
            extra = label_args(labels, start, start + batch)
            total: Tensor | None = None
            for offset in range(0, k, chunk):
                m = min(chunk, k - offset)
                lw = log_weights(xb, m, *extra)
                if not isinstance(lw, Tensor) or lw.shape != (m, xb.shape[0]):
                    got = tuple(lw.shape) if isinstance(lw, Tensor) else type(lw).__name__
                    raise ValueError(
                        f"model.log_importance_weights(x, {m}): expected shape "
                        f"({m}, {xb.shape[0]}) = (k, B), got {got}"
                    )
                weights_dtype = lw.dtype
                # Streaming logsumexp over chunks: lse(a u b) = logaddexp(lse(a), lse(b))
                lse = torch.logsumexp(lw.to(torch.promote_types(lw.dtype, merge_dtype)), dim=0)
                total = lse if total is None else torch.logaddexp(total, lse)
            assert total is not None
            estimates.append(total)
            bar.update(xb.shape[0])
    # log p(x) ~= logsumexp_i log w_i - log k
    result = (torch.cat(estimates) - math.log(k)).to(weights_dtype)
    if not bool(torch.isfinite(result).all()):
        bad = int((~torch.isfinite(result)).sum())
        raise ValueError(
            f"model.log_importance_weights gave non-finite estimates for {bad} of {n} examples"
        )
    return result


def nll(
    model: nn.Module,
    images: Tensor,
    k: int = 5000,
    *,
    batch_size: int | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
    generator: torch.Generator | None = None,
    labels: Tensor | None = None,
) -> tuple[float, float]:
    """Negative log-likelihood in nats by importance sampling: mean and standard error.

    ``NLL = -1/N sum_n log p_k(x_n)`` with the IWAE-k estimate ``log p_k`` of
    :func:`log_likelihood` (an upper bound of the true NLL in expectation, tight as k grows);
    the standard error ``std_n / sqrt(N)`` measures the spread over examples.

    Args:
        model: a VAE with ``log_importance_weights(x, k) -> (k, B)``.
        images: ``(N, D)`` test examples.
        k: importance samples per example; 5000 is the papers' setting.
        batch_size: examples per model call (default: automatic).
        chunk_size: samples per model call (default: automatic); memory is
            ``O(batch_size * chunk_size * D)``, never ``O(k * N * D)``.
        progress: show a tqdm progress bar.
        generator: makes the estimate reproducible (see :func:`log_likelihood`).
        labels: ``(N,)`` class labels for a conditional model.

    Returns:
        ``(mean, stderr)`` in nats per example (stderr is NaN for a single example).

    Example:
        >>> import torch
        >>> from gentorch.evaluation import log_likelihood, nll
        >>> from gentorch.models import VAE
        >>> model, x = VAE(64, [32], 2), torch.rand(8, 64)
        >>> g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
        >>> mean, stderr = nll(model, x, k=10, progress=False, generator=g1)
        >>> log_px = log_likelihood(model, x, k=10, generator=g2)
        >>> abs(mean + log_px.mean().item()) < 1e-4, stderr > 0  # mean = -mean log p(x)
        (True, True)
    """
    log_px = log_likelihood(
        model,
        images,
        k,
        batch_size=batch_size,
        chunk_size=chunk_size,
        progress=progress,
        generator=generator,
        labels=labels,
    )
    return _mean_stderr(-log_px)


def test_elbo(
    model: nn.Module,
    images: Tensor,
    *,
    batch_size: int = 1024,  # noqa: PT028 (a library function, not a test)
    generator: torch.Generator | None = None,  # noqa: PT028
    labels: Tensor | None = None,  # noqa: PT028
) -> tuple[float, float]:
    """Mean evidence lower bound over examples, in nats, with its standard error.

    ``ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z))`` as computed by ``model.elbo(x)``
    (a lower bound of ``log p(x)``, so usually negative; its negation is the "test loss").

    Args:
        model: a VAE with ``elbo(x) -> (B,)``.
        images: ``(N, D)`` test examples.
        batch_size: examples per model call.
        generator: makes the estimate reproducible (see :func:`log_likelihood`).
        labels: ``(N,)`` class labels for a conditional model, passed as ``elbo(x, y)``.

    Returns:
        ``(mean, stderr)``: mean ELBO per example and ``std / sqrt(N)`` (NaN for N = 1).

    Example:
        >>> import torch
        >>> from gentorch.evaluation import test_elbo
        >>> from gentorch.models import VAE
        >>> model, x = VAE(64, [32], 2), torch.rand(8, 64)
        >>> mean, stderr = test_elbo(model, x, generator=torch.Generator().manual_seed(0))
        >>> mean < 0, stderr > 0  # a Bernoulli ELBO is negative; -mean is the test loss
        (True, True)
    """
    images = check_images(images)
    batch_size = check_positive_int("batch_size", batch_size)
    elbo = model_method(model, "elbo")
    labels = check_labels(labels, images.shape[0])
    values = []
    with evaluating(model), seeded(generator, images.device):
        for start in range(0, images.shape[0], batch_size):
            xb = images[start : start + batch_size]
            extra = label_args(labels, start, start + batch_size)
            value = elbo(xb, *extra)
            if not isinstance(value, Tensor) or value.shape != (xb.shape[0],):
                got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(
                    f"model.elbo(x): expected shape ({xb.shape[0]},) = (B,), got {got}"
                )
            values.append(value)
    return _mean_stderr(torch.cat(values))


# A library function whose name starts with "test_": keep pytest from collecting it where imported.
test_elbo.__test__ = False  # type: ignore[attr-defined]
