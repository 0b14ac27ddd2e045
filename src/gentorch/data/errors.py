"""Exceptions raised by :mod:`gentorch.data`."""

from __future__ import annotations

__all__ = ["ChecksumError", "DatasetError", "DatasetNotFoundError"]


class DatasetError(ValueError):
    """A dataset file is missing, corrupt or malformed, or a dataset request is invalid.

    Catch this to handle every data-layer failure at once; the subclasses say which
    (:class:`DatasetNotFoundError`, :class:`ChecksumError`). Being a ``ValueError``, it is also
    caught by ``except ValueError``. It adds no attributes: everything is in the message.

    Args:
        *args: as for ``ValueError``; the one argument gentorch passes is the message, which
            names the offending argument or file and says what was expected (``str(err)``).

    Example:
        >>> from gentorch.data import DatasetError, load
        >>> try:
        ...     load("cifar10")
        ... except DatasetError as err:
        ...     print(err)  # doctest: +NORMALIZE_WHITESPACE
        name: unknown dataset 'cifar10'; expected one of
        mnist, fashion-mnist, binarized-mnist, digits
    """


class DatasetNotFoundError(FileNotFoundError, DatasetError):
    """A dataset file (or a user's file or folder) is absent; also a :class:`FileNotFoundError`.

    Raised by :func:`gentorch.data.load` when a file of the split is not in ``<root>/<name>/``
    (the message names the file, its size and md5 and the ways to get it) and by
    :func:`gentorch.data.load_array` / :func:`gentorch.data.load_image_folder` for a missing
    path. Catch it as :class:`DatasetError`, ``FileNotFoundError`` or ``OSError``.

    Args:
        *args: the message (``str(err)``); the path is part of the message, so the
            ``OSError`` attributes ``errno``, ``strerror`` and ``filename`` are ``None``.

    Example:
        >>> import tempfile
        >>> from gentorch.data import DatasetError, load
        >>> with tempfile.TemporaryDirectory() as empty:
        ...     try:
        ...         load("mnist", "test", root=empty)
        ...     except FileNotFoundError as err:
        ...         print(type(err).__name__, isinstance(err, DatasetError))
        ...         print("t10k-images-idx3-ubyte.gz" in str(err))
        DatasetNotFoundError True
        True
    """


class ChecksumError(DatasetError):
    """A dataset file exists but its size or md5 differs from the published one.

    Raised by :func:`gentorch.data.load` (and by a download whose bytes do not match). The
    message gives the expected md5 and size, what was found, and how to replace the file.

    Args:
        *args: the message (``str(err)``); there are no other attributes.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from gentorch.data import ChecksumError, load
        >>> with tempfile.TemporaryDirectory() as root:
        ...     Path(root, "mnist").mkdir()
        ...     _ = Path(root, "mnist", "t10k-images-idx3-ubyte.gz").write_bytes(b"truncated")
        ...     try:
        ...         load("mnist", "test", root=root)
        ...     except ChecksumError as err:
        ...         print("expected md5 9fb629c4189551a2d022fa330f9573f3" in str(err))
        True
    """
