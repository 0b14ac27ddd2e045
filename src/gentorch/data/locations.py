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

    ``$GENTORCH_CACHE`` if set, else ``$XDG_CACHE_HOME/gentorch``, else ``~/.cache/gentorch``
    (``~`` expanded). The folder is not created here. Decoded IDX arrays are cached under
    ``<cache_dir>/decoded/``; it is also the dataset root when neither ``root`` nor
    ``$GENTORCH_DATA`` is given (see :func:`data_root`).

    Returns:
        The folder as a ``Path`` (it may not exist yet).

    Example:
        >>> import os
        >>> from unittest import mock
        >>> from gentorch.data import cache_dir
        >>> with mock.patch.dict(os.environ, {"GENTORCH_CACHE": "/srv/gt-cache"}):
        ...     print(cache_dir().as_posix())
        /srv/gt-cache
        >>> with mock.patch.dict(os.environ, {"XDG_CACHE_HOME": "/home/me/.cache"}, clear=True):
        ...     print(cache_dir().as_posix())
        /home/me/.cache/gentorch
    """
    explicit = os.environ.get(_CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "gentorch"


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding one sub-folder per dataset (dataset ``name`` in ``<root>/<name>/``).

    Args:
        root: an explicit folder (``~`` is expanded); ``None`` uses ``$GENTORCH_DATA`` if set
            and non-empty, else :func:`cache_dir`.

    Returns:
        The folder as a ``Path``; it is neither created nor checked here.

    Raises:
        TypeError: ``root`` is neither ``None``, a ``str`` nor an ``os.PathLike``.

    Example:
        >>> import os
        >>> from unittest import mock
        >>> from gentorch.data import data_root
        >>> print(data_root("/data").as_posix())
        /data
        >>> with mock.patch.dict(os.environ, {"GENTORCH_DATA": "/srv/datasets"}):
        ...     print(data_root().as_posix(), data_root("/data").as_posix())
        /srv/datasets /data
    """
    if root is not None:
        if not isinstance(root, str | os.PathLike):
            raise TypeError(
                f"root: expected a str or os.PathLike naming the datasets folder, got "
                f"{type(root).__name__}"
            )
        return Path(root).expanduser()
    env = os.environ.get(_DATA_ENV)
    if env:
        return Path(env).expanduser()
    return cache_dir()
