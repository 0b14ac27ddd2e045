"""md5 verification of dataset files, done once per file version and process.

A file is identified by its resolved path, size and modification time (ns); a file that was
verified and has not changed since is not hashed again, so repeated loads cost no hashing.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from gentorch.data.errors import ChecksumError, DatasetNotFoundError
from gentorch.data.registry import RemoteFile

__all__ = ["md5sum", "verify_file"]

_CHUNK = 1 << 20
# (resolved path, size, mtime_ns) of files whose md5 matched; guarded by _LOCK.
_VERIFIED: set[tuple[str, int, int]] = set()
_LOCK = threading.Lock()


def md5sum(path: str | os.PathLike[str]) -> str:
    """The md5 hex digest of a file, read in 1 MiB chunks.

    Example:
        >>> md5sum("mnist/t10k-labels-idx1-ubyte.gz")
        'ec29112dd5afa0611ce80d1b7f02629c'
    """
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _how_to_fix(dataset: str, folder: Path, remote: RemoteFile) -> str:
    return (
        f"Put the official {remote.filename} ({remote.size} bytes, md5 {remote.md5}) in "
        f"{folder}/, or call gentorch.data.load({dataset!r}, download=True) / "
        f"gentorch.data.download({dataset!r}) to fetch it, or point root=, the GENTORCH_DATA "
        f"environment variable or the CLI's --data-dir at a folder holding "
        f"{dataset}/{remote.filename}."
    )


def verify_file(path: Path, remote: RemoteFile, dataset: str) -> Path:
    """Check that ``path`` exists and has ``remote``'s md5; return it.

    Args:
        path: the local file.
        remote: the expected size and md5.
        dataset: the dataset name, for the error message.

    Raises:
        DatasetNotFoundError: the file is absent (names the file, md5 and folder).
        ChecksumError: size or md5 differ (names both md5s and how to replace the file).

    Example:
        >>> spec = FILES["mnist"]["test"][1]
        >>> verify_file(Path("/data/mnist") / spec.filename, spec, "mnist")
        PosixPath('/data/mnist/t10k-labels-idx1-ubyte.gz')
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DatasetNotFoundError(
            f"{dataset}: file {path} not found. {_how_to_fix(dataset, path.parent, remote)}"
        ) from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _LOCK:
        if key in _VERIFIED:
            return path
    # A size mismatch is conclusive and saves hashing a large wrong file.
    actual = md5sum(path) if st.st_size == remote.size else None
    if actual != remote.md5:
        found = f"md5 {actual}" if actual is not None else f"{st.st_size} bytes"
        raise ChecksumError(
            f"{dataset}: file {path} is corrupt or not the official one: expected md5 "
            f"{remote.md5} ({remote.size} bytes), found {found}. Delete it; "
            f"{_how_to_fix(dataset, path.parent, remote)}"
        )
    with _LOCK:
        _VERIFIED.add(key)
    return path
