"""Tests here train tiny models: one thread is faster than two, and much faster on a busy machine
(idle OpenMP workers spin while waiting for cores that other processes hold)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
