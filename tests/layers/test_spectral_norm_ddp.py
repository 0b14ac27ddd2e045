"""SpectralNorm under DistributedDataParallel: 2 gloo processes on CPU, u and v identical on both
ranks after training.

What happens (torch 2.13): DDP's constructor broadcasts rank 0's parameters and buffers, so
``u``, ``v`` start equal although each rank initialised them from a different seed; by default it
also broadcasts the buffers before every forward. Gradients are all-reduced, so both ranks hold
the same weight after each step and the power iteration is the same computation on both ranks.
With ``forward_sync_buffers=False`` (sync at construction only) the vectors therefore stay
bitwise identical as well (deterministic CPU kernels). The deprecated ``broadcast_buffers=False``
skips the construction sync too: ``u``, ``v`` are then rank-local and differ (documented below,
not recommended).
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gentorch.layers import spectral_norm

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

_WORLD = 2
_STEPS = 3
_TIMEOUT_S = 120
_SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "init_sync_only": {"forward_sync_buffers": False},
    "rank_local": {"broadcast_buffers": False},
}


def _disc() -> nn.Sequential:
    return nn.Sequential(
        spectral_norm(nn.Conv2d(3, 8, 3, padding=1)),
        nn.LeakyReLU(0.1),
        spectral_norm(nn.Conv2d(8, 8, 4, stride=2, padding=1)),
        nn.Flatten(),
        spectral_norm(nn.Linear(8 * 4 * 4, 1)),
    )


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _worker(rank: int, port: int, out: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", rank=rank, world_size=_WORLD, timeout=timedelta(seconds=_TIMEOUT_S)
    )
    try:
        results: dict[str, torch.Tensor] = {}
        for tag, kwargs in _SETTINGS.items():
            torch.manual_seed(100 + rank)  # different initial weights, u, v and data per rank
            model = _disc()
            initial = _state(model)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # broadcast_buffers is deprecated
                ddp = DistributedDataParallel(model, **kwargs)
            opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
            for _ in range(_STEPS):
                opt.zero_grad()
                real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
                (ddp(real).mean() - ddp(fake).mean()).backward()
                opt.step()
            for key, value in _state(model).items():
                results[f"{tag}/{key}"] = value
                results[f"{tag}/initial/{key}"] = initial[key]
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_u_v_identical_on_both_ranks(tmp_path: Path) -> None:
    # spawn is public API but missing from torch.multiprocessing.__all__
    context = mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=_WORLD, join=False)  # type: ignore[attr-defined]
    deadline = time.monotonic() + _TIMEOUT_S
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                if process.is_alive():
                    process.terminate()
            pytest.fail(f"DDP workers did not finish within {_TIMEOUT_S} s")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(_WORLD)]
    # before DDP the ranks really differed: the equalities below are DDP's doing
    assert not torch.equal(ranks[0]["default/initial/0.u"], ranks[1]["default/initial/0.u"])
    n_buffers = 0
    for key, value in ranks[0].items():
        tag, name = key.split("/", 1)
        if name.startswith("initial/") or tag == "rank_local":
            continue
        assert torch.equal(value, ranks[1][key]), key  # bitwise identical across ranks
        if name.endswith((".u", ".v")):
            n_buffers += 1
            if value.numel() > 1:  # the vectors moved during training
                assert not torch.equal(value, ranks[0][f"{tag}/initial/{name}"]), key
    assert n_buffers == 2 * 2 * 3  # two settings, u and v, three layers
    # broadcast_buffers=False: weights are still synchronised, u and v are not
    assert torch.equal(
        ranks[0]["rank_local/0.module.weight"], ranks[1]["rank_local/0.module.weight"]
    )
    assert not torch.equal(ranks[0]["rank_local/0.u"], ranks[1]["rank_local/0.u"])
