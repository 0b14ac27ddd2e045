"""Argument checks shared by the picture functions: output paths and plain numbers."""

from __future__ import annotations

import numbers
import os
from pathlib import Path

from gentorch._checks import check_parent_folders

__all__ = ["check_int", "check_png_path"]


def check_png_path(path: object, name: str = "path") -> Path:
    """``path`` as a ``Path`` to a ``.png`` file that can be created or replaced.

    Raises ``TypeError`` for a non-path, ``ValueError`` for an existing folder, a suffix other
    than ``.png`` (the bytes written are PNG whatever the name says), or a parent "folder" that
    is an existing file. Nothing is created here.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"{name}: expected a str or os.PathLike naming a .png file, got {type(path).__name__}"
        )
    out = Path(path)
    if out.is_dir():
        raise ValueError(
            f"{name}: expected a .png file to write, got the existing folder {str(out)!r}; "
            f"name a file in it, e.g. {str(out / 'picture.png')!r}"
        )
    if out.suffix.lower() != ".png":
        raise ValueError(
            f"{name}: expected a file name ending in .png (the picture is written as PNG), "
            f"got {str(out)!r}"
        )
    check_parent_folders(out, name)
    return out


def check_int(value: object, name: str, minimum: int) -> int:
    """``value`` if it is an int (not a bool) ``>= minimum``, else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)
