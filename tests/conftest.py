"""Shared test set-up: one torch thread, deterministic seeds and the shared data folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# Tests read real datasets from the shared folder beside the project unless told otherwise.
_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
os.environ.setdefault("GENTORCH_DATA", str(_SHARED))
os.environ.setdefault("MPLBACKEND", "Agg")
# Module- and session-scoped fixtures run before `_one_thread`: cap them at two threads.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Test tensors are small: one thread avoids OpenMP hand-offs, whose idle workers spin while
    # waiting for cores other processes hold (~100x slower on a loaded 2-core box). The count is
    # restored afterwards, so a test that changes it (e.g. `--threads`) does not leak it.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def shared_data() -> Path:
    """The shared datasets folder; tests that need it are skipped if it is absent."""
    root = Path(os.environ["GENTORCH_DATA"]).resolve()  # (a relative path would break symlinks)
    if not (root / "mnist").is_dir():
        pytest.skip(f"shared datasets not found at {root}")
    return root
