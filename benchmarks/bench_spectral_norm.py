"""Benchmark: spectral normalization on the SN-GAN "standard CNN" discriminator.

Model: Miyato et al. 2018, Table 3 (32x32x3 input): conv3x3 64 s1, conv4x4 64 s2, conv3x3 128 s1,
conv4x4 128 s2, conv3x3 256 s1, conv4x4 256 s2, conv3x3 512 s1, LeakyReLU 0.1, linear to 1
(``gentorch.models.SNGANDiscriminator(spectral_norm=False)``, the same plain stack). Every
Conv2d/Linear is wrapped, in one run and from the same initial weights, with:

* ``ours``  — :func:`gentorch.layers.spectral_norm` (one power iteration per training forward);
* ``torch`` — ``torch.nn.utils.parametrizations.spectral_norm`` (idem);
* ``none``  — no normalization.

Time: one training step = forward of a batch, mean output, backward (``zero_grad`` included); the
three variants run in interleaved blocks and each keeps its median block (robust to other work
on a shared machine). Accuracy: each layer's sigma estimate ``u^T W v`` against
``torch.linalg.matrix_norm(W, ord=2)``, right after construction (the warm-up) and after 1, 10
and 100 Adam steps (lr 2e-4, betas (0.5, 0.999); hinge loss on random images) of each model.

Usage::

    .venv/bin/python benchmarks/bench_spectral_norm.py [--batch 64] [--blocks 7] [--steps 5]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrizations

from gentorch.layers import SpectralNorm, spectral_norm

LAYER_NAMES = ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "conv7", "linear")


class _Table3(nn.Module):
    """Fallback when ``gentorch.models`` has no SNGANDiscriminator: the same Table 3 stack."""

    def __init__(self) -> None:
        super().__init__()
        spec = [(3, 64, 3, 1), (64, 64, 4, 2), (64, 128, 3, 1), (128, 128, 4, 2)]
        spec += [(128, 256, 3, 1), (256, 256, 4, 2), (256, 512, 3, 1)]
        for i, (c_in, c_out, k, s) in enumerate(spec, start=1):
            self.add_module(f"conv{i}", nn.Conv2d(c_in, c_out, k, stride=s, padding=1))
        self.linear = nn.Linear(512 * 4 * 4, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for name in LAYER_NAMES[:-1]:
            h = F.leaky_relu(getattr(self, name)(h), 0.1)
        out: Tensor = self.linear(h.flatten(1))
        return out.squeeze(1)


def plain_discriminator() -> nn.Module:
    try:
        from gentorch.models import SNGANDiscriminator
    except ImportError:
        return _Table3()
    return SNGANDiscriminator(in_channels=3, image_size=32, spectral_norm=False)


def wrap(model: nn.Module, fn: Callable[[nn.Module], nn.Module]) -> nn.Module:
    out = copy.deepcopy(model)
    for name in LAYER_NAMES:
        setattr(out, name, fn(getattr(out, name)))
    return out


def _torch_sn(layer: nn.Module) -> nn.Module:
    return parametrizations.spectral_norm(layer)


def sigma_errors(model: nn.Module) -> list[float]:
    """Per layer: |u^T W v - ||W||_2| / ||W||_2 with the model's current u, v and weight."""
    errors = []
    with torch.no_grad():
        for name in LAYER_NAMES:
            layer = getattr(model, name)
            if isinstance(layer, SpectralNorm):
                estimate, exact = layer.sigma, layer.exact_sigma()
            else:
                param = layer.parametrizations.weight[0]
                W = layer.parametrizations.weight.original.flatten(1)
                estimate = torch.vdot(param._u, torch.mv(W, param._v))
                exact = torch.linalg.matrix_norm(W, ord=2)
            errors.append(float((estimate - exact).abs() / exact))
    return errors


def hinge_step(model: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1 - model(real)).mean() + F.relu(1 + model(fake)).mean()


def time_steps(model: nn.Module, x: Tensor, steps: int) -> float:
    """Seconds per training step (forward, loss, backward), averaged over ``steps``."""
    start = time.perf_counter()
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        model(x).mean().backward()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=7, help="interleaved timing blocks")
    parser.add_argument("--steps", type=int, default=5, help="training steps per block")
    parser.add_argument("--train-steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)

    plain = plain_discriminator().to(device)
    start = time.perf_counter()
    ours = wrap(plain, spectral_norm)
    build_ours = time.perf_counter() - start
    start = time.perf_counter()
    theirs = wrap(plain, _torch_sn)
    build_theirs = time.perf_counter() - start
    variants = {"ours": ours, "torch": theirs, "none": plain}
    print(
        f"model: {type(plain).__name__} (Table 3), batch {args.batch}, {device}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(f"construction (incl. warm-up): ours {build_ours:.3f} s, torch {build_theirs:.3f} s")

    # ---- time: interleaved blocks, median per variant
    x = torch.rand(args.batch, 3, 32, 32, device=device)
    for model in variants.values():
        model.train()
        time_steps(model, x, 2)  # warm caches and allocator
    blocks: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.blocks):
        for name, model in variants.items():
            blocks[name].append(time_steps(model, x, args.steps))
    med = {k: statistics.median(v) for k, v in blocks.items()}
    print("\nforward+backward step (median of blocks)")
    print(f"{'variant':8s} {'ms/step':>9s} {'min':>9s} {'max':>9s}")
    for name, values in blocks.items():
        print(f"{name:8s} {1e3 * med[name]:9.2f} {1e3 * min(values):9.2f} {1e3 * max(values):9.2f}")
    low = {k: min(v) for k, v in blocks.items()}
    for label, t in (("medians", med), ("minima", low)):
        print(
            f"ratio of {label}: ours/torch = {t['ours'] / t['torch']:.3f}   "
            f"ours/none = {t['ours'] / t['none']:.3f}   torch/none = {t['torch'] / t['none']:.3f}"
        )

    # ---- accuracy: fresh copies from the same initial weights, same data for both
    torch.manual_seed(args.seed + 1)
    models = {"ours": wrap(plain, spectral_norm), "torch": wrap(plain, _torch_sn)}
    opts = {
        k: torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for k, m in models.items()
    }
    checkpoints = {0, 1, 10, args.train_steps}
    rows: list[tuple[int, str, list[float]]] = [(0, k, sigma_errors(m)) for k, m in models.items()]
    for step in range(1, args.train_steps + 1):
        real = torch.rand(args.batch, 3, 32, 32, device=device)
        fake = torch.rand(args.batch, 3, 32, 32, device=device) ** 2
        for k, m in models.items():
            opts[k].zero_grad(set_to_none=True)
            hinge_step(m, real, fake).backward()
            opts[k].step()
        if step in checkpoints:
            rows.extend((step, k, sigma_errors(m)) for k, m in models.items())
    print("\nsigma relative error vs torch.linalg.matrix_norm(ord=2), per layer")
    print(
        f"{'steps':>5s} {'variant':7s} {'max':>9s} {'median':>9s}  per layer "
        f"({', '.join(LAYER_NAMES)})"
    )
    for step, k, errs in rows:
        per_layer = " ".join(f"{e:.1e}" for e in errs)
        print(f"{step:5d} {k:7s} {max(errs):9.2e} {statistics.median(errs):9.2e}  {per_layer}")


if __name__ == "__main__":
    main()
