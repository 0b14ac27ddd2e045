"""Exceptions raised by :mod:`gentorch.data`."""

from __future__ import annotations

__all__ = ["ChecksumError", "DatasetError", "DatasetNotFoundError"]


class DatasetError(ValueError):
    """A dataset file is missing, corrupt or malformed, or a dataset request is invalid.

    Catch this to handle every data-layer failure at once; the subclasses say which.

    Example:
        >>> try:
        ...     gentorch.data.load("mnist", root="/nowhere")
        ... except DatasetError as err:
        ...     print(err)  # names the file, its md5 and the folder to put it in
    """


class DatasetNotFoundError(FileNotFoundError, DatasetError):
    """A dataset file is absent; also a :class:`FileNotFoundError`.

    Example:
        >>> try:
        ...     gentorch.data.load("mnist", root="/nowhere")
        ... except FileNotFoundError as err:
        ...     print(err)
    """


class ChecksumError(DatasetError):
    """A dataset file exists but its md5 differs from the published one.

    Example:
        >>> try:
        ...     gentorch.data.load("mnist", root="folder/with/truncated/files")
        ... except ChecksumError as err:
        ...     print(err)  # expected and actual md5, and how to replace the file
    """
