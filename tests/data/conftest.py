"""Data tests write decoded-array caches into one temporary folder, never ~/.cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("gentorch-cache")
    before = os.environ.get("GENTORCH_CACHE")
    os.environ["GENTORCH_CACHE"] = str(folder)
    yield folder
    if before is None:
        del os.environ["GENTORCH_CACHE"]
    else:
        os.environ["GENTORCH_CACHE"] = before
