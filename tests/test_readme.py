"""The README's Python examples run as written (those that train on full datasets excepted).

The blocks of one section build on each other, so each section runs in one namespace, in order.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

_README = Path(__file__).resolve().parents[1] / "README.md"
# Blocks that train on MNIST for epochs belong to the pipelines' own end-to-end tests.
_SLOW = ("fit(", 'load("mnist"')


def _sections() -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    for part in re.split(r"^## ", _README.read_text(), flags=re.M)[1:]:
        title = part.splitlines()[0].strip()
        blocks = re.findall(r"```python\n(.*?)```", part, flags=re.S)
        fast = [b for b in blocks if not any(s in b for s in _SLOW)]
        if fast:
            sections[title] = fast
    return sections


_SECTIONS = _sections()


def test_the_readme_has_runnable_examples() -> None:
    assert {"Differentiable sampling", "Spectral normalization"} <= set(_SECTIONS)
    assert sum(len(b) for b in _SECTIONS.values()) >= 10


@pytest.mark.parametrize("title", list(_SECTIONS))
def test_readme_examples_run(title: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    torch.manual_seed(0)
    namespace = {"torch": torch, "nn": torch.nn, "__name__": "readme"}
    for block in _SECTIONS[title]:
        exec(compile(block, f"README.md ({title})", "exec"), namespace)
