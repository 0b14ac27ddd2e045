"""Mini-batches over a dataset held as one tensor on the training device.

One ``torch.randperm`` per epoch on the data's device and one gather per batch: no per-example
Python, no worker processes, no host-device copies in the loop.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from gentorch._checks import as_device, check_positive_int

__all__ = ["Batches"]

_BINARIZE_MODES = ("dynamic",)


class Batches:
    """Iterate ``(xb, yb)`` mini-batches of ``(x, y)`` in a random order each epoch.

    Each ``iter()`` is one epoch: a permutation drawn from :attr:`generator` (on the data's
    device), cut into consecutive chunks. Saving ``batches.generator.get_state()`` before an
    epoch and restoring it with ``set_state`` replays exactly the same batches, which is what a
    trainer needs for exact resume.

    Args:
        x: ``(N, ...)`` examples; moved to ``device`` once if given.
        y: ``(N, ...)`` targets or labels, or ``None``.
        batch_size: examples per batch, ``>= 1``.
        shuffle: draw a new permutation each epoch; ``False`` keeps the stored order.
        drop_last: drop the final batch when it has fewer than ``batch_size`` examples.
        generator: a ``torch.Generator`` on the data's device; ``None`` creates one seeded
            from torch's global generator (so ``torch.manual_seed`` makes runs repeatable).
        device: move ``x`` and ``y`` there first (default: where ``x`` is).
        binarize: ``"dynamic"`` draws ``Bernoulli(xb)`` for every batch with :attr:`generator`
            (dynamic binarization, a fresh draw each epoch); ``x`` must be in [0, 1].

    Shapes:
        yields ``xb: (B, ...)`` and ``yb: (B, ...)`` or ``None``, with ``B = batch_size``
        except possibly for the last batch.

    Raises:
        TypeError: ``x``, ``y``, ``generator`` or ``device`` of the wrong type, or a
            ``shuffle`` / ``drop_last`` that is not a bool.
        ValueError: a 0-d or empty ``x``, ``y`` of another length or device than ``x``, a
            ``batch_size`` below 1 (``TypeError`` if not an int) or larger than ``N`` with
            ``drop_last`` (which would yield no batch), a bad ``binarize`` or, with
            ``binarize``, values of ``x`` outside [0, 1], an unknown ``device``, or a generator on
            another device than the data.

    Example:
        >>> import torch
        >>> from gentorch.data import Batches
        >>> batches = Batches(torch.rand(1000, 784), torch.arange(1000), batch_size=128)
        >>> len(batches)
        8
        >>> [tuple(xb.shape) for xb, _ in batches][-2:]  # the last batch holds the rest
        [(128, 784), (104, 784)]
        >>> xb, yb = next(iter(batches))
        >>> xb.shape, yb.shape
        (torch.Size([128, 784]), torch.Size([128]))
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor | None = None,
        *,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        binarize: str | None = None,
    ) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"x: expected a Tensor, got {type(x).__name__}")
        if x.dim() == 0:
            raise ValueError("x: expected a tensor of shape (N, ...), got a 0-d tensor")
        if len(x) == 0:
            raise ValueError(f"x: expected at least one example, got shape {tuple(x.shape)}")
        if y is not None:
            if not isinstance(y, Tensor):
                raise TypeError(f"y: expected a Tensor or None, got {type(y).__name__}")
            if y.dim() == 0 or len(y) != len(x):
                raise ValueError(
                    f"y: expected {len(x)} entries (one per example of x, shape "
                    f"{tuple(x.shape)}), got shape {tuple(y.shape)}"
                )
        check_positive_int("batch_size", batch_size)
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name}: expected True or False, got {flag!r}")
        if drop_last and batch_size > len(x):
            raise ValueError(
                f"batch_size: {batch_size} is larger than the {len(x)} examples of x, so "
                f"drop_last=True would leave no batch at all; expected a batch_size <= {len(x)}"
            )
        if binarize is not None and binarize not in _BINARIZE_MODES:
            raise ValueError(f"binarize: expected None or 'dynamic', got {binarize!r}")
        if binarize is not None and not x.is_floating_point():
            raise ValueError(f"binarize: needs floating-point x in [0, 1], got dtype {x.dtype}")
        if binarize is not None:
            low, high = (float(v) for v in torch.aminmax(x.detach()))
            if not 0.0 <= low <= high <= 1.0:  # also false for NaN
                raise ValueError(
                    f"x: binarize={binarize!r} draws Bernoulli(x) and needs values in [0, 1], "
                    f"got range [{low:.4g}, {high:.4g}]"
                )
        if device is not None:
            device = as_device(device)
            x = x.to(device)
            y = y.to(device) if y is not None else None
        elif y is not None and y.device != x.device:
            raise ValueError(f"y: expected a tensor on {x.device} like x, got one on {y.device}")
        if generator is None:
            generator = torch.Generator(device=x.device)
            # seed drawn from the global CPU generator: torch.manual_seed fixes it
            generator.manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
        elif not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator: expected a torch.Generator, got {type(generator).__name__}"
            )
        elif not _same_device(generator.device, x.device):
            raise ValueError(
                f"generator: expected a generator on the data's device {x.device}, got one on "
                f"{generator.device}"
            )
        self.x = x
        self.y = y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self.binarize = binarize

    @property
    def device(self) -> torch.device:
        """Where the data (and every batch) lives."""
        return self.x.device

    def __len__(self) -> int:
        """Batches per epoch: ``floor(N / B)`` with ``drop_last``, else ``ceil(N / B)``."""
        n = len(self.x)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor | None]]:
        n = len(self.x)
        order: Tensor | None = None
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator, device=self.device)
        for i in range(len(self)):
            start = i * self.batch_size
            stop = min(start + self.batch_size, n)
            if order is None:
                xb = self.x[start:stop]
                yb = self.y[start:stop] if self.y is not None else None
            else:
                index = order[start:stop]
                xb = self.x.index_select(0, index)
                yb = self.y.index_select(0, index) if self.y is not None else None
            if self.binarize == "dynamic":
                # xb ~ Bernoulli(xb), a fresh draw per pixel and epoch
                xb = torch.bernoulli(xb, generator=self.generator)
            yield xb, yb

    def to(self, device: torch.device | str) -> Batches:
        """The same batching over the data moved to ``device``.

        The generator is kept when it already lives on that device; otherwise a new
        one there is seeded from it (a deterministic function of its state). The batch size,
        shuffling, ``drop_last`` and ``binarize`` settings are kept.

        Args:
            device: the target device, e.g. ``"cuda"``.

        Returns:
            A new :class:`Batches` whose ``x`` and ``y`` live on ``device``; ``self`` is
            unchanged.

        Example:
            >>> import torch
            >>> from gentorch.data import Batches
            >>> batches = Batches(torch.rand(100, 4), torch.arange(100), batch_size=32)
            >>> device = "cuda" if torch.cuda.is_available() else "cpu"
            >>> moved = batches.to(device)
            >>> moved.device.type == device, moved.x.device.type == device, len(moved)
            (True, True, 4)
        """
        target = as_device(device)
        generator = self.generator
        if not _same_device(generator.device, target):
            seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
            generator = torch.Generator(device=target)
            generator.manual_seed(seed)
        return Batches(
            self.x,
            self.y,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
            generator=generator,
            device=target,
            binarize=self.binarize,
        )

    def __repr__(self) -> str:
        return (
            f"Batches(n={len(self.x)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, device={self.device})"
        )


def _same_device(a: torch.device, b: torch.device) -> bool:
    """Same device, where an unindexed device (``"cuda"``) matches any index of its type."""
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)
