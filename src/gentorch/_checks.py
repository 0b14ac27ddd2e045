"""Argument checks that every package shares: each error names the argument, what it received
and what was expected. Only torch and the standard library here, so that any package (layers
included) can use them without depending on another."""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import torch

__all__ = [
    "as_device",
    "as_path",
    "check_bool",
    "check_generator",
    "check_parent_folders",
    "check_positive_int",
    "check_real",
    "values_hold",
]


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a ``bool``; ``TypeError`` naming ``name`` otherwise (no truthiness)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {value!r} ({type(value).__name__})")
    return value


def check_real(name: str, value: object) -> float:
    """``value`` as a float if it is a finite real number (not a bool); else an error naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    try:
        as_float = float(value)
    except OverflowError:  # an int or Fraction beyond the float range
        as_float = math.inf
    if not math.isfinite(as_float):
        shown = f"{value!r:.60}" + ("..." if len(repr(value)) > 60 else "")
        raise ValueError(f"{name}: expected a finite number, got {shown}")
    return as_float


def check_positive_int(name: str, value: object, meaning: str = "") -> int:
    """``value`` if it is an ``int`` >= 1; else an error naming ``name``: ``TypeError`` for
    another type (a bool included), ``ValueError`` for an int below 1.

    ``meaning``, if given, is shown after the expectation, e.g. ``"images per row"``.
    """
    what = f" ({meaning})" if meaning else ""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{name}: expected a positive integer{what}, got {type(value).__name__} {value!r}"
        )
    if value < 1:
        raise ValueError(f"{name}: expected a positive integer{what}, got {value!r}")
    return value


def values_hold(ok: torch.Tensor, message: str) -> bool:
    """Whether the 0-d bool tensor ``ok`` is true, for a check of tensor values.

    Eager mode reads it (one device sync) and leaves the caller to raise its detailed error.
    Under ``torch.compile`` reading it would break the graph: an in-graph assertion raises
    ``RuntimeError(message)`` at run time instead, and ``True`` is returned.
    """
    if torch.compiler.is_compiling():
        torch._assert_async(ok, message)
        return True
    return bool(ok)


def check_generator(generator: object) -> None:
    """``TypeError`` unless ``generator`` is ``None`` or a :class:`torch.Generator`."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator: expected None or a torch.Generator, got {type(generator).__name__}"
        )


def as_device(device: object) -> torch.device:
    """``device`` (a ``torch.device``, a string such as ``"cuda:1"`` or an index) as a
    ``torch.device``; ``TypeError`` or ``ValueError`` naming ``device`` otherwise."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str | int) or isinstance(device, bool):
        raise TypeError(
            f"device: expected a string such as 'cuda' or a torch.device, got "
            f"{type(device).__name__}"
        )
    try:
        return torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"device: expected a device such as 'cpu', 'cuda' or 'cuda:1', got {device!r}"
        ) from None


def as_path(path: object, name: str = "path") -> Path:
    """``path`` as a :class:`~pathlib.Path`; ``TypeError`` naming ``name`` unless it is a str
    or an ``os.PathLike``."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{name}: expected a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


def check_parent_folders(path: Path, name: str = "path") -> None:
    """``ValueError`` if a parent of ``path`` is an existing file (creating the folders would
    fail with a bare ``FileExistsError``); the nearest existing parent decides."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(
                    f"{name}: cannot write {str(path)!r}: {str(parent)!r} is a file, not a folder"
                )
            return
