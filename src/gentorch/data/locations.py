"""Where dataset files are looked for and where derived files are cached.

Search order for the dataset root: the ``root`` argument, else the environment variable
``GENTORCH_DATA``, else :func:`cache_dir`. A dataset ``name`` lives in ``<root>/<name>/``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "data_root"]

_DATA_ENV = "GENTORCH_DATA"
_CACHE_ENV = "GENTORCH_CACHE"


def cache_dir() -> Path:
    """The per-user cache folder of gentorch (downloads when no root is set, decoded arrays).

    ``$GENTORCH_CACHE`` if set, else ``$XDG_CACHE_HOME/gentorch``, else ``~/.cache/gentorch``.
    The folder is not created here.

    Example:
        >>> os.environ["GENTORCH_CACHE"] = "/tmp/gt-cache"
        >>> cache_dir()
        PosixPath('/tmp/gt-cache')
    """
    explicit = os.environ.get(_CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "gentorch"


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding one sub-folder per dataset.

    Args:
        root: an explicit folder; ``None`` uses ``$GENTORCH_DATA`` or else :func:`cache_dir`.

    Example:
        >>> data_root("/data")
        PosixPath('/data')
        >>> data_root()  # $GENTORCH_DATA, else ~/.cache/gentorch
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(_DATA_ENV)
    if env:
        return Path(env).expanduser()
    return cache_dir()
