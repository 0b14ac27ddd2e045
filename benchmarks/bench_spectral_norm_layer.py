"""Benchmark: one spectrally normalized conv layer, forward + backward, ours against PyTorch's.

The whole-discriminator step of ``bench_spectral_norm.py`` is dominated by convolutions that are
the same for every variant; this isolates one layer (the SN-GAN discriminator's conv 256->512
3x3 at 4x4) so that the cost of the normalization itself is visible.

    python benchmarks/bench_spectral_norm_layer.py [--blocks 15] [--steps 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from gentorch.layers import spectral_norm


def _step(layer: nn.Module, x: torch.Tensor) -> None:
    layer.zero_grad(set_to_none=True)
    layer(x).mean().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=15, help="interleaved timing blocks")
    parser.add_argument("--steps", type=int, default=10, help="steps per block")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = nn.Conv2d(256, 512, 3, padding=1)
    variants = {
        "ours": spectral_norm(copy.deepcopy(base)),
        "torch": torch_spectral_norm(copy.deepcopy(base)),
        "none": copy.deepcopy(base),
    }
    x = torch.randn(64, 256, 4, 4)
    for layer in variants.values():
        for _ in range(5):
            _step(layer, x)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.blocks):
        for name, layer in variants.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                _step(layer, x)
            times[name].append((time.perf_counter() - start) / args.steps * 1e3)
    print(f"conv 256->512 3x3, input (64, 256, 4, 4), {torch.get_num_threads()} threads")
    print(f"{'variant':8s} {'min ms':>8s} {'median ms':>10s}")
    stats = {}
    for name, values in times.items():
        values.sort()
        stats[name] = (values[0], values[len(values) // 2])
        print(f"{name:8s} {stats[name][0]:8.2f} {stats[name][1]:10.2f}")
    for i, kind in enumerate(("minima", "medians")):
        ours, peer, none = stats["ours"][i], stats["torch"][i], stats["none"][i]
        print(
            f"ratio of {kind}: ours/torch = {ours / peer:.3f}; normalization cost over the "
            f"plain layer: ours {ours - none:.2f} ms, torch {peer - none:.2f} ms"
        )


if __name__ == "__main__":
    main()
