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
    """The md5 hex digest of a file, read in 1 MiB chunks (constant memory for large files).

    The digest identifies a file's version (it is compared with the published checksums of
    the dataset files); it is not used for security.

    Args:
        path: the file to hash.

    Returns:
        The 32-character lower-case hex digest, e.g. ``"ec29112dd5afa0611ce80d1b7f02629c"``
        for MNIST's ``t10k-labels-idx1-ubyte.gz``.

    Raises:
        OSError: the file cannot be opened or read (``FileNotFoundError`` when absent).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from gentorch.data import md5sum
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = Path(tmp, "hello.txt")
        ...     _ = path.write_bytes(b"hello")
        ...     print(md5sum(path))
        5d41402abc4b2a76b9719d911017c592
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

    A file whose size differs from ``remote.size`` is rejected without hashing it. A file
    verified once is not hashed again in this process while its resolved path, size and
    modification time stay the same.

    Args:
        path: the local file.
        remote: the expected size and md5.
        dataset: the dataset name, for the error message.

    Returns:
        ``path``, unchanged.

    Raises:
        DatasetNotFoundError: the file is absent (names the file, md5 and folder).
        ChecksumError: size or md5 differ (names both md5s and how to replace the file).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from gentorch.data.checksums import verify_file
        >>> from gentorch.data.registry import RemoteFile
        >>> spec = RemoteFile("hello.txt", 5, "5d41402abc4b2a76b9719d911017c592")
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = Path(tmp, "hello.txt").write_bytes(b"hello")
        ...     print(verify_file(Path(tmp, "hello.txt"), spec, "mine").name)
        hello.txt
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
