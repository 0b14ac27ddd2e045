"""Benchmark: reparameterized Gaussian sampling, forward + backward, time and saved bytes.

Compares, in one run and on the same inputs:

* ``ours``   — :class:`gentorch.layers.Reparameterize` (training mode, pair input, defaults:
  no diagnostics record);
* ``ours+d`` — the same layer with ``track_diagnostics=True`` (it keeps the last mu and logvar
  for ``diagnostics()``);
* ``fn``     — the functional :func:`gentorch.layers.reparameterize`;
* ``plain``  — the formula with plain autograd ops, ``mu + exp(0.5 * logvar) * randn_like(mu)``;
* ``normal`` — ``torch.distributions.Normal(mu, exp(0.5 * logvar)).rsample()``.

Time: one forward + backward (``z.backward(g)``); the peers run in interleaved blocks and each
keeps its fastest block (robust to load from other processes on a shared machine). At the small
shape the blocks are 20 calls and there are 20x as many rounds.
Saved bytes: the bytes of the distinct tensors autograd packs for backward during the forward,
counted with ``torch.autograd.graph.saved_tensors_hooks`` (a tensor saved twice counts once).

Usage::

    .venv/bin/python benchmarks/bench_reparam.py [--rounds 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Callable

import torch
from torch import Tensor

from gentorch.layers import Reparameterize, reparameterize

Sampler = Callable[[Tensor, Tensor], Tensor]

SHAPES = [(4096, 512), (128, 2)]


def _ours(track_diagnostics: bool = False) -> Sampler:
    layer = Reparameterize(track_diagnostics=track_diagnostics).train()
    return lambda mu, logvar: layer((mu, logvar))


def _plain(mu: Tensor, logvar: Tensor) -> Tensor:
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def _normal(mu: Tensor, logvar: Tensor) -> Tensor:
    return torch.distributions.Normal(mu, torch.exp(0.5 * logvar), validate_args=False).rsample()


def saved_bytes(fn: Sampler, mu: Tensor, logvar: Tensor) -> int:
    """Bytes of the distinct tensors saved for backward by one forward of ``fn``."""
    seen: dict[tuple[int, tuple[int, ...], tuple[int, ...]], int] = {}

    def pack(t: Tensor) -> Tensor:
        key = (t.data_ptr(), tuple(t.shape), tuple(t.stride()))
        seen[key] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        z = fn(mu, logvar)
    del z
    return sum(seen.values())


def time_fwd_bwd(
    peers: dict[str, Sampler], mu: Tensor, logvar: Tensor, g: Tensor, rounds: int, block: int
) -> dict[str, float]:
    """Seconds per forward + backward for each peer: the fastest of ``rounds`` blocks.

    Peers run in interleaved blocks of ``block`` iterations, in an order shuffled every round
    (seeded), so load from other processes and position effects hit all of them alike; the
    minimum over blocks is the least disturbed estimate. As in :mod:`timeit`, Python's cyclic
    garbage collector is off while timing: otherwise a peer that allocates many Python objects
    (``Normal`` builds a distribution object per call) triggers collections that land in
    whichever peer runs next. (Nothing here makes reference cycles; memory is still freed.)
    """
    for fn in peers.values():  # warm-up
        for _ in range(3):
            fn(mu, logvar).backward(g)
    best = dict.fromkeys(peers, float("inf"))
    order = list(peers)
    shuffle = random.Random(0).shuffle
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            # a fresh order every round: no peer always runs first or after the same one (a
            # rotation would keep every peer's predecessor)
            shuffle(order)
            for name in order:
                fn = peers[name]
                mu.grad = logvar.grad = None
                t0 = time.perf_counter()
                for _ in range(block):
                    fn(mu, logvar).backward(g)
                best[name] = min(best[name], (time.perf_counter() - t0) / block)
    finally:
        if gc_was_enabled:
            gc.enable()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rounds",
        type=int,
        default=30,
        help="interleaved timing rounds (x20 rounds of 20-call blocks at the small shape)",
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), float32, CPU")
    peers: dict[str, Sampler] = {
        "ours": _ours(),
        "ours+d": _ours(track_diagnostics=True),
        "fn": reparameterize,
        "plain": _plain,
        "normal": _normal,
    }
    header = (
        f"{'B x L':>12} {'method':>7} {'fwd+bwd (us)':>13} {'saved (KiB)':>12} "
        f"{'time ours/x':>12} {'saved ours/x':>13} {'time x/plain':>13}"
    )
    print(header)
    for B, L in SHAPES:
        mu = torch.randn(B, L, requires_grad=True)
        logvar = torch.randn(B, L).mul_(0.5).requires_grad_()
        g = torch.randn(B, L)
        # Small shapes: short blocks and many of them, so that some blocks fall between the
        # time slices other processes take on a shared machine (the minimum is then clean).
        small = B * L <= 10_000
        block, rounds = (20, 20 * args.rounds) if small else (3, args.rounds)
        times = time_fwd_bwd(peers, mu, logvar, g, rounds, block)
        saved = {name: saved_bytes(fn, mu, logvar) for name, fn in peers.items()}
        for name in peers:
            print(
                f"{f'{B} x {L}':>12} {name:>7} {times[name] * 1e6:13.1f} "
                f"{saved[name] / 1024:12.1f} {times['ours'] / times[name]:12.2f} "
                f"{saved['ours'] / saved[name]:13.2f} {times[name] / times['plain']:13.2f}"
            )


if __name__ == "__main__":
    main()
