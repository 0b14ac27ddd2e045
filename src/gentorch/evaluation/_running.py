"""How evaluation runs a model: eval mode, no autograd, seeded noise, checked inputs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn


def check_images(images: object, name: str = "images") -> Tensor:
    """Return ``images`` as a floating ``(N, D)`` tensor, or raise naming ``name``."""
    if not isinstance(images, Tensor):
        raise TypeError(
            f"{name}: expected a torch.Tensor of shape (N, D), got {type(images).__name__}"
        )
    if images.dim() != 2:
        raise ValueError(
            f"{name}: expected shape (N, D) (flattened examples), got {tuple(images.shape)}"
        )
    if images.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one example, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {images.dtype}")
    check_finite(name, images)
    return images


def check_finite(name: str, values: Tensor) -> None:
    """``ValueError`` naming ``name`` if ``values`` holds NaN or Inf (one device sync)."""
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(
            f"{name}: expected finite values, got {bad} NaN or Inf of {values.numel()} "
            f"(shape {tuple(values.shape)})"
        )


def check_labels(labels: object, n: int) -> Tensor | None:
    """Return ``labels`` (``None``, or one class label per example: ``(N,)``), or raise."""
    if labels is None:
        return None
    if not isinstance(labels, Tensor):
        raise TypeError(
            f"labels: expected None or a torch.Tensor of shape ({n},), got {type(labels).__name__}"
        )
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(
            f"labels: expected shape ({n},), one label per example, got {tuple(labels.shape)}"
        )
    return labels


def label_args(labels: Tensor | None, start: int, stop: int) -> tuple[Tensor, ...]:
    """The extra ``y`` argument of a conditional model's call for examples ``start:stop``."""
    return () if labels is None else (labels[start:stop],)


def model_method(model: nn.Module, name: str) -> Callable[..., Any]:
    """``model.<name>``, or a TypeError saying which method the evaluation needs."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    method: Callable[..., Any] | None = getattr(model, name, None)
    if method is None or not callable(method):
        raise TypeError(f"model: {type(model).__name__} has no method {name}(), which this needs")
    return method


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode and no autograd for the block; the model's mode is restored after.

    ``no_grad`` rather than ``inference_mode``: returned tensors stay usable in autograd.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def seeded(generator: torch.Generator | None, device: torch.device) -> Iterator[None]:
    """Seed ``device``'s global RNG from ``generator`` for the block, restoring it after.

    Models draw their latent noise from the global RNG; with a generator, the draws in the block
    are a function of the generator's state only, and the caller's RNG stream is left untouched.
    Without one, the block uses (and advances) the global RNG as usual.
    """
    if generator is None:
        yield
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    seed = int(torch.randint(0, 2**62, (), generator=generator, device=generator.device))
    if device.type == "cpu":
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield
    else:
        with torch.random.fork_rng(device_type=device.type):
            torch.manual_seed(seed)
            yield
